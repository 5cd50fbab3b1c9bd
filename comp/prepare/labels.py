"""Labels: reading the labels CSV, class codes, and resolving duplicate groups whose labels
conflict. Pure functions on frames and arrays."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from comp.config import Conflicts, Duplicates
from comp.errors import CompError

# -- labels ---------------------------------------------------------------------------------------

# what each CSV read here is, and the option that names it (for the messages)
ROLES = {"labels": ("labels file", "pass --labels FILE", "pass --id-column / --label-column"),
         "groups": ("groups file", "pass --groups FILE:COLUMN",
                    "pass --groups FILE:COLUMN with one of its columns (ids in 'id')")}


def read_table(path: Path, nrows: int | None = None) -> pd.DataFrame:
    """A CSV as strings; semicolons or tabs between the columns are taken as commas are."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, nrows=nrows)
    if len(frame.columns) == 1:
        sep = next((c for c in (";", "\t") if c in frame.columns[0]), None)
        if sep is not None:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, nrows=nrows, sep=sep)
    return frame


def header_is_data(path: Path, header: list[str]) -> CompError:
    """The refusal of a labels file whose first line is a row of data."""
    return CompError(f"{path}: its first line ({', '.join(header)}) is a row of data, not a "
                     "header; add a first line naming the columns (id,label)")


def read_labels(path: Path, *, id_column: str = "id", label_column: str = "label",
                role: str = "labels") -> pd.DataFrame:
    """Read a labels CSV (or, `role="groups"`, a groups file) as strings (ids keep leading
    zeros): columns `id`, `label_text`."""
    what, name_it, columns_fix = ROLES[role]
    if not path.exists():
        raise CompError(f"{path}: {what} not found; {name_it}")
    try:
        frame = read_table(path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise CompError(f"{path}: cannot read as CSV ({str(exc).splitlines()[0]}); "
                        "fix the file") from None
    for column in (id_column, label_column):
        if column not in frame.columns:
            if _header_is_data(frame):
                raise header_is_data(path, list(frame.columns))
            raise CompError(f"{path}: no column {column!r} (columns: {', '.join(frame.columns)}); "
                            f"{columns_fix}")
    out = pd.DataFrame({"id": frame[id_column].str.strip(),
                        "label_text": frame[label_column].str.strip()})
    # strip a file extension from ids given as file names (userid.jpg)
    out["id"] = out["id"].str.replace(r"\.(png|jpe?g|bmp|gif|webp|tiff?)$", "", regex=True,
                                      case=False)
    check_ids(path, out["id"], fix_empty="fix the row", fix_repeated="keep one row per id")
    return out


def check_ids(path: Path, ids: pd.Series, *, where: str = "", fix_empty: str,
              fix_repeated: str) -> None:
    """Refuse a CSV's id column with an empty id or an id on two rows, naming the first rows
    (the file's line numbers: row 2 is the first below the header)."""
    empty = np.flatnonzero((ids == "").to_numpy())
    if len(empty):
        raise CompError(f"{path}: row {empty[0] + 2}{where} has an empty id; {fix_empty}")
    repeated = np.flatnonzero(ids.duplicated(keep=False).to_numpy())
    if len(repeated):
        raise CompError(f"{path}: id {ids.iloc[repeated[0]]!r} appears more than once{where} "
                        f"(rows {repeated[0] + 2}, {repeated[1] + 2}); {fix_repeated}")


def _header_is_data(frame: pd.DataFrame) -> bool:
    """Whether the header read is a first row of data: its last cell is one of the values of
    the last column below it (a class), as no column name is."""
    if frame.empty or len(frame.columns) < 2:
        return False
    last = str(frame.columns[-1]).strip()
    return last in set(frame.iloc[:, -1].str.strip())


MISSING = {"", "nan", "na", "n/a", "null", "none"}


def _canonical(value: str) -> str:
    """One spelling per numeric class: '1', '1.0', '+1', '1e0' -> '1' (others unchanged)."""
    try:
        number = float(value)
    except ValueError:
        return value
    return str(int(number)) if math.isfinite(number) and number == int(number) else value


def _is_number(value: str) -> bool:
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


RARE_SHARE, RARE_COUNT = 0.001, 3  # a whole-number label this rare is taken for a typo


def integer_classes(values: pd.Series) -> list[str]:
    """The classes of labels that are all numbers: every whole number that is common enough,
    sorted numerically ('0'..'4' for a 5-class challenge). A value held by fewer than 3
    images, or under 0.1 % of them, is left out (its rows are then refused, naming it);
    fractions are left out too. At least 0 and 1 are classes (binary labels)."""
    counts = values.value_counts()
    rare = max(RARE_COUNT, RARE_SHARE * len(values))
    whole = [v for v in counts.index if "." not in v and "e" not in v.lower()]
    common = [v for v in whole if counts[v] >= rare]
    if len(common) < 2:
        common = sorted({"0", "1", *common}, key=float)
    return sorted(common, key=float)


def encode_labels(texts: pd.Series, *, classes: list[str] | None,
                  source: str) -> tuple[np.ndarray, list[str]]:
    """Label texts -> class indices. Without `classes`: whole numbers are K classes sorted
    numerically (0/1 stay 0/1; a number so rare it is more likely a typo is refused, see
    `integer_classes`), names are sorted. Numeric spellings of one number are one class ('1'
    and '1.0').

    Raises:
        CompError naming the first row whose label is missing (empty, NaN) or not a known
        class, or saying that the labels hold fewer than two classes.
    """
    values = texts.to_numpy(dtype=str)
    missing = np.array([v.strip().lower() in MISSING for v in values], dtype=bool)
    if missing.any():
        row = int(np.argmax(missing))
        raise CompError(f"{source}: row {row + 2} (id {texts.index[row]!r}) has no label "
                        f"({str(values[row])!r}); fill it in or remove the row")
    numeric = all(_is_number(v) for v in set(values))
    if numeric:
        values = np.array([_canonical(v) for v in values], dtype=object)
    if classes is None:
        classes = integer_classes(pd.Series(values)) if numeric else sorted(set(values))
    lookup = {(_canonical(c) if numeric else c): i for i, c in enumerate(classes)}
    codes = np.array([lookup.get(v, -1) for v in values], dtype=np.int64)
    if (codes < 0).any():
        row = int(np.argmax(codes < 0))
        rare = int((values == values[row]).sum())
        why = (f" (only {rare} image{'s' if rare > 1 else ''} of {len(values):,} "
               "has it: a typo?)" if numeric and rare < len(values) else "")
        raise CompError(f"{source}: row {row + 2} (id {texts.index[row]!r}) has label "
                        f"{str(texts.iloc[row])!r}, which is not one of {', '.join(classes)}"
                        f"{why}; "
                        "fix the label or pass --classes with every class name")
    present = np.unique(codes)
    given = list(classes)
    twice = [c for k, c in enumerate(given) if c in given[:k]]
    if twice:
        raise CompError(f"--classes names {twice[0]!r} twice; list each class once")
    unused = [c for k, c in enumerate(given) if k not in set(present.tolist())]
    if unused and len(present) >= 2:
        raise CompError(f"--classes lists {unused[0]!r}, which no training image has; a "
                        "class without images cannot be learned: leave it out of --classes")
    if len(present) < 2:
        only = classes[int(present[0])] if len(present) else "none"
        raise CompError(f"{source}: every label is {only!r}: a classifier needs at least two "
                        "classes in the labels; check the label column (--label-column)")
    return codes, classes


# -- conflicts ------------------------------------------------------------------------------------


def resolve_groups(groups: np.ndarray, labels: np.ndarray, *,
                   conflicts: Conflicts = Conflicts.DROP,
                   duplicates: Duplicates = Duplicates.KEEP_ONE
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decide which images to keep and with which label.

    Args:
        groups: (N,) group id per image.
        labels: (N,) class index per image.
        conflicts: `drop` removes a group whose members disagree, whole (the report's policy);
            `majority` keeps it with the most common label (ties: dropped).
        duplicates: `keep-one` keeps the first member of each group; `keep-all` keeps them all.
    Returns:
        kept (N,) bool, final label (N,), conflict (N,) bool (member of a conflicting group).
    """
    frame = pd.DataFrame({"g": groups, "y": labels})
    n_labels = frame.groupby("g")["y"].transform("nunique").to_numpy()
    conflict = n_labels > 1
    final = labels.copy()
    kept = np.ones(len(labels), dtype=bool)
    if conflict.any():
        if conflicts == Conflicts.DROP:
            kept &= ~conflict
        else:
            sub = frame[conflict]
            counts = sub.groupby(["g", "y"]).size().rename("c").reset_index()
            top = counts.sort_values(["g", "c"], ascending=[True, False])
            best = top.groupby("g").head(1).set_index("g")
            tie = counts.groupby("g")["c"].apply(lambda c: (c == c.max()).sum() > 1)
            for i in np.nonzero(conflict)[0]:
                g = groups[i]
                if tie[g]:
                    kept[i] = False
                else:
                    final[i] = best.loc[g, "y"]
    if duplicates == Duplicates.KEEP_ONE:
        # within a kept group keep its first kept member
        order = pd.Series(np.where(kept, groups, -1))
        first = ~order.duplicated().to_numpy() & kept
        kept &= first
    return kept, final, conflict
