"""Segmentation metrics on label maps: per-part IoU and the mean IoU over a shot.

Convention: ``num_parts`` counts every label value *including background* (label 0), as in method.md
§8.2; for a :class:`smite.synthetic.shots.SyntheticShot` pass ``shot.num_labels``. Values are in [0, 1].

Unlike the released code (method.md §12.18), a part absent from every ground-truth frame is not scored
0 but left out of the mean (reported as NaN), so a clip without, say, an ear is not penalised for it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import zip_longest

import numpy as np

from smite.errors import SmiteError


@dataclass
class MiouResult:
    """Mean IoU of a shot.

    Attributes:
        per_part: float64 (num_parts,), per label the mean IoU over the frames whose ground truth contains
            it; NaN for labels absent from every ground-truth frame.
        miou: mean of the non-NaN ``per_part`` values.
        num_frames: number of frames scored.
    """

    per_part: np.ndarray
    miou: float
    num_frames: int


def _check_num_parts(num_parts: int) -> None:
    if not isinstance(num_parts, (int, np.integer)) or num_parts < 1:
        raise SmiteError(f"num_parts must be a positive integer (labels incl. background), got {num_parts!r}")


def _check_pair(pred: np.ndarray, gt: np.ndarray, num_parts: int) -> tuple[np.ndarray, np.ndarray]:
    pred, gt = np.asarray(pred), np.asarray(gt)
    _check_num_parts(num_parts)
    if pred.shape != gt.shape or pred.ndim != 2:
        raise SmiteError(f"prediction {pred.shape} and ground truth {gt.shape} must be equal (H, W) maps")
    for name, a in (("prediction", pred), ("ground truth", gt)):
        if not (np.issubdtype(a.dtype, np.integer) or a.dtype == bool):
            raise SmiteError(f"{name} labels must be integers, got dtype {a.dtype}")
        if a.size and (a.min() < 0 or a.max() >= num_parts):
            bad = int(a.max()) if a.max() >= num_parts else int(a.min())
            raise SmiteError(
                f"{name} has label {bad} outside 0..{num_parts - 1}; num_parts must count every label "
                "including background"
            )
    return pred.astype(np.int64), gt.astype(np.int64)


def confusion(pred: np.ndarray, gt: np.ndarray, num_parts: int) -> np.ndarray:
    """Confusion matrix of one frame: int64 (num_parts, num_parts), rows = ground truth, columns = prediction.

    Args:
        pred, gt: integer label maps of the same shape (H, W), values in 0..num_parts-1.
    """
    pred, gt = _check_pair(pred, gt, num_parts)
    counts = np.bincount((gt * num_parts + pred).ravel(), minlength=num_parts * num_parts)
    return counts.reshape(num_parts, num_parts)


def _iou_from_confusion(cm: np.ndarray) -> np.ndarray:
    inter = np.diag(cm).astype(np.float64)
    union = cm.sum(axis=0) + cm.sum(axis=1) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, np.nan)


def mean_iou(preds: Iterable[np.ndarray], gts: Iterable[np.ndarray], num_parts: int) -> MiouResult:
    """Mean IoU over a shot (background included, as in method.md §8.2, without its §12.18 caveat).

    For each label the IoU is averaged over the frames whose ground truth contains it (a prediction of
    the label on a frame whose ground truth lacks it is not scored); labels absent from every
    ground-truth frame are NaN and left out of ``miou``.

    Args:
        preds, gts: equally long sequences of integer label maps (H, W) (or (T, H, W) arrays).
        num_parts: number of labels including background.
    """
    _check_num_parts(num_parts)
    total = np.zeros(num_parts)
    frames_with = np.zeros(num_parts, np.int64)
    count = 0
    for pred, gt in zip_longest(preds, gts):
        if pred is None or gt is None:
            raise SmiteError("mean_iou needs as many predicted frames as ground-truth frames")
        cm = confusion(pred, gt, num_parts)
        present = cm.sum(axis=1) > 0  # labels present in this frame's ground truth
        total[present] += _iou_from_confusion(cm)[present]
        frames_with += present
        count += 1
    if count == 0:
        raise SmiteError("mean_iou got no frames to score")
    per_part = np.full(num_parts, np.nan)
    scored = frames_with > 0
    per_part[scored] = total[scored] / frames_with[scored]
    return MiouResult(per_part=per_part, miou=float(per_part[scored].mean()), num_frames=count)
