"""Does guidance pay? ``fast`` vs ``quality`` flicker and mIoU on synthetic shots of different kinds and seeds.

For each shot a part model is learned from frame 0 on the tiny backbone (tiny defaults, cached under
$SMITE_BENCH_CACHE, default /tmp/smite-bench-guidance), then the shot is segmented as one window with both
presets (bilinear edges, so only the latent maps differ). Printed per shot: mIoU over frames 1.., label flicker
(``smite.evaluate.scores.flicker``), the flicker of the ground-truth labels on the same plates (what the metric
gives perfect labels) and the excess flicker (flicker - ground truth).

    python bench/guidance.py [--frames 8] [--shots 0,1,2,3] [--json PATH] [--learn-only] [--smoke]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from smite.evaluate.metrics import mean_iou
from smite.evaluate.scores import flicker
from smite.learn.learner import LearnSettings, PartLearner
from smite.model.backbone import load_backbone
from smite.model.partmodel import PartModel
from smite.synthetic.shots import make_shot
from smite.video.guidance import GuidanceSettings
from smite.video.settings import SegmentSettings
from smite.video.shot import ShotSegmenter

CACHE = Path(os.environ.get("SMITE_BENCH_CACHE", "/tmp/smite-bench-guidance"))
SHOTS = [  # kinds: part count, touching parts, plate noise, seed (motion and textures follow the seed)
    {"num_parts": 3, "seed": 1, "noise": 0.08},
    {"num_parts": 2, "touching": True, "seed": 2, "noise": 0.05},
    {"num_parts": 4, "seed": 3, "noise": 0.10},
    {"num_parts": 1, "seed": 5, "noise": 0.03},
    {"num_parts": 5, "seed": 7, "noise": 0.06},
]


def _model(backbone, shot, spec: dict, steps: int | None) -> PartModel:
    material = [spec, len(shot.frames)] + ([] if steps is None else [steps])
    key = hashlib.sha1(json.dumps(material, sort_keys=True).encode()).hexdigest()[:12]
    path = CACHE / f"model-{key}.smite"
    if path.exists():
        return PartModel.load(path)
    overrides = {} if steps is None else {"steps": steps, "token_steps": max(1, steps // 2)}
    model = PartLearner(backbone, LearnSettings.for_backbone(backbone, **overrides)).learn(
        [shot.frames[0]], [shot.labels[0]], shot.part_names)
    CACHE.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return model


def run(frames: int, shots: list[int], learn_only: bool = False, steps: int | None = None,
        guidance: GuidanceSettings | None = None) -> list[dict]:
    backbone = load_backbone("tiny", device="cpu")
    rows = []
    for index in shots:
        spec = SHOTS[index]
        shot = make_shot(num_frames=frames, **spec)
        model = _model(backbone, shot, spec, steps)
        if learn_only:
            continue
        row = {"shot": index, **spec, "gt_flicker": flicker(shot.labels, shot.frames)}
        for preset in ("fast", "quality"):
            started = time.time()
            settings = SegmentSettings(preset=preset, window=frames, overlap=0, edges="bilinear", guidance=guidance)
            labels = np.stack([m.labels for m in ShotSegmenter(backbone, model, settings).segment(shot.frames)])
            row[preset] = {"miou": mean_iou(labels[1:], shot.labels[1:], shot.num_labels).miou,
                           "flicker": flicker(labels, shot.frames), "seconds": time.time() - started}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--shots", default="0,1,2,3")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--learn-only", action="store_true", help="only learn (and cache) the part models")
    parser.add_argument("--smoke", action="store_true", help="2 frames, 1 learning step, 1 latent iteration, 1 shot")
    args = parser.parse_args()
    steps, guidance = None, None
    if args.smoke:
        args.frames, args.shots, steps = 2, "0", 1
        guidance = GuidanceSettings(iterations=1, guided_steps=1)
    rows = run(args.frames, [int(s) for s in args.shots.split(",")], args.learn_only, steps, guidance)
    print(f"\n{'shot':<40}{'fast mIoU':>10}{'quality':>9}{'fast flicker':>14}{'quality':>9}{'GT':>8}")
    for r in rows:
        name = ", ".join(f"{k}={r[k]}" for k in ("num_parts", "touching", "noise", "seed") if k in r)
        print(f"{name:<40}{r['fast']['miou']:>10.3f}{r['quality']['miou']:>9.3f}"
              f"{r['fast']['flicker']:>14.4f}{r['quality']['flicker']:>9.4f}{r['gt_flicker']:>8.4f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
