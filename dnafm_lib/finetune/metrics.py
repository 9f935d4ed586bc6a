"""Evaluation metrics, computed with scikit-learn and scipy on the collected predictions.

Classification: accuracy, F1 (the positive class for two classes, macro-averaged otherwise),
Matthews correlation (MCC) and AUROC (one-vs-rest macro for more than two classes). A metric
that is undefined on the data (AUROC when only one class occurs) is NaN, not an error.
Regression: MSE, Pearson and Spearman correlation (averaged over outputs).
"""

from __future__ import annotations

import math
import warnings

import numpy as np


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """``labels`` (N,) int, ``probabilities`` (N, C) rows summing to 1."""
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef, roc_auc_score

    labels = np.asarray(labels, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    n_classes = probabilities.shape[1]
    predicted = probabilities.argmax(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns when a split holds a single class; MCC is then 0
        mcc = float(matthews_corrcoef(labels, predicted))
    out = {
        "n": float(labels.size),
        "accuracy": float(accuracy_score(labels, predicted)),
        "f1": float(
            f1_score(
                labels,
                predicted,
                average="binary" if n_classes == 2 else "macro",
                labels=None if n_classes == 2 else list(range(n_classes)),
                zero_division=0,
            )
        ),
        "mcc": mcc,
    }
    present = np.unique(labels)
    if present.size < 2:
        out["auroc"] = math.nan  # undefined with a single class
    elif n_classes == 2:
        out["auroc"] = float(roc_auc_score(labels, probabilities[:, 1]))
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # only the classes that occur: sklearn needs each one-vs-rest problem to have both sides
            columns = probabilities[:, present]
            columns = columns / columns.sum(axis=1, keepdims=True)
            out["auroc"] = (
                float(roc_auc_score(labels, columns, multi_class="ovr", labels=present))
                if present.size > 2
                else float(roc_auc_score(labels == present[1], columns[:, 1]))
            )
    return out


def regression_metrics(targets: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    """``targets`` and ``predictions`` (N, n_outputs); correlations averaged over outputs."""
    from scipy.stats import pearsonr, spearmanr

    targets = np.asarray(targets, dtype=np.float64).reshape(len(targets), -1)
    predictions = np.asarray(predictions, dtype=np.float64).reshape(targets.shape)
    pearson, spearman = [], []
    for column in range(targets.shape[1]):
        y, p = targets[:, column], predictions[:, column]
        if y.size < 2 or np.ptp(y) == 0 or np.ptp(p) == 0:
            pearson.append(math.nan)  # correlation of a constant is undefined
            spearman.append(math.nan)
            continue
        pearson.append(float(pearsonr(y, p)[0]))
        spearman.append(float(spearmanr(y, p)[0]))
    return {
        "n": float(targets.shape[0]),
        "mse": float(np.mean((targets - predictions) ** 2)),
        "pearson": float(np.mean(pearson)),
        "spearman": float(np.mean(spearman)),
    }
