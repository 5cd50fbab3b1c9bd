"""The choices options take (each a `StrEnum`: the command line lists them, configs hold
them). `comp.config` re-exports them beside the defaults."""

from __future__ import annotations

from enum import StrEnum


class Fit(StrEnum):
    """How an image of another aspect ratio meets `--size`."""

    CROP = "crop"  # centre-crop to the target aspect ratio, then resize
    STRETCH = "stretch"
    FACE = "face"  # the main face (YuNet through OpenCV), upright, with a margin; --no-face


class NoFace(StrEnum):
    """What `--faces` does with an image in which it finds no face."""

    KEEP = "keep"  # a centre crop, counted and shown
    SKIP = "skip"  # dropped from training (val/test images are always kept: centre crop)
    FAIL = "fail"  # stop, naming the file


class Conflicts(StrEnum):
    """What to do with a duplicate group whose labels disagree."""

    DROP = "drop"  # the whole group (the report's policy)
    MAJORITY = "majority"  # keep it with the most common label (ties: dropped)


class Duplicates(StrEnum):
    """How many members of a duplicate group to keep."""

    KEEP_ONE = "keep-one"
    KEEP_ALL = "keep-all"


class SizeMismatch(StrEnum):
    """val/test images whose native size differs from the training images'."""

    FAIL = "fail"
    RESIZE = "resize"  # resize them to the store's size (crop or stretch, as --fit)


class Balance(StrEnum):
    """How training treats classes of different sizes (the tuned threshold corrects the rest)."""

    NONE = "none"  # every image once per epoch, every image's loss alike
    WEIGHTS = "weights"  # each class's loss weighted by N / (K x its count)
    OVERSAMPLE = "oversample"  # each epoch draws every class equally often (with replacement)


class Init(StrEnum):
    """Kernel initialisation (the report's suggestion: He for ReLU networks)."""

    GLOROT = "glorot"  # Glorot uniform, Keras' default for the report's models
    HE = "he"  # He normal


class Schedule(StrEnum):
    """How the learning rate moves during training."""

    PLATEAU = "plateau"  # divided by --plateau-factor when the validation loss stalls
    COSINE = "cosine"  # one warm-up epoch, then cosine decay to 0 over the epoch budget


class Target(StrEnum):
    """Which unlabelled set a submission predicts."""

    VAL = "val"  # phase 1
    TEST = "test"  # phase 2


class Tta(StrEnum):
    """Whether the horizontally flipped image is averaged in at prediction."""

    AUTO = "auto"  # both are candidates; the nested out-of-fold choice decides
    ON = "on"
    OFF = "off"


class Leaks(StrEnum):
    """When a target image that matches training images takes their label."""

    AUTO = "auto"  # whichever of the three below scores highest out-of-fold
    ALWAYS = "always"  # the copies' label replaces the model's
    NEVER = "never"  # the model alone
    EVIDENCE = "evidence"  # the copies' label weighed beside the rule's calibrated probability


class Model(StrEnum):
    """The report's models (and its logistic-regression baseline), comp's residual net, and
    ImageNet backbones from keras.applications, fine-tuned."""

    LOGREG = "logreg"
    B1 = "b1"
    B2 = "b2"
    B3 = "b3"
    TL1 = "tl1"
    TL2 = "tl2"
    TL3 = "tl3"
    RES = "res"  # compact residual network (batch norm, AdamW, cosine, label smoothing)
    MOBILENETV2 = "mobilenetv2"
    EFFICIENTNETV2B0 = "efficientnetv2b0"
    CONVNEXTTINY = "convnexttiny"
    FACENET = "facenet"
    FACENET_FLIP = "facenet-flip"
    FACENET_STAGES = "facenet-stages"
    FACENET_STAGES_FLIP = "facenet-stages-flip"


class RankBy(StrEnum):
    SELF_CONFIDENCE = "self_confidence"
    NORMALIZED_MARGIN = "normalized_margin"
