"""Face crops (`comp prepare --faces`, `--fit face`): the main face of each image found by
OpenCV's bundled Haar cascade, turned upright when both eyes are found, cropped square with a
margin and resized to the store's size.

OpenCV's cascades ship inside its wheel (`cv2.data`), so detection works offline and needs
no download; the DNN detectors need a model file that does not. The cascade looks for faces
with context around them: an image that is already a tight face crop (a challenge's 56x56
faces) is padded by its edge pixels first, so such faces are found too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from comp.errors import CompError

FACE_CASCADE = "haarcascade_frontalface_default.xml"
EYE_CASCADE = "haarcascade_eye.xml"
MARGIN = 0.2  # the crop reaches this share of the face box's side beyond each edge
PAD = 0.3  # the image is padded by this share of its side (edge pixels) before detection
MIN_FACE = 0.2  # faces smaller than this share of the image's shorter side are ignored
DETECT_SIDE = 320  # larger images are searched at this shorter side (faster, same faces)
EYE_LEVEL = 0.38  # eyes sit about this far down a frontal face box
EYE_FACE_SIDE = 160  # face boxes are searched for eyes at this width
MAX_TILT = 30.0  # eyes tilted by more than this (degrees) are taken for a false find


@dataclass(frozen=True)
class Face:
    """A face box (x, y, side lengths, in the image's pixels) and, when both were found, the
    centres of the eye on the image's left and of the other."""

    x: float
    y: float
    w: float
    h: float
    eyes: tuple[tuple[float, float], tuple[float, float]] | None = None

    @property
    def centre(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h / 2

    @property
    def tilt(self) -> float:
        """The angle of the line between the eyes, in degrees (0: upright or no eyes)."""
        if self.eyes is None:
            return 0.0
        (lx, ly), (rx, ry) = self.eyes
        return math.degrees(math.atan2(ry - ly, rx - lx))


@cache
def _cascade(name: str) -> Any:
    try:
        import cv2
    except ImportError:  # pragma: no cover - a dependency of comp
        raise CompError("face crops need OpenCV: pip install opencv-python-headless") from None
    path = Path(cv2.data.haarcascades) / name  # type: ignore[attr-defined]
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise CompError(f"{path}: OpenCV's face cascade is missing from its package; "
                        "reinstall opencv-python-headless (a version below 5 ships it)")
    return cascade


def find_face(gray: np.ndarray) -> Face | None:
    """The largest face in a (H, W) uint8 image, with its eyes when both are found, or None."""
    import cv2

    h, w = gray.shape
    shrink = min(1.0, DETECT_SIDE / min(h, w))
    small = (cv2.resize(gray, (max(round(w * shrink), 1), max(round(h * shrink), 1)),
                        interpolation=cv2.INTER_AREA) if shrink < 1 else gray)
    pad = round(PAD * min(small.shape))
    padded = cv2.copyMakeBorder(small, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    side = max(int(MIN_FACE * min(small.shape)), 20)
    found = _cascade(FACE_CASCADE).detectMultiScale(padded, scaleFactor=1.1, minNeighbors=5,
                                                    minSize=(side, side))
    if len(found) == 0:
        return None
    x, y, fw, fh = (float(v) for v in max(found, key=lambda b: b[2] * b[3]))
    eyes = _eyes(padded, int(x), int(y), int(fw), int(fh))

    def to_image(px: float, py: float) -> tuple[float, float]:
        return (px - pad) / shrink, (py - pad) / shrink

    fx, fy = to_image(x, y)
    return Face(fx, fy, fw / shrink, fh / shrink,
                None if eyes is None else (to_image(*eyes[0]), to_image(*eyes[1])))


def _eyes(gray: np.ndarray, x: int, y: int, w: int, h: int
          ) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """Both eye centres in the upper half of a face box (one on each side), or None."""
    import cv2

    top = gray[y:y + h // 2 + h // 8, x:x + w]
    zoom = EYE_FACE_SIDE / w  # the eye cascade's window is 20x20: small faces are enlarged
    top = cv2.resize(top, (EYE_FACE_SIDE, max(round(top.shape[0] * zoom), 1)),
                     interpolation=cv2.INTER_LINEAR if zoom > 1 else cv2.INTER_AREA)
    found = _cascade(EYE_CASCADE).detectMultiScale(
        top, scaleFactor=1.1, minNeighbors=4, minSize=(EYE_FACE_SIDE // 8,) * 2,
        maxSize=(EYE_FACE_SIDE // 2,) * 2)
    centres = [(x + (ex + ew / 2) / zoom, y + (ey + eh / 2) / zoom) for ex, ey, ew, eh in found]
    left = [c for c in centres if c[0] < x + w / 2]
    right = [c for c in centres if c[0] >= x + w / 2]
    if not left or not right:
        return None
    level = y + EYE_LEVEL * h  # of several finds, the one nearest the eyes' usual height

    def pick(side: list[tuple[float, float]]) -> tuple[float, float]:
        return min(side, key=lambda c: abs(c[1] - level))

    eyes = (pick(left), pick(right))
    face = Face(x, y, w, h, eyes)
    return eyes if abs(face.tilt) <= MAX_TILT else None


def crop_face(im: Image.Image, face: Face, size: tuple[int, int], *,
              margin: float = MARGIN) -> Image.Image:
    """The face's square box grown by `margin` on every side, turned so the eyes are level,
    resized to (height, width) (a non-square size widens or heightens the box to match).
    Parts of the box outside the image take the nearest edge pixel."""
    h, w = size
    side = max(face.w, face.h) * (1 + 2 * margin)
    scale = side / min(h, w)  # image pixels per output pixel
    reduce = int(scale // 2)
    if reduce >= 2:  # shrink big photos first, so the bilinear step does not alias
        im = im.reduce(reduce)
        scale /= reduce
        face = Face(face.x / reduce, face.y / reduce, face.w / reduce, face.h / reduce,
                    None if face.eyes is None else
                    tuple((ex / reduce, ey / reduce) for ex, ey in face.eyes))  # type: ignore[arg-type]
    cx, cy = face.centre
    angle = math.radians(face.tilt)
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    # output pixel (u, v) -> image point: centre + R(angle) . scale . (u - w/2, v - h/2)
    a, b, d, e = cos, -sin, sin, cos
    c = cx - a * w / 2 - b * h / 2
    f = cy - d * w / 2 - e * h / 2
    pad = int(math.ceil(side)) + 1  # edge pixels around the image, for boxes beyond it
    padded = Image.fromarray(np.pad(np.asarray(im), ((pad, pad), (pad, pad)) +
                                    ((0, 0),) * (np.asarray(im).ndim - 2), mode="edge"))
    return padded.transform((w, h), Image.Transform.AFFINE, (a, b, c + pad, d, e, f + pad),
                            resample=Image.Resampling.BILINEAR)


def face_image(im: Image.Image, size: tuple[int, int]) -> tuple[Image.Image, bool]:
    """`im` cropped to its main face and resized to `size`, and whether a face was found
    (when not, the caller decides: centre crop, skip or stop)."""
    gray = np.asarray(im if im.mode == "L" else im.convert("L"))
    face = find_face(gray)
    if face is None:
        return im, False
    return crop_face(im, face, size), True
