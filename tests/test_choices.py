"""The choices options take: one line naming the option and every choice on a bad value."""

from __future__ import annotations

import pytest

from comp.choices import Fit, Leaks, Model, Tta
from comp.config import PrepareConfig, SubmitConfig
from comp.errors import CompError


def test_choices_are_their_words() -> None:
    assert [m.value for m in Model] == ["logreg", "b1", "b2", "b3", "tl1", "tl2", "tl3", "res",
                                        "mobilenetv2", "efficientnetv2b0", "convnexttiny",
                                        "facenet", "facenet-flip", "facenet-stages",
                                        "facenet-stages-flip"]
    assert Tta("auto") is Tta.AUTO and str(Leaks.NEVER) == "never"


def test_a_bad_choice_names_the_option_and_the_choices() -> None:
    assert PrepareConfig(fit="stretch").fit is Fit.STRETCH  # type: ignore[arg-type]
    with pytest.raises(CompError, match="--fit must be one of crop, stretch, face. Received"):
        PrepareConfig(fit="pad")  # type: ignore[arg-type]
    with pytest.raises(CompError, match="--tta must be one of auto, on, off"):
        SubmitConfig(tta="maybe")  # type: ignore[arg-type]
