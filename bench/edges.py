"""Edge benchmark (issue 13): bilinear vs refined mattes on synthetic shots with anti-aliased sub-pixel edges.

Shots come from ``smite.synthetic.edges`` (a disc, a rotating bar and a 4-px cable over a panning texture, exact
soft mattes) at 1K (1024x540) and 2K (2048x1080). Two sources of coarse maps:

* ``grid``: the exact mattes reduced (area average) to the latent grid an SD 2.1 run would give (64 cells over
  the long side), then brought back by each method: what the upsampler alone does;
* ``tiny``: a part model learned on the tiny backbone from frame 0 (cached under /tmp), segmenting the shot with
  the ``fast`` preset (coarse-to-fine on): the bilinear mattes and the same mattes refined on each frame's plate.

Per source, size and method: mean absolute matte error within 4 px of the true edges, mIoU (background included),
boundary F (2 px, foreground parts), flicker (``smite eval``'s), and CPU seconds per frame (process time, so a
busy shared machine does not inflate it; refinement alone, and for ``tiny`` also the segmentation's own).

    python bench/edges.py [--frames 6] [--sizes 1k,2k] [--methods bilinear,refined,guided] [--sources grid,tiny]
                          [--learn-steps N] [--json PATH]
    python bench/edges.py --smoke     # 2 small frames, 2 learning steps: checks the bench runs
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from smite.evaluate.edges import edge_scores
from smite.evaluate.scores import flicker
from smite.synthetic.edges import EdgeShot, make_edge_shot, to_grid
from smite.video.mattes import upsample_mattes

SIZES = {"1k": (540, 1024), "2k": (1080, 2048), "smoke": (120, 256)}
LATENT = 64  # SD 2.1 latent cells over the model frame's side
CACHE = Path(os.environ.get("SMITE_BENCH_CACHE", "/tmp/smite-bench-edges"))


def _scores(alphas: list[np.ndarray], shot: EdgeShot) -> dict:
    per = [edge_scores(a, m, lab) for a, m, lab in zip(alphas, shot.mattes, shot.labels)]
    labels = np.stack([a.argmax(0) for a in alphas]).astype(np.uint8)
    return {"edge_error": float(np.mean([s.edge_error for s in per])),
            "miou": float(np.mean([s.miou for s in per])),
            "boundary_f": float(np.mean([s.boundary_f for s in per])),
            "flicker": float(flicker(labels, shot.frames)) if len(alphas) > 1 else float("nan")}


def bench_grid(shot: EdgeShot, methods: list[str]) -> dict:
    """Exact mattes reduced to the latent grid, upsampled by each method."""
    h, w = shot.frames.shape[1:3]
    cell = max(h, w) / LATENT
    cells = (max(1, round(h / cell)), max(1, round(w / cell)))
    grids = [to_grid(m, cells) for m in shot.mattes]
    out = {}
    for method in methods:
        started = time.process_time()
        alphas = [upsample_mattes(g, f, method) for g, f in zip(grids, shot.frames)]
        seconds = (time.process_time() - started) / len(grids)
        out[method] = _scores(alphas, shot) | {"seconds_per_frame": seconds}
    return out


def learned_part_model(shot: EdgeShot, steps: int | None, backbone):
    """Learned from frame 0 of ``shot`` on the tiny backbone, cached by what it is learned from and with."""
    from smite.learn.learner import LearnSettings, PartLearner
    from smite.model.partmodel import PartModel

    settings = LearnSettings.for_backbone(backbone, **({"steps": steps, "token_steps": max(1, steps // 5)}
                                                       if steps else {}))
    key = hashlib.sha256(shot.frames[0].tobytes() + shot.labels[0].tobytes() + repr(
        (shot.part_names, settings, backbone.resolution, backbone.fingerprint)).encode()).hexdigest()[:16]
    path = CACHE / f"model-{key}.smite"
    if path.exists():
        return PartModel.load(path)
    CACHE.mkdir(parents=True, exist_ok=True)
    model = PartLearner(backbone, settings).learn([shot.frames[0]], [shot.labels[0]], shot.part_names)
    model.save(path)
    return model


def bench_tiny(shot: EdgeShot, model, backbone, methods: list[str]) -> dict:
    """Segment with the fast preset (bilinear mattes), then refine each frame's mattes as the engine does."""
    from smite.video.mattes import refine_frame
    from smite.video.settings import SegmentSettings
    from smite.video.shot import ShotSegmenter

    refined = {m: [] for m in methods if m != "bilinear"}
    seconds = {m: 0.0 for m in refined}

    class Both(ShotSegmenter):
        def _mattes(self, result, j, plate):
            base = super()._mattes(result, j, plate)  # edges="bilinear": today's mattes
            cell = max(result.view.box.height, result.view.box.width) / self.backbone.latent_size
            for method in refined:
                started = time.process_time()
                refined[method].append(refine_frame(base, plate, cell, method).alphas)
                seconds[method] += time.process_time() - started
            return base

    segmenter = Both(backbone, model, SegmentSettings(preset="fast", edges="bilinear"))
    started = time.process_time()
    bilinear = [m.alphas for m in segmenter.segment(shot.frames)]
    total = time.process_time() - started - sum(seconds.values())
    n = len(bilinear)
    out = {"bilinear": _scores(bilinear, shot) | {"seconds_per_frame": 0.0, "segment_seconds_per_frame": total / n}}
    for method, alphas in refined.items():
        out[method] = _scores(alphas, shot) | {"seconds_per_frame": seconds[method] / n,
                                               "segment_seconds_per_frame": total / n}
    return out


def _table(results: dict) -> str:
    rows = ["| source | size | edges | error <=4 px | mIoU | boundary F (2 px) | flicker | s/frame (edges) |",
            "|---|---|---|---|---|---|---|---|"]
    for source, sizes in results.items():
        for size, methods in sizes.items():
            for method, r in methods.items():
                seg = f" (segment {r['segment_seconds_per_frame']:.2f})" if "segment_seconds_per_frame" in r else ""
                rows.append(f"| {source} | {size} | {method} | {r['edge_error']:.4f} | {r['miou']:.4f} | "
                            f"{r['boundary_f']:.4f} | {r['flicker']:.4f} | {r['seconds_per_frame']:.2f}{seg} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--sizes", default="1k,2k")
    ap.add_argument("--methods", default="bilinear,refined,guided")
    ap.add_argument("--sources", default="grid,tiny")
    ap.add_argument("--learn-steps", type=int, default=None, help="learning steps (default: the tiny backbone's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default=None, help="device of the tiny backbone (default: auto)")
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--smoke", action="store_true", help="2 small frames, 2 learning steps")
    args = ap.parse_args(argv)
    if args.smoke:
        args.frames, args.sizes, args.learn_steps = 2, "smoke", 2
    sizes, methods = args.sizes.split(","), args.methods.split(",")
    sources = args.sources.split(",")
    results: dict = {s: {} for s in sources}
    backbone = model = None
    for size in sizes:
        shot = make_edge_shot(args.frames, SIZES[size], seed=args.seed)
        if "grid" in sources:
            results["grid"][size] = bench_grid(shot, methods)
            print(f"grid {size}: {json.dumps(results['grid'][size])}", flush=True)
        if "tiny" in sources:
            if backbone is None:
                from smite.model.backbone import load_backbone

                backbone = load_backbone("tiny", device=args.device)
                first = make_edge_shot(1, SIZES[sizes[0]], seed=args.seed)
                model = learned_part_model(first, args.learn_steps, backbone)
            results["tiny"][size] = bench_tiny(shot, model, backbone, methods)
            print(f"tiny {size}: {json.dumps(results['tiny'][size])}", flush=True)
    print(_table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
