"""ML.EVALUATE's metrics, ML.ROC_CURVE's and ML.CONFUSION_MATRIX's counts, as BigQuery ML computes them."""

from __future__ import annotations

import numpy as np


def roc_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve: the chance a random positive outscores a random negative (ties half)."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if not n_pos or not n_neg:
        return float("nan")
    ranks = _ranks(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_curve(positive: np.ndarray, probability: np.ndarray, thresholds=None) -> list[tuple]:
    """ML.ROC_CURVE's rows, highest threshold first: (threshold, recall, false_positive_rate, true_positives,
    false_positives, true_negatives, false_negatives). A row is predicted positive when its probability
    exceeds the threshold, as ML.PREDICT decides. Default thresholds: the probabilities' percentiles."""
    if thresholds is None:
        thresholds = np.unique(np.quantile(probability, np.linspace(0, 1, 101))) if len(probability) else []
    thresholds = np.sort(np.asarray(thresholds, dtype=np.float64))[::-1]
    positives, negatives = np.sort(probability[positive]), np.sort(probability[~positive])
    tp = len(positives) - np.searchsorted(positives, thresholds, side="right")
    fp = len(negatives) - np.searchsorted(negatives, thresholds, side="right")
    fn, tn = len(positives) - tp, len(negatives) - fp
    with np.errstate(invalid="ignore", divide="ignore"):
        recall, fpr = tp / len(positives), fp / len(negatives)
    return [
        (float(t), float(r), float(f), int(a), int(b), int(c), int(d))
        for t, r, f, a, b, c, d in zip(thresholds, recall, fpr, tp, fp, tn, fn, strict=True)
    ]


def _ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average rank (scipy's rankdata, without importing scipy)."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.concatenate([[0], np.flatnonzero(ordered[1:] != ordered[:-1]) + 1])
    ends = np.concatenate([starts[1:], [len(values)]])
    ranks = np.empty(len(values))
    ranks[order] = np.repeat((starts + ends + 1) / 2, ends - starts)
    return ranks


def classification_metrics(target: np.ndarray, predicted: np.ndarray, classes: int, threshold: float = 0.5):
    """precision, recall, accuracy, f1_score, log_loss, roc_auc: the positive class's for binary models,
    macro-averaged over classes for multiclass ones (accuracy is always over all rows)."""
    eps = 1e-15
    if classes == 2:
        chosen = (predicted > threshold).astype(np.int64)
        probs = np.clip(predicted, eps, 1 - eps)
        log_loss = float(-np.mean(np.where(target == 1, np.log(probs), np.log(1 - probs))))
        per_class = [1]
        aucs = [roc_auc(target == 1, predicted)]
    else:
        chosen = predicted.argmax(axis=1)
        log_loss = float(-np.mean(np.log(np.clip(predicted[np.arange(len(target)), target], eps, 1))))
        per_class = list(range(classes))
        aucs = [roc_auc(target == k, predicted[:, k]) for k in per_class]
    precisions, recalls, f1s = [], [], []
    for k in per_class:
        tp = int(np.sum((chosen == k) & (target == k)))
        fp = int(np.sum((chosen == k) & (target != k)))
        fn = int(np.sum((chosen != k) & (target == k)))
        precision = tp / (tp + fp) if tp + fp else float("nan")
        recall = tp / (tp + fn) if tp + fn else 0.0
        precisions.append(precision)
        recalls.append(recall)
        f1s.append(2 * precision * recall / (precision + recall) if tp else 0.0)
    return {
        "precision": float(np.mean(precisions)),
        "recall": float(np.mean(recalls)),
        "accuracy": float(np.mean(chosen == target)),
        "f1_score": float(np.mean(f1s)),
        "log_loss": log_loss,
        "roc_auc": float(np.nanmean(aucs)) if not np.all(np.isnan(aucs)) else float("nan"),
    }


def regression_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    errors = predicted - actual
    with np.errstate(invalid="ignore"):
        log_errors = np.log1p(np.maximum(predicted, -1 + 1e-15)) - np.log1p(np.maximum(actual, -1 + 1e-15))
    variance = float(np.var(actual))
    return {
        "mean_absolute_error": float(np.mean(np.abs(errors))),
        "mean_squared_error": float(np.mean(errors**2)),
        "mean_squared_log_error": float(np.mean(log_errors**2)),
        "median_absolute_error": float(np.median(np.abs(errors))),
        "r2_score": 1 - float(np.mean(errors**2)) / variance if variance else float("nan"),
        "explained_variance": 1 - float(np.var(errors)) / variance if variance else float("nan"),
    }


def confusion_matrix(
    target: np.ndarray, predicted: np.ndarray, classes: int, threshold: float = 0.5
) -> np.ndarray:
    """Counts of (expected class, predicted class): rows expected, columns predicted. ``predicted`` as
    :func:`classification_metrics` takes it (binary: P(positive), predicted positive above ``threshold``)."""
    chosen = (predicted > threshold).astype(np.int64) if classes == 2 else predicted.argmax(axis=1)
    counts = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(counts, (target.astype(np.int64), chosen), 1)
    return counts
