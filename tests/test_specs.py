"""The model registry: one spec per model the command line offers, read by every consumer."""

from __future__ import annotations

from comp.config import Model, Schedule
from comp.specs import SPECS, spec
from comp.tune import space_for


def test_every_model_has_one_spec_and_a_builder() -> None:
    import comp.train.models as models

    assert set(SPECS) == set(Model)
    for model, s in SPECS.items():
        assert s.model == model and callable(getattr(models, s.builder))


def test_the_recipe_defaults_come_from_the_spec() -> None:
    from comp.train.recipe import Recipe

    recipe = Recipe.of(__import__("comp.config", fromlist=["TrainConfig"]).TrainConfig())
    res = spec("res")
    assert (recipe.learning_rate, recipe.schedule, recipe.label_smoothing) == (
        res.learning_rate, Schedule.COSINE, 0.1)


def test_minimum_sides_and_what_scales() -> None:
    assert spec("b1").too_small((22, 22)) is None
    assert spec("b1").too_small((21, 40)) == (
        "b1 needs images of at least 22x22 (three 3x3 convolutions, each followed by a 2x2 "
        "pooling). Received: 21x40; prepare with --size 32x32 or larger, or train --model logreg")
    assert "width" in space_for("res", 56) and "width" not in space_for("tl1", 56)
    assert "dropout" not in space_for("logreg", 56)
    assert space_for("b1", 32)["input_scale"].values == (1.0, 0.75)  # 0.5 x 32 < 22
    assert [s.model for s in SPECS.values() if s.pretrained] == [
        "tl1", "tl2", "tl3", "mobilenetv2", "efficientnetv2b0", "convnexttiny"]
