"""Thin-part benchmark (issue 13, item 4): how well a part a fraction of a map cell wide is segmented.

Puppet shots (``smite.synthetic.edges.make_puppet_shot``: a body, a head and an arm swinging from the shoulder)
at the tiny backbone's frame size, the arm ``cells`` cells of the coarsest cross-attention map wide (16 cells over
the frame: 16 px at 256, as for SD 2.1 at 512). Per width, a part model is learned from frame 0 (the backbone's
defaults, cached) and frames 1.. are segmented one at a time with the ``fast`` preset, as the learning acceptance
does.

Two ways, per-part IoU of each:

* ``plain``: the plates as they are (the model frame is the plate's size, so no crop);
* ``zoom``: the plates enlarged 2x first, so the engine's coarse-to-fine pass crops the puppet's box and the
  model sees it larger (method.md §7's crop applied to a plate no larger than the model frame); the mattes are
  brought back to the plate's size by area averaging.

    python bench/thin.py [--cells 0.5,1,1.5,2] [--frames 6] [--seed 0] [--learn-steps N] [--json PATH]
    python bench/thin.py --smoke     # one width, 2 frames, 2 learning steps: checks the bench runs
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from edges import learned_part_model

from smite.evaluate.metrics import mean_iou
from smite.synthetic.edges import EdgeShot, make_puppet_shot

ZOOM = 2


def _segment(shot: EdgeShot, model, backbone, zoom: bool) -> tuple[np.ndarray, float]:
    """Per-part IoU (parts with background first) of frames 1.. and CPU seconds per frame."""
    from smite.video.settings import SegmentSettings
    from smite.video.shot import ShotSegmenter

    h, w = shot.frames.shape[1:3]
    plates = [cv2.resize(f, (w * ZOOM, h * ZOOM), interpolation=cv2.INTER_CUBIC).clip(0, 1) if zoom else f
              for f in shot.frames[1:]]
    segmenter = ShotSegmenter(backbone, model, SegmentSettings(preset="fast", window=1))
    started = time.process_time()
    labels = []
    for m in segmenter.segment(plates):
        alphas = np.stack([cv2.resize(a, (w, h), interpolation=cv2.INTER_AREA) for a in m.alphas]) if zoom \
            else m.alphas
        labels.append(alphas.argmax(0))
    seconds = (time.process_time() - started) / len(plates)
    return mean_iou(labels, list(shot.labels[1:]), len(shot.part_names) + 1).per_part, seconds


def _table(rows: list[dict]) -> str:
    lines = ["| arm width (cells) | px | way | arm IoU | body IoU | head IoU | s/frame |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        iou = r["iou"]
        lines.append(f"| {r['cells']:g} | {r['px']:g} | {r['way']} | {iou['arm']:.3f} | {iou['body']:.3f} | "
                     f"{iou['head']:.3f} | {r['seconds_per_frame']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", default="0.5,1,1.5,2", help="arm widths in coarse-map cells (comma-separated)")
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--learn-steps", type=int, default=None, help="learning steps (default: the tiny backbone's)")
    ap.add_argument("--device", default=None, help="device of the tiny backbone (default: auto)")
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--smoke", action="store_true", help="one width, 2 frames, 2 learning steps")
    args = ap.parse_args(argv)
    if args.smoke:
        args.cells, args.frames, args.learn_steps = "1", 2, 2
    from smite.model.backbone import load_backbone

    backbone = load_backbone("tiny", device=args.device)
    size = backbone.resolution
    coarse_cells = backbone.latent_size // 4  # cells of the coarsest cross-attention map over the model frame
    rows = []
    for cells in (float(c) for c in args.cells.split(",")):
        px = cells * size / coarse_cells
        shot = make_puppet_shot(args.frames, (size, size), seed=args.seed, arm_px=px)
        model = learned_part_model(shot, args.learn_steps, backbone)
        for way in ("plain", "zoom"):
            per_part, seconds = _segment(shot, model, backbone, way == "zoom")
            iou = dict(zip(["background", *shot.part_names], map(float, per_part), strict=True))
            rows.append({"cells": cells, "px": px, "way": way, "iou": iou, "seconds_per_frame": seconds})
            print(json.dumps(rows[-1]), flush=True)
    print(f"tiny backbone at {size} px, seed {args.seed}, frames 1..{args.frames - 1} (learned from frame 0)")
    print(_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
