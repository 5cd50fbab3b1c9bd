"""comp: from raw challenge files to a leaderboard CSV."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from comp.version import __version__

__all__ = ["__version__", "predict"]

if TYPE_CHECKING:
    import pandas as pd


def predict(run: str, images: str | Path | list[str | Path], *,
            workspace: str | Path = "data/workspace",
            checkpoints: str | Path = "checkpoints") -> pd.DataFrame:
    """A trained run's predictions on image files (or folders of them) from anywhere, by the
    rule the last `comp submit` that read the run used: a table of file, class, probability
    and p(<class>) per class (`comp predict`)."""
    from comp.config import PredictConfig
    from comp.photos import predict as run_predict

    items = [images] if isinstance(images, str | Path) else list(images)
    return run_predict(PredictConfig(run=run, images=tuple(Path(i) for i in items),
                                     workspace=Path(workspace),
                                     checkpoints=Path(checkpoints))).table
