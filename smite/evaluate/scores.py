"""Shot evaluation against ground-truth label maps: per-part IoU, boundary F, and temporal flicker.

* IoU (percent) follows SMITE's convention (method.md §8.2) except for absent parts: a part is averaged
  over the frames whose GT contains it; a part absent from every GT frame has no value (NaN / None)
  instead of 0, and is left out of the mean. The mean includes the background, as SMITE's mIoU.
* Boundary F is DAVIS's contour accuracy (§8.2), written from its definition; its mean is over the
  foreground parts (1..n-1), as in DAVIS.
* Flicker has no counterpart in the official code (§8.2): the fraction of pixels whose label changes
  between consecutive frames once the previous labels are carried along the optical flow.
"""

import math

import cv2
import numpy as np

from smite.errors import SmiteError
from smite.video.tracking import dis_flow, to_grey


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """Inner contour of a bool mask (H, W): mask pixels with a 4-neighbour outside the mask, bool (H, W).

    The image border is not a contour (erosion treats outside pixels as set), as in DAVIS.
    """
    m = np.asarray(mask, bool).astype(np.uint8)
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    return (m > 0) & (cv2.erode(m, cross) == 0)


def _disk(radius: int) -> np.ndarray:
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    return (xx * xx + yy * yy <= radius * radius).astype(np.uint8)


def boundary_f(pred: np.ndarray, gt: np.ndarray, bound_th: float = 0.008) -> float:
    """DAVIS boundary F-measure of two bool masks (H, W).

    Contours match within a disk of radius ``ceil(bound_th * image diagonal)`` (``bound_th`` >= 1 is a
    radius in pixels). Precision: fraction of predicted contour pixels near the GT contour; recall: the
    converse; F = 2PR / (P + R). Both contours empty -> 1; only one empty -> 0.
    """
    if pred.shape != gt.shape:
        raise ValueError(f"pred {pred.shape} and gt {gt.shape} differ in shape")
    radius = int(bound_th if bound_th >= 1 else math.ceil(bound_th * math.hypot(*gt.shape)))
    bp, bg = boundary_map(pred), boundary_map(gt)
    n_pred, n_gt = int(bp.sum()), int(bg.sum())
    if n_pred == 0 and n_gt == 0:
        return 1.0
    if n_pred == 0 or n_gt == 0:
        return 0.0
    disk = _disk(radius)
    near_gt = cv2.dilate(bg.astype(np.uint8), disk) > 0
    near_pred = cv2.dilate(bp.astype(np.uint8), disk) > 0
    precision = (bp & near_gt).sum() / n_pred
    recall = (bg & near_pred).sum() / n_gt
    return 0.0 if precision + recall == 0 else float(2 * precision * recall / (precision + recall))


def _warp_nearest(labels: np.ndarray, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """labels (H, W) sampled at (x, y) + flow (H, W, 2), nearest: (warped (H, W), inside (H, W) bool)."""
    h, w = labels.shape
    yy, xx = np.mgrid[0:h, 0:w]
    sx = np.rint(xx + flow[..., 0]).astype(np.int64)
    sy = np.rint(yy + flow[..., 1]).astype(np.int64)
    inside = (sx >= 0) & (sx < w) & (sy >= 0) & (sy < h)
    return labels[sy.clip(0, h - 1), sx.clip(0, w - 1)], inside


def flicker_counts(labels: np.ndarray, frames: np.ndarray, num_parts: int) -> np.ndarray:
    """Counts (num_parts + 1, 2): [c] = (changed, compared) pixels of part c; last row = all pixels."""
    labels, frames = np.asarray(labels), np.asarray(frames, np.float32)
    if labels.ndim != 3 or frames.shape != labels.shape + (3,):
        raise SmiteError(f"flicker needs labels (T, H, W) and frames (T, H, W, 3), got {labels.shape}, "
                         f"{frames.shape}")
    counts = np.zeros((num_parts + 1, 2), np.int64)
    grey = to_grey(frames)
    for t in range(1, len(labels)):
        # Flow from frame t back to t-1 says where each pixel of t came from.
        warped, inside = _warp_nearest(labels[t - 1], dis_flow(grey[t], grey[t - 1]))
        changed = (warped != labels[t]) & inside
        counts[-1] += changed.sum(), inside.sum()
        for c in range(num_parts):
            relevant = ((warped == c) | (labels[t] == c)) & inside
            counts[c] += (changed & relevant).sum(), relevant.sum()
    return counts


def _ratio(changed: int, total: int) -> float:
    return changed / total if total else math.nan


def flicker(labels: np.ndarray, frames: np.ndarray) -> float:
    """Fraction of pixels whose label changes between consecutive frames, after flow warping.

    labels: int (T, H, W); frames: float32 RGB (T, H, W, 3) in [0, 1]. The previous frame's labels are
    warped into the current frame by DIS optical flow (nearest sampling); pixels whose flow leaves the
    frame are excluded. Pooled over all pairs; 0.0 for T < 2.
    """
    counts = flicker_counts(labels, frames, 0)
    return float(_ratio(*counts[-1])) if counts[-1, 1] else 0.0


def _iou(pred: np.ndarray, gt: np.ndarray) -> float:
    union = (pred | gt).sum()
    return float((pred & gt).sum() / union) if union else 1.0


def _per_part(preds: np.ndarray, gts: np.ndarray, num_parts: int, score) -> list[float]:
    """score(pred==c, gt==c) averaged over the frames whose GT contains c; NaN where none does."""
    values = []
    for c in range(num_parts):
        scores = [score(p == c, g == c) for p, g in zip(preds, gts, strict=True) if (g == c).any()]
        values.append(float(np.mean(scores)) if scores else math.nan)
    return values


def _mean(values: list[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return float(np.mean(kept)) if kept else math.nan


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def evaluate_shot(preds: list[np.ndarray], gts: list[np.ndarray], part_names: list[str],
                  frames: np.ndarray | list[np.ndarray] | None = None) -> dict:
    """Metrics of one shot: per-part IoU (percent), boundary F, and flicker when ``frames`` are given.

    preds, gts: lists of int label maps (H, W), one per evaluated frame, labels in [0, n) with
    n = len(part_names) (part 0 = background). frames: the matching RGB frames (T, H, W, 3) float32 in
    [0, 1], consecutive in time, for the flicker of the predictions. Returns a JSON-serialisable dict
    (NaN -> None): ``frames``, ``parts``, ``iou`` {part: %}, ``miou``, ``boundary_f`` {part: F},
    ``boundary_f_mean`` (foreground parts), and with frames ``flicker`` and ``flicker_per_part``.
    """
    if len(preds) != len(gts) or not preds:
        raise SmiteError(f"evaluate_shot needs as many predictions as GT frames (>= 1), got {len(preds)} and "
                         f"{len(gts)}")
    shapes = {np.shape(x) for x in [*preds, *gts]}
    if len(shapes) != 1:
        raise SmiteError(f"predictions and GT frames differ in size {sorted(shapes)}: resize them to one")
    p, g = np.stack([np.asarray(x) for x in preds]), np.stack([np.asarray(x) for x in gts])
    n, names = len(part_names), list(part_names)
    iou = [v * 100 for v in _per_part(p, g, n, _iou)]
    bf = _per_part(p, g, n, boundary_f)
    result = {
        "frames": len(p),
        "parts": names,
        "iou": dict(zip(names, iou, strict=True)),
        "miou": _mean(iou),
        "boundary_f": dict(zip(names, bf, strict=True)),
        "boundary_f_mean": _mean(bf[1:]),
    }
    if frames is not None:
        counts = flicker_counts(p, np.stack(list(frames)) if isinstance(frames, list) else frames, n)
        result["flicker"] = _ratio(*counts[-1]) if counts[-1, 1] else 0.0
        result["flicker_per_part"] = {name: _ratio(*counts[c]) for c, name in enumerate(names)}
    return _jsonable(result)


def _cell(value, fmt: str, width: int) -> str:
    return f"{'-' if value is None else format(value, fmt):>{width}}"


def format_table(results: dict) -> str:
    """A fixed-width text table of :func:`evaluate_shot`'s result, one row per part plus the means."""
    has_flicker = "flicker" in results
    width = max([len("mean"), *(len(n) for n in results["parts"])]) + 2

    def row(name: str, iou, f, flick) -> str:
        text = f"{name:<{width}}{_cell(iou, '.1f', 8)}{_cell(f, '.3f', 8)}"
        return text + (_cell(flick, ".4f", 9) if has_flicker else "")

    header = f"{'part':<{width}}{'IoU %':>8}{'F':>8}" + (f"{'flicker':>9}" if has_flicker else "")
    lines = [header, "-" * len(header)]
    for name in results["parts"]:
        flick = results["flicker_per_part"][name] if has_flicker else None
        lines.append(row(name, results["iou"][name], results["boundary_f"][name], flick))
    lines.append("-" * len(header))
    lines.append(row("mean", results["miou"], results["boundary_f_mean"], results.get("flicker")))
    lines.append(f"({results['frames']} frames; F mean over foreground parts; flicker over the whole shot)")
    return "\n".join(lines)
