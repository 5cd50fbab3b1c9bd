"""From a trained run to a leaderboard CSV: prediction, the LightGBM stacker, the typed decision
rule, evaluation, leaks, the CSV and its manifest, and `submit` which wires them."""

from comp.submit.evaluate import evaluate
from comp.submit.pipeline import submit

__all__ = ["evaluate", "submit"]
