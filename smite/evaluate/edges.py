"""Edge metrics of soft mattes against exact soft ground truth (issue 13): matte error near the true edges,
IoU and boundary F of the hard labels."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from smite.evaluate.metrics import confusion
from smite.evaluate.scores import boundary_f


@dataclass(frozen=True)
class EdgeScores:
    """``edge_error``: mean |alpha - true alpha| over parts and pixels within ``radius`` px of a true edge;
    ``miou``: mean IoU of the labels (background included); ``boundary_f``: mean over the foreground parts."""

    edge_error: float
    miou: float
    boundary_f: float


def near_edges(labels: np.ndarray, radius: float) -> np.ndarray:
    """bool (H, W): pixels within ``radius`` px of a boundary between two labels."""
    edge = np.zeros(labels.shape, bool)
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[:, :-1] |= labels[:, 1:] != labels[:, :-1]
    edge[1:] |= labels[1:] != labels[:-1]
    edge[:-1] |= labels[1:] != labels[:-1]
    if not edge.any():
        return edge
    distance = cv2.distanceTransform((~edge).astype(np.uint8), cv2.DIST_L2, 5)
    return distance <= radius


def edge_scores(alphas: np.ndarray, true_alphas: np.ndarray, true_labels: np.ndarray, radius: float = 4.0,
                bound_px: int = 2) -> EdgeScores:
    """Scores of one frame's mattes (P, H, W) against exact mattes (P, H, W) and their labels (H, W)."""
    near = near_edges(true_labels, radius)
    error = float(np.abs(alphas - true_alphas)[:, near].mean()) if near.any() else 0.0
    labels = alphas.argmax(0)
    cm = confusion(labels, true_labels, len(alphas)).astype(np.float64)
    inter = np.diag(cm)
    ious = inter / np.maximum(cm.sum(0) + cm.sum(1) - inter, 1)
    present = [c for c in range(len(alphas)) if (true_labels == c).any()]
    f = [boundary_f(labels == c, true_labels == c, bound_px) for c in present if c > 0]
    return EdgeScores(error, float(ious[present].mean()), float(np.mean(f)) if f else 1.0)
