"""Labelled sequence tables (CSV, TSV, parquet) → checked train/validation/test splits.

A table has a sequence column and a label column. Splits come from a ``split`` column
(values train/val/test; "validation"/"valid" are accepted for val) when the table has one,
or else from a seeded random partition by ratio. Labels are checked against the task once,
here, with errors naming the file, row and column.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from dnafm_lib.core.errors import DnafmError
from dnafm_lib.core.settings import Settings

SPLITS = ("train", "val", "test")
# a literal table on purpose (same shape as options.OPTION_HELP, different data)
SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
}


class DataError(DnafmError):
    """A labelled table that is missing a column or holds labels the task cannot use."""


@dataclass
class DataConfig(Settings):
    """The ``data.*`` options."""

    SECTION: ClassVar[str] = "data"

    path: str = ""  # CSV, TSV (.tsv/.txt) or parquet
    sequence_column: str = "sequence"
    label_column: str = "label"  # regression: several columns separated by commas
    split_column: str = "split"  # used when the table has it; otherwise the ratios below
    val_ratio: float = 0.1
    test_ratio: float = 0.1
    seed: int = 0
    batch_size: int = 32
    max_length: int = 0  # tokens incl. [CLS]/[EOS]; a longer sequence is an error; 0 = no limit

    def problems(self) -> Iterator[tuple[str, str]]:
        if not self.path:
            yield "path", "is required (a CSV, TSV or parquet file)"
        for key in ("val_ratio", "test_ratio"):
            if not 0 <= getattr(self, key) < 1:
                yield key, f"must be in [0, 1), got {getattr(self, key)}"
        if self.val_ratio + self.test_ratio >= 1:
            yield (
                "test_ratio",
                f"and data.val_ratio must sum to less than 1, got {self.test_ratio} + {self.val_ratio}",
            )
        if self.batch_size < 1:
            yield "batch_size", f"must be at least 1, got {self.batch_size}"

    @property
    def label_columns(self) -> list[str]:
        return [c.strip() for c in self.label_column.split(",") if c.strip()]


@dataclass
class SplitTable:
    """One split: sequences, labels in the task's form, and the rows they came from."""

    name: str
    sequences: list[str]
    labels: list[Any]
    rows: np.ndarray  # 0-based row numbers in the input table
    extra: pd.DataFrame  # other columns (ids, coordinates) carried into the predictions

    def __len__(self) -> int:
        return len(self.sequences)

    def batches(self, batch_size: int, shuffle: bool = False, seed: int = 0) -> Iterator[dict[str, Any]]:
        order = np.random.default_rng(seed).permutation(len(self)) if shuffle else np.arange(len(self))
        for start in range(0, len(order), batch_size):
            chosen = order[start : start + batch_size]
            yield {
                "sequences": [self.sequences[i] for i in chosen],
                "labels": [self.labels[i] for i in chosen],
                "index": chosen,
            }


def read_table(path: str | Path) -> pd.DataFrame:
    """CSV, TSV or parquet by extension (gzip-compressed text works too).

    Text columns are read as strings (labels are converted per task later), so a token-label
    string such as "0012" keeps its leading zeros.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    kind = suffixes[-1] if suffixes else ""
    try:
        if kind in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if kind in (".tsv", ".txt", ".tab"):
            return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, na_values=[""])
        if kind == ".csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: cannot read as {kind[1:]}: {exc}") from None
    raise DataError(f"{path}: unknown table format {kind or '(no extension)'!r}; use .csv, .tsv or .parquet")


def _check_columns(table: pd.DataFrame, columns: list[str], where: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DataError(f"{where}: no column {', '.join(map(repr, missing))}; columns are {list(table.columns)}")


def _classification_labels(values: pd.Series, n_classes: int, where: str) -> list[int]:
    numeric = pd.to_numeric(values, errors="coerce")
    bad = numeric.isna() | (numeric != np.floor(numeric))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"{where}: row {row}: label {values.iloc[row]!r} is not an integer class id "
            f"(classification labels must be integers 0..{n_classes - 1})"
        )
    ints = numeric.astype(np.int64)
    out_of_range = (ints < 0) | (ints >= n_classes)
    if out_of_range.any():
        row = int(np.flatnonzero(out_of_range.to_numpy())[0])
        raise DataError(
            f"{where}: row {row}: label {int(ints.iloc[row])} is outside 0..{n_classes - 1} (model.n_classes)"
        )
    return ints.tolist()


def _regression_labels(table: pd.DataFrame, columns: list[str], n_outputs: int, where: str) -> list[list[float]]:
    if len(columns) != n_outputs:
        raise DataError(f"{where}: {len(columns)} label column(s) {columns} but model.n_outputs is {n_outputs}")
    out = []
    for column in columns:
        numeric = pd.to_numeric(table[column], errors="coerce")
        bad = numeric.isna() | ~np.isfinite(numeric)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"{where}: row {row}: column {column!r}: label {table[column].iloc[row]!r} is not a number")
        out.append(numeric.to_numpy(dtype=np.float32))
    return np.stack(out, axis=1).tolist()


def _token_labels(values: pd.Series, sequences: pd.Series, n_classes: int, where: str) -> list[np.ndarray]:
    """One class per base: a digit string ("0012") or comma/space separated integers."""
    out = []
    for row, (text, sequence) in enumerate(zip(values.astype(str), sequences)):
        parts = text.replace(",", " ").split() if ("," in text or " " in text) else list(text.strip())
        try:
            labels = np.array([int(p) for p in parts], dtype=np.int64)
        except ValueError:
            raise DataError(f"{where}: row {row}: token labels {text[:40]!r} are not integer class ids") from None
        if labels.size != len(sequence):
            raise DataError(f"{where}: row {row}: {labels.size} token labels for a sequence of {len(sequence)} bases")
        if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
            raise DataError(f"{where}: row {row}: token label outside 0..{n_classes - 1} (model.n_classes)")
        out.append(labels)
    return out


def _assign_splits(table: pd.DataFrame, config: DataConfig, where: str) -> np.ndarray:
    if config.split_column in table.columns:
        raw = table[config.split_column].astype(str).str.strip().str.lower()
        mapped = raw.map(SPLIT_ALIASES)
        if mapped.isna().any():
            row = int(np.flatnonzero(mapped.isna().to_numpy())[0])
            raise DataError(
                f"{where}: row {row}: column {config.split_column!r}: {table[config.split_column].iloc[row]!r} "
                f"is not one of train, val, test"
            )
        return mapped.to_numpy()
    n_rows = len(table)
    order = np.random.default_rng(config.seed).permutation(n_rows)
    n_test = int(round(n_rows * config.test_ratio))
    n_val = int(round(n_rows * config.val_ratio))
    splits = np.full(n_rows, "train", dtype=object)
    splits[order[:n_test]] = "test"
    splits[order[n_test : n_test + n_val]] = "val"
    return splits


def load_splits(config: DataConfig, label_kind: str | None, task_config) -> dict[str, SplitTable]:
    """Read ``config.path`` and return train/val/test splits with labels checked for the task.

    ``label_kind`` is the task's: "classification", "regression", "token", or None (no labels);
    ``task_config`` supplies ``n_classes`` / ``n_outputs``.
    """
    config.validate()
    where = str(config.path)
    table = read_table(config.path).reset_index(drop=True)
    if table.empty:
        raise DataError(f"{where}: the table has no rows")
    _check_columns(table, [config.sequence_column], where)
    sequences = table[config.sequence_column]
    if sequences.isna().any():
        row = int(np.flatnonzero(sequences.isna().to_numpy())[0])
        raise DataError(f"{where}: row {row}: column {config.sequence_column!r} is empty")
    sequences = sequences.astype(str)

    labels: list[Any]
    label_columns = config.label_columns if label_kind else []
    if label_kind:
        _check_columns(table, label_columns, where)
    if label_kind == "token":
        labels = _token_labels(table[label_columns[0]], sequences, task_config.n_classes, where)
    elif label_kind == "classification":
        labels = _classification_labels(table[label_columns[0]], task_config.n_classes, where)
    elif label_kind == "regression":
        labels = _regression_labels(table, label_columns, task_config.n_outputs, where)
    else:
        labels = [None] * len(table)

    splits = _assign_splits(table, config, where)
    carried = [c for c in table.columns if c not in {config.sequence_column, config.split_column, *label_columns}]
    out = {}
    for name in SPLITS:
        rows = np.flatnonzero(splits == name)
        out[name] = SplitTable(
            name=name,
            sequences=[sequences.iloc[i] for i in rows],
            labels=[labels[i] for i in rows],
            rows=rows,
            extra=table.iloc[rows][carried].reset_index(drop=True),
        )
    return out
