"""The models comp trains, one frozen `ModelSpec` each, in one registry (`SPECS`): how each is
built (its builder in `comp.train.models`), trained by default, and what its options change.

`comp train` (the recipe, the option checks), `build_model`, `comp tune`'s search space and
the `--model` help all read it; `config.Model` names the same models (a test holds them
equal). No Keras here: the command line and the search space read it without loading one.
"""

from __future__ import annotations

from dataclasses import dataclass

from comp.choices import Model, Schedule
from comp.config import DEFAULT_EPOCHS

BACKBONE_WARMUP = 2  # epochs of the head alone before a backbone is fine-tuned
WARMUP_RATE = 10.0  # the head's rate during them, times the fine-tuning rate
CNN_MIN_SIDE = 22  # 22 -> conv 20 -> pool 10 -> conv 8 -> pool 4 -> conv 2 -> pool 1
# a head on frozen features, measured out-of-fold on six face tasks against 40 and 12
# (benchmarks/feature_epochs.py): +0.001 over 40 on average at half the time, within its
# spread on five (-0.003 on the sixth); 12 was still learning at its last epoch
FEATURE_EPOCHS = 20


@dataclass(frozen=True)
class ModelSpec:
    """One model: its builder, its training defaults, and what its options act on."""

    model: Model
    builder: str  # the function of comp.train.models that builds it
    summary: str  # one line, for --help and the README
    learning_rate: float  # Adam's (AdamW's with weight decay) peak rate
    augment: bool  # trained with the report's augmentation by default
    schedule: Schedule = Schedule.PLATEAU
    weight_decay: float = 0.0  # > 0: AdamW with decoupled weight decay
    label_smoothing: float = 0.0
    min_side: int = 1  # the smallest image side it takes
    min_side_why: str = ""
    width: bool = False  # --width scales its filters and hidden units
    hidden: bool = True  # it has hidden layers, so --dropout applies
    pretrained: str | None = None  # its pretrained base: --weights applies
    features: str | None = None  # it reads this frozen extractor's features, not pixels
    warmup: int | None = None  # epochs with its pretrained base frozen (None: not applicable)
    epochs: int = DEFAULT_EPOCHS  # its budget when --epochs is not given

    def pixels_only(self, option: str) -> str:
        """The refusal of an option that acts on pixels, for a feature model."""
        return (f"{option} does not apply to {self.model}: it reads frozen {self.features} "
                "features of the stored images, not their pixels; drop it")

    def too_small(self, side: tuple[int, int]) -> str | None:
        """Why an input of this side cannot be taken (None: it can)."""
        if min(side) >= self.min_side:
            return None
        fallback = "" if self.model == Model.LOGREG else ", or train --model logreg"
        return (f"{self.model} needs images of at least {self.min_side}x{self.min_side} "
                f"({self.min_side_why}). Received: {side[0]}x{side[1]}; prepare with --size "
                f"32x32 or larger{fallback}")


def _cnn(model: Model, builder: str, summary: str, learning_rate: float,
         augment: bool) -> ModelSpec:
    return ModelSpec(model, builder, summary, learning_rate, augment, min_side=CNN_MIN_SIDE,
                     width=True,
                     min_side_why="three 3x3 convolutions, each followed by a 2x2 pooling")


def _resnet50(model: Model, builder: str, summary: str, learning_rate: float) -> ModelSpec:
    return ModelSpec(model, builder, summary, learning_rate, False, min_side=32,
                     pretrained="ResNet50 (ImageNet)",
                     min_side_why="ResNet50 halves the resolution five times")


def _imagenet(model: Model, builder: str, base: str) -> ModelSpec:
    """A keras.applications backbone with ImageNet weights (Keras' fine-tuning guide): the
    new head trained first with the base frozen (`BACKBONE_WARMUP` epochs at
    `WARMUP_RATE` times the rate), then the whole network at a low rate with its batch norm
    in inference mode; it sees the stored image enlarged by --input-scale (e.g. 4: 56 px ->
    224 px)."""
    return ModelSpec(model, builder, f"{base} (ImageNet, keras.applications), fine-tuned", 1e-4,
                     False, min_side=32, pretrained=f"{base} (ImageNet)",
                     min_side_why=f"{base} halves the resolution five times",
                     warmup=BACKBONE_WARMUP)


def _face(model: Model, what: str) -> ModelSpec:
    """Logistic regression on a frozen view of FaceNet (`comp.train.features.VIEWS`, the
    view named as the model)."""
    return ModelSpec(model, "build_feature_head", f"logistic regression on {what}", 1e-3,
                     False, min_side=16, features=str(model), epochs=FEATURE_EPOCHS,
                     min_side_why="comp's smallest stored image")


SPECS: dict[Model, ModelSpec] = {s.model: s for s in (
    ModelSpec(Model.LOGREG, "build_logreg", "logistic regression on grayscale pixels", 1e-3,
              False, hidden=False),
    _cnn(Model.B1, "build_b1", "the report's B1: 3 convolutions, Dense 512", 1e-3, False),
    _cnn(Model.B2, "build_b2", "B1 with a second Dense 512 and dropout 0.3", 1e-3, False),
    _cnn(Model.B3, "build_b3", "B2 trained with augmentation", 1e-4, True),
    _resnet50(Model.TL1, "build_tl1", "ResNet50 frozen, a new head", 1e-3),
    _resnet50(Model.TL2, "build_tl2", "ResNet50 fine-tuned from res5b_branch2b", 1e-4),
    _resnet50(Model.TL3, "build_tl3", "ResNet50 fine-tuned end to end", 1e-4),
    ModelSpec(Model.RES, "build_res", "comp's compact residual net (batch norm, AdamW, "
              "cosine, label smoothing)", 3e-3, True, schedule=Schedule.COSINE,
              weight_decay=5e-4, label_smoothing=0.1, min_side=16, width=True,
              min_side_why="it halves the resolution four times"),
    _imagenet(Model.MOBILENETV2, "build_mobilenetv2", "MobileNetV2"),
    _imagenet(Model.EFFICIENTNETV2B0, "build_efficientnetv2b0", "EfficientNetV2B0"),
    _imagenet(Model.CONVNEXTTINY, "build_convnexttiny", "ConvNeXtTiny"),
    _face(Model.FACENET, "FaceNet's final pool (identity features; VGGFace2; pip install "
          "'comp[faces]')"),
    _face(Model.FACENET_FLIP, "FaceNet's final pool, the flipped image's averaged in"),
    _face(Model.FACENET_STAGES, "FaceNet's last block of each of its five stages, pooled, "
          "side by side"),
    _face(Model.FACENET_STAGES_FLIP, "FaceNet's five stages, the flipped image's averaged in"),
)}


def spec(model: str) -> ModelSpec:
    return SPECS[Model(model)]


def epochs_of(model: str, epochs: int | None) -> int:
    """The epochs a new run of `model` trains: `--epochs`, else the model's own budget."""
    return epochs or spec(model).epochs


def shape_problem(model: str, *, width: float = 1.0, dropout: float | None = None,
                  input_scale: float = 1.0, augment: bool = False) -> str | None:
    """Why a shape option does not act on this model (None: each one given does), known
    from the registry alone, so refused before TensorFlow starts or a folder is made."""
    model_spec = spec(model)
    if width != 1 and not model_spec.width:
        widths = ", ".join(s.model for s in SPECS.values() if s.width)
        return (f"--width applies to {widths} (ResNet50's width is fixed by its weights; "
                f"logreg has none). Received: --model {model}")
    if dropout is not None and not model_spec.hidden:
        return (f"--dropout does not apply to {model} (it has no hidden layer); use --l1 or "
                "--l2 to regularise it")
    if model_spec.features is not None and (input_scale != 1 or augment):
        return model_spec.pixels_only("--input-scale" if input_scale != 1 else "--augment")
    if input_scale > 1 and model_spec.pretrained is None:
        bases = ", ".join(s.model for s in SPECS.values() if s.pretrained)
        return (f"--input-scale above 1 enlarges the image for a pretrained base ({bases}); "
                f"{model} learns from the stored pixels: prepare with a larger --size "
                f"instead. Received: {input_scale:g}")
    return None
