"""From the organisers' files to a prepared workspace: listing and decoding, the store, dHash,
duplicates, labels and conflicts, splits and folds, and `prepare` which wires them."""

from comp.prepare.pipeline import Prepared, prepare, prepare_test

__all__ = ["Prepared", "prepare", "prepare_test"]
