"""Decoding: libpng's fast path gives PIL's pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from comp.prepare import image
from comp.prepare.dhash import to_gray
from comp.prepare.image import decode_file


def _interlaced_png(rgb: np.ndarray) -> bytes:
    """An Adam7-interlaced 8-bit RGB PNG (PIL cannot write one), filter type 0 throughout."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    raw = b""
    for y0, x0, dy, dx in [(0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2),
                           (0, 1, 2, 2), (1, 0, 2, 1)]:
        for row in rgb[y0::dy, x0::dx]:
            if row.size:
                raw += b"\x00" + row.tobytes()
    h, w = rgb.shape[:2]
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 1))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "LA", "P", "I;16", "RGB-tRNS", "L-tRNS",
                                  "RGB-Adam7"])
@pytest.mark.parametrize(("size", "gray"), [(None, False), (None, True), ((20, 24), False),
                                            ((20, 24), True)])
def test_fast_png_path_equals_pil_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       mode: str, size: tuple[int, int] | None,
                                       gray: bool) -> None:
    """PNGs that libpng decodes give the same store pixels and hash input as PIL's path."""
    rng = np.random.default_rng(len(mode))
    rgba = rng.integers(0, 256, (30, 36, 4), dtype=np.uint8)
    path = tmp_path / "x.png"
    if mode == "I;16":
        Image.fromarray(rng.integers(0, 65536, (30, 36), dtype=np.uint16)).save(path)
    elif mode == "RGB-tRNS":
        Image.fromarray(rgba[..., :3]).save(path, transparency=(1, 2, 3))
    elif mode == "L-tRNS":
        Image.fromarray(rgba[..., 0]).save(path, transparency=7)
    elif mode == "RGB-Adam7":
        path.write_bytes(_interlaced_png(rgba[..., :3]))
    else:
        Image.fromarray(rgba, "RGBA").convert(mode).save(path)
    assert (image._fast_png(path) is not None) == (mode in ("RGB", "L", "RGBA", "RGB-tRNS",
                                                          "L-tRNS"))
    fast = decode_file(path, size, gray)
    monkeypatch.setattr(image, "_fast_png", lambda _path: None)
    slow = decode_file(path, size, gray)
    assert fast[0].dtype == slow[0].dtype == np.uint8
    np.testing.assert_array_equal(fast[0], slow[0])
    gray = [to_gray(p[None] if p.ndim == 2 else p[None])[0] for p in (fast[1], slow[1])]
    np.testing.assert_array_equal(gray[0], gray[1])
