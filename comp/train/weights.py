"""Pretrained weights: ResNet50's ImageNet file from a local path, the Keras cache, or Keras'
own download (checked against its hash), with one clear line when none can be had."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras

from comp.errors import CompError

RESNET_NOTOP = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
RESNET_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
              + RESNET_NOTOP)
RESNET_NOTOP_MD5 = "4d473c1dd8becc155b73f8504c6f6626"  # Keras' own hash of that file
DOWNLOAD_TIMEOUT_S = 60


def keras_home() -> Path:
    """Keras' cache folder (KERAS_HOME, else ~/.keras), where `keras.utils.get_file` keeps
    downloads (public as `keras.config.keras_home` in some Keras versions only)."""
    home = getattr(keras.config, "keras_home", None)
    if home is None:
        from keras.src.backend import config

        home = config.keras_home
    return Path(home())


def resolve_weights(weights: str | None, *, url: str = RESNET_URL,
                    md5: str = RESNET_NOTOP_MD5) -> str | None:
    """ResNet50's ImageNet weights: a local file, the Keras cache, or Keras' own download into
    that cache (checked against its hash) when the network can be reached; none for `none`.

    Raises:
        CompError naming the file and where to put it when the weights are absent and cannot
        be downloaded, or when a download does not match the expected hash.
    """
    if weights is None or weights.lower() == "none":
        return None
    if weights.lower() != "imagenet":
        if not Path(weights).exists():
            raise CompError(f"--weights {weights}: file not found; pass the path of a ResNet50 "
                            "weights file (.h5), or --weights none")
        return weights
    return str(cached_download(
        RESNET_NOTOP, url=url, file_hash=md5, algorithm="md5", what="ImageNet weights for ResNet50",
        fix="pass --weights PATH (or --weights none to train from random initialisation)"))


def cached_download(name: str, *, url: str, file_hash: str, algorithm: str, what: str,
                    fix: str) -> Path:
    """`name` in the Keras cache's models/ folder, or Keras' own download of `url` into it
    (checked against `file_hash`), one minute at most without an answer.

    Raises:
        CompError naming the file, the folder it belongs in and `fix`, when it is absent and
        cannot be downloaded, or when the download does not match its hash (then removed).
    """
    home = keras_home()
    cached = home / "models" / name
    if cached.exists():
        return cached
    import socket

    try:  # Keras falls back to /tmp/.keras when the cache folder is missing
        cached.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        return Path(keras.utils.get_file(name, origin=url, cache_dir=str(home),
                                         cache_subdir="models", file_hash=file_hash,
                                         hash_algorithm=algorithm))
    except ValueError:  # the hash check
        cached.unlink(missing_ok=True)
        raise CompError(f"{url}: the downloaded {name} does not match its expected hash; run "
                        f"again, or put a good copy in {cached.parent}/ or {fix}") from None
    except Exception as exc:  # noqa: BLE001 - Keras wraps every fetch failure in Exception
        raise CompError(f"{what} are not in the Keras cache and could not be downloaded "
                        f"({_reason(exc)}): put {name} in {cached.parent}/ or {fix}") from None
    finally:
        socket.setdefaulttimeout(previous)


def _reason(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc).strip() else type(exc).__name__


def unreadable(weights: str, base: str, exc: Exception) -> CompError:
    """The refusal of a local weights file Keras could not load into `base` (another
    network's file, or not a weights file at all)."""
    return CompError(f"--weights {weights}: {base} cannot load it ({_reason(exc)}); pass "
                     f"{base}'s own ImageNet weights file without its top (.h5), or "
                     "--weights none")


def application_weights(weights: str | None, base: str) -> str | None:
    """What keras.applications gets for a backbone's `weights`: "imagenet" (Keras' own
    download into its cache, checked against its hash), a local weights file, or None."""
    if weights is None or weights.lower() == "none":
        return None
    if weights.lower() == "imagenet":
        return "imagenet"
    if not Path(weights).exists():
        raise CompError(f"--weights {weights}: file not found; pass the path of a {base} weights "
                        "file (.h5 or .weights.h5, without its top), or --weights none")
    return weights


def build_application(make: Any, base: str, weights: str | None, **kwargs: Any) -> Any:
    """`make(weights=..., **kwargs)` (a keras.applications constructor), with one line when
    ImageNet weights are neither in the Keras cache nor downloadable."""
    import socket

    resolved = application_weights(weights, base)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        return make(weights=resolved, **kwargs)
    except Exception as exc:  # noqa: BLE001 - Keras wraps every fetch failure in Exception
        if resolved is None:
            raise
        if resolved != "imagenet":
            raise unreadable(resolved, base, exc) from None
        reason = _reason(exc)
        cache = keras_home() / "models"
        raise CompError(f"ImageNet weights for {base} are not in the Keras cache and could not "
                        f"be downloaded ({reason}): run once where the network is reachable "
                        f"(Keras keeps them in {cache}/), or pass --weights PATH, or --weights "
                        "none to train from random initialisation") from None
    finally:
        socket.setdefaulttimeout(previous)
