"""`comp predict RUN IMAGE_OR_FOLDER...`: a trained run on photos from anywhere (any size, any
mode), prepared exactly as the run's workspace prepared its images (size, fit, gray) and
decided by the rule the last `comp submit` that read the run used (threshold or class
offsets, LightGBM stacker or level-2 stack, fold models averaged, flip), exactly as it
decided its CSV; the probability printed is that of the model that decided. Bad files get
one line each; the rest are still predicted."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from comp.commit import reading
from comp.config import PredictConfig
from comp.errors import CompError
from comp.prepare.files import IMAGE_SUFFIXES, list_images
from comp.prepare.image import decode_file
from comp.runs import open_run
from comp.submit.rule import Decision
from comp.workspace import Workspace, write_csv


@dataclass
class Predicted:
    table: pd.DataFrame  # file, class, probability (of that class), p(<class>) per class
    rule: str  # which rule decided, in words
    header: str  # the table's header: how the class follows from the probabilities
    bad: list[str] = field(default_factory=list)  # one line per file that was not predicted
    out: Path | None = None


def image_paths(items: tuple[Path, ...]) -> tuple[list[str], list[str]]:
    """(image files: those given, and those directly inside the folders given, in order;
    one line per item that is neither)."""
    paths, bad = [], []
    for item in items:
        if item.is_dir():
            found = list_images(item)
            if not found:
                bad.append(f"{item}: no image files in the folder")
            paths += found
        elif item.is_file():
            if item.suffix.lower() in IMAGE_SUFFIXES:
                paths.append(str(item))
            else:
                bad.append(f"{item}: not an image file ({', '.join(sorted(IMAGE_SUFFIXES))})")
        else:
            bad.append(f"{item}: not found")
    return paths, bad


def prepare_images(paths: list[str], *, size: tuple[int, int], gray: bool, fit: str
                   ) -> tuple[np.ndarray, list[str], list[str]]:
    """(pixels (N, H, W, C) uint8 as the workspace stores them, the files decoded, one line
    per file that could not be decoded)."""
    pixels, kept, bad = [], [], []
    for path in paths:
        try:
            image, _, _ = decode_file(path, size, gray, fit)
        except Exception as exc:  # noqa: BLE001 - PIL and the codecs raise many kinds
            reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            bad.append(f"{path}: cannot decode the image ({reason})")
            continue
        pixels.append(image)
        kept.append(path)
    channels = 1 if gray else 3
    stack = (np.stack(pixels) if pixels
             else np.zeros((0, *size, channels), np.uint8))
    return stack, kept, bad


@reading()  # a run resumed meanwhile keeps the versions read here
def predict(cfg: PredictConfig) -> Predicted:
    """Predict the images with the run's decision rule; write `cfg.out` when given."""
    from comp.submit.pipeline import predict_rule, rule_for

    ws = Workspace(cfg.workspace)
    meta, index = ws.load_meta(), ws.load_index()
    run_dir, _ = open_run(cfg.checkpoints, cfg.run, fingerprint=meta.fingerprint,
                          pixels=meta.pixels)
    paths, bad = image_paths(cfg.images)
    x, kept, undecodable = prepare_images(paths, size=(meta.size[0], meta.size[1]),
                                          gray=meta.gray, fit=meta.fit)
    bad += undecodable
    if not kept:
        raise CompError(f"no image to predict ({bad[0] if bad else 'none given'}); pass image "
                        "files or folders of them")
    decision, folder, rule = rule_for(run_dir, ws=ws, meta=meta, index=index,
                                      checkpoints=cfg.checkpoints)
    prob, labels = predict_rule(decision, folder, cfg.checkpoints, x, ws=ws)
    classes = meta.classes
    table = pd.DataFrame({"file": kept, "class": [classes[c] for c in labels],
                          "probability": prob[np.arange(len(labels)), labels]})
    for k, name in enumerate(classes):
        table[f"p({name})"] = prob[:, k]
    if cfg.out is not None:
        write_csv(cfg.out, table)
    return Predicted(table, rule, table_header(decision), bad, cfg.out)


def table_header(decision: Decision) -> str:
    """The printed table's header, saying how its class follows from the probabilities
    (with class offsets, a class may be chosen over a more probable one)."""
    positive = decision.classes[-1]
    how = {"threshold": f"{positive} when p({positive}) >= {decision.threshold or 0.5:.4f}",
           "0.5": f"{positive} when p({positive}) >= 0.5",
           "arg-max": "the most probable",
           "offsets": "the highest log-probability plus the rule's class offsets, so not "
                      "always the most probable"}.get(decision.rule, decision.rule)
    return f"file, class ({how}), p(class): its probability"
