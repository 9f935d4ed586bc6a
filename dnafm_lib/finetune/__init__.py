"""Fine-tuning the DNA FM backbone on labelled sequences.

- ``models``: the task models (Embed, SequenceClassification, TokenClassification,
  SequenceRegression) with the model card's ``from_config`` / ``collate`` / ``forward``.
- ``data``: labelled tables (CSV/TSV/parquet) → splits and batches.
- ``metrics``: classification and regression metrics (scikit-learn, scipy).
- ``trainer``: the fit/test loop (early stopping, bf16 on GPU, safetensors checkpoints).
- ``cds_windows``: the worked example's dataset (windows inside vs outside CDS, from a GFF3).

May import: ``core``, ``model``, ``data``, ``inference``.
"""

from dnafm_lib.finetune.models import (
    Embed,
    SequenceClassification,
    SequenceRegression,
    TaskModel,
    TokenClassification,
    load_task,
)

#: task name (as on the command line) → class
TASKS: dict[str, type[TaskModel]] = {
    cls.task_name: cls for cls in (Embed, SequenceClassification, TokenClassification, SequenceRegression)
}

__all__ = [
    "Embed",
    "SequenceClassification",
    "TokenClassification",
    "SequenceRegression",
    "TaskModel",
    "TASKS",
    "load_task",
]
