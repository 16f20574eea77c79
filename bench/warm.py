"""Warm re-learning benchmark (issue 13 item 5): fixing a frame by continuing a model against learning anew.

One synthetic shot (tiny backbone) whose light changes halfway: from the middle frame on, the plates get a
colour grade (``--grade``, RGB gains; ``none`` for no change), so a model learned on frame 0 goes wrong there, the
case of an artist fixing a frame. A part model is learned from frame 0 with the backbone's schedule; the worst of
the ``--candidates`` frames (B) gets its ground truth added, then:

* cold: a fresh run on frames 0 + B with the backbone's full schedule; its mIoU on B is the target;
* warm: ``smite.learn.warm.relearn`` from the model on frames 0 + B, once per step budget of ``--warm-steps``
  (steps per reference, as ``smite learn --steps`` counts them): mIoU on B and seconds for each budget, and the
  first budget that reaches the cold run's mIoU on B (time to reach it, against the cold run's time).

Every model is also scored over all frames of the shot (``fast`` preset, bilinear edges: the model, not the
edges, is measured). Seconds are wall-clock of the learning runs alone.

    python bench/warm.py [--size 256] [--frames 16] [--seed 0] [--grade 1.4,0.9,0.6] [--candidates 5,10,15]
                         [--warm-steps 4,8,16,32] [--device cpu] [--json PATH]
    python bench/warm.py --smoke      # 2 learning steps, 128-px frames: checks the bench runs
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from smite.io.images import atomic_path
from smite.learn.learner import LearnSettings, PartLearner, miou
from smite.learn.warm import kept_start, relearn, warm_settings
from smite.model.backbone import Backbone, load_backbone
from smite.model.partmodel import PartModel
from smite.synthetic.shots import SyntheticShot, make_shot
from smite.video.settings import SegmentSettings
from smite.video.shot import ShotSegmenter


def graded(shot: SyntheticShot, grade: tuple[float, float, float] | None) -> SyntheticShot:
    """``shot`` with its plates from the middle frame on multiplied by the RGB gains ``grade`` (clipped to [0, 1])."""
    if grade is None:
        return shot
    frames = shot.frames.copy()
    half = len(frames) // 2
    frames[half:] = np.clip(frames[half:] * np.asarray(grade, np.float32), 0.0, 1.0)
    return dataclasses.replace(shot, frames=frames)


def frame_scores(backbone: Backbone, model: PartModel, shot: SyntheticShot) -> list[float]:
    """mIoU of each frame of ``shot`` segmented with ``model`` (fast preset, bilinear edges)."""
    settings = SegmentSettings(preset="fast", edges="bilinear")
    mattes = ShotSegmenter(backbone, model, settings).segment(shot.frames, num_frames=len(shot.frames))
    return [miou(m.labels.astype(np.int64), gt, model.num_parts) for m, gt in zip(mattes, shot.labels)]


def timed(learn) -> tuple[PartModel, float]:
    """Run ``learn()``; returns its model and its wall-clock seconds."""
    start = time.perf_counter()
    model = learn()
    return model, time.perf_counter() - start


def run(backbone: Backbone, shot: SyntheticShot, candidates: list[int], warm_steps: list[int],
        base_steps: int | None) -> dict:
    """Base model, worst candidate frame, cold run and warm runs; returns the figures."""
    settings = LearnSettings.for_backbone(backbone, **({} if base_steps is None else
                                                        {"steps": base_steps, "token_steps": base_steps // 5}))
    base, base_s = timed(lambda: PartLearner(backbone, settings).learn([shot.frames[0]], [shot.labels[0]],
                                                                       shot.part_names))
    base_scores = frame_scores(backbone, base, shot)
    worst = min(candidates, key=lambda t: base_scores[t])
    frames, masks = [shot.frames[0], shot.frames[worst]], [shot.labels[0], shot.labels[worst]]
    cold, cold_s = timed(lambda: PartLearner(backbone, settings).learn(frames, masks, shot.part_names))
    cold_scores = frame_scores(backbone, cold, shot)
    report = {"worst_frame": worst, "base": {"seconds": base_s, "steps": settings.steps,
                                            "on_b": base_scores[worst], "all": float(np.mean(base_scores))},
              "cold": {"seconds": cold_s, "steps": settings.steps, "on_b": cold_scores[worst],
                       "all": float(np.mean(cold_scores))}, "warm": []}
    for steps in warm_steps:
        warm, warm_s = timed(lambda s=steps: relearn(backbone, base, frames, masks,
                                                     settings=warm_settings(base, backbone, steps=s)))
        scores = frame_scores(backbone, warm, shot)
        report["warm"].append({"steps": steps, "seconds": warm_s, "on_b": scores[worst],
                               "all": float(np.mean(scores)), "kept_start": kept_start(warm)})
    reached = [w for w in report["warm"] if w["on_b"] >= report["cold"]["on_b"]]
    report["reached"] = reached[0] if reached else None
    return report


def print_report(report: dict) -> None:
    b, c = report["base"], report["cold"]
    print(f"base: frame 0 only, {b['steps']} steps, {b['seconds']:.1f} s; frame {report['worst_frame']} "
          f"(the worst candidate) mIoU {b['on_b']:.3f}, all frames {b['all']:.3f}")
    print(f"{'run':<6}{'steps':>6}{'seconds':>9}{'mIoU on B':>11}{'mIoU all':>10}")
    print(f"{'cold':<6}{c['steps']:>6}{c['seconds']:>9.1f}{c['on_b']:>11.3f}{c['all']:>10.3f}")
    for w in report["warm"]:
        kept = "  (kept its start)" if w["kept_start"] else ""
        print(f"{'warm':<6}{w['steps']:>6}{w['seconds']:>9.1f}{w['on_b']:>11.3f}{w['all']:>10.3f}{kept}")
    r = report["reached"]
    if r is None:
        print("no warm budget reached the cold run's mIoU on B")
    else:
        print(f"warm reaches the cold run's mIoU on B ({c['on_b']:.3f}) in {r['steps']} steps, {r['seconds']:.1f} s "
              f"({c['seconds'] / r['seconds']:.1f}x faster than the cold run's {c['seconds']:.1f} s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256, help="frame side in pixels (default 256)")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grade", default="1.4,0.9,0.6", help="RGB gains of the plates from the middle frame on "
                        "(a lighting change), or none")
    parser.add_argument("--candidates", default="5,10,15", help="frames the worst is picked from")
    parser.add_argument("--warm-steps", default="4,8,16,32", help="warm step budgets per reference")
    parser.add_argument("--base-steps", type=int, default=None, help="steps of the base and cold runs "
                        "(default: the backbone's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--smoke", action="store_true", help="2 learning steps, 128-px frames, 3 frames")
    args = parser.parse_args(argv)
    if args.smoke:
        args.size, args.frames, args.candidates, args.warm_steps, args.base_steps = 128, 3, "1,2", "1,2", 2
    backbone = load_backbone("tiny", device=args.device, resolution=args.size)
    grade = None if args.grade == "none" else tuple(float(g) for g in args.grade.split(","))
    shot = graded(make_shot(num_frames=args.frames, size=(args.size, args.size), num_parts=3, seed=args.seed), grade)
    print(f"tiny backbone, {args.device}, {args.size} px, {args.frames}-frame shot, seed {args.seed}, "
          f"grade {args.grade} from frame {args.frames // 2}", flush=True)
    report = run(backbone, shot, [int(c) for c in args.candidates.split(",")],
                 [int(s) for s in args.warm_steps.split(",")], args.base_steps)
    print_report(report)
    if args.json:
        with atomic_path(args.json) as tmp:
            tmp.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
