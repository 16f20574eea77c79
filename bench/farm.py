"""Farm chunking benchmark: the price of context and what it buys at the seams.

One synthetic shot (a head: face and hair), one part model (tiny backbone, learned once from frame 0 and cached
under $SMITE_BENCH_CACHE or /tmp), segmented whole and then chunk by chunk as ``smite render`` does on a farm
(each chunk = the shot's windows that hold its owned frames or the ``context`` frames before them, segmented
as a shot of its own with the noise of those windows, only owned frames kept; see ``smite.farm.chunks``), with
the backbone kept warm between chunks as the worker-session daemon keeps it.
For each ChunkSize x Context:

* work: total CPU seconds of the chunks over the whole-shot run's (CPU time of this process, all threads, so
  other load on the machine does not count), wall-clock ratio, frames segmented over shot frames, and frames
  through the UNet's windows (overlapping windows count twice) over the whole run's: the model work;
* seams: at every chunk boundary, the fraction of pixels whose label equals the whole-shot run's (worst seam
  frame) and the flicker of the boundary pair (last owned frame -> first frame of the next chunk) minus the
  whole-shot run's flicker on the same pair (worst seam).

    python bench/farm.py [--frames 48] [--size 96] [--preset quality] [--chunks 8,16,32] [--contexts 4,8]
                         [--learn-steps N] [--iterations N] [--json PATH]
    python bench/farm.py --smoke      # the quickest run: 8 frames, fast preset, 2 learning steps, one configuration
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from smite.evaluate.scores import flicker
from smite.farm.chunks import plan_chunk
from smite.io.images import atomic_path
from smite.learn.learner import LearnSettings, PartLearner
from smite.model.backbone import load_backbone
from smite.model.partmodel import PartModel
from smite.synthetic.shots import make_shot
from smite.video.guidance import GuidanceSettings
from smite.video.settings import SegmentSettings
from smite.video.shot import ShotSegmenter
from smite.video.windows import plan_windows


def window_frames(num_frames: int, settings: SegmentSettings) -> int:
    """Frames through the UNet's windows for a shot of ``num_frames`` (overlapping windows count twice)."""
    return sum(w.length for w in plan_windows(num_frames, *settings.window_and_overlap()))


def part_model(backbone, shot, steps: int | None, cache: Path) -> PartModel:
    """Learned once from frame 0 and cached (keyed by the shot and the steps)."""
    if cache.is_file():
        return PartModel.load(cache)
    settings = LearnSettings.for_backbone(backbone)
    if steps:
        settings = replace(settings, steps=steps, token_steps=min(settings.token_steps, max(1, steps // 2)))
    model = PartLearner(backbone, settings).learn([shot.frames[0]], [shot.labels[0]], shot.part_names)
    cache.parent.mkdir(parents=True, exist_ok=True)
    return PartModel.load(model.save(cache))


def segment(backbone, model, frames: np.ndarray, settings: SegmentSettings) -> tuple[np.ndarray, float, float]:
    """Labels (F, H, W) of ``frames`` segmented as one shot, with the CPU and wall seconds it took."""
    cpu, wall = time.process_time(), time.perf_counter()
    labels = np.stack([m.labels for m in ShotSegmenter(backbone, model, settings).segment(frames)])
    return labels, time.process_time() - cpu, time.perf_counter() - wall


def chunked(backbone, model, frames: np.ndarray, settings, size: int, context: int) -> dict:
    """The shot rendered chunk by chunk: labels, CPU/wall seconds summed over chunks, frames segmented."""
    shot = list(range(len(frames)))
    labels = np.zeros(frames.shape[:3], np.int64)
    cpu = wall = 0.0
    segmented, units, bounds = 0, 0, []
    for start in range(0, len(shot), size):
        owned = shot[start:start + size]
        plan = plan_chunk(shot, owned, context, set(), *settings.window_and_overlap())
        span_settings = replace(settings, shot_offset=plan.offset)
        span_labels, c, w = segment(backbone, model, frames[list(plan.span)], span_settings)
        cpu, wall, segmented = cpu + c, wall + w, segmented + len(plan.span)
        units += window_frames(len(plan.span), settings)
        for i, f in enumerate(plan.span):
            if f in owned:
                labels[f] = span_labels[i]
        if start:
            bounds.append(start)
    return {"labels": labels, "cpu": cpu, "wall": wall, "segmented": segmented, "units": units, "bounds": bounds}


def seam_figures(whole: np.ndarray, chunks: np.ndarray, frames: np.ndarray, bounds: list[int]) -> dict:
    """Worst label agreement with the whole run on seam frames, worst flicker excess on seam pairs."""
    agreement, excess = [], []
    for b in bounds:
        for f in (b - 1, b):
            agreement.append(float((whole[f] == chunks[f]).mean()))
        pair = slice(b - 1, b + 1)
        excess.append(flicker(chunks[pair], frames[pair]) - flicker(whole[pair], frames[pair]))
    return {"seam_agreement_min": min(agreement, default=1.0), "seam_agreement_mean": float(np.mean(agreement)),
            "seam_flicker_excess_max": max(excess, default=0.0), "seams": len(bounds)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--size", type=int, default=96, help="plate side in pixels")
    parser.add_argument("--preset", default="quality", choices=("fast", "quality"))
    parser.add_argument("--chunks", default="8,16,32")
    parser.add_argument("--contexts", default="4,8")
    parser.add_argument("--learn-steps", type=int, default=None, help="default: the tiny backbone's")
    parser.add_argument("--iterations", type=int, default=None, help="guided iterations (default: the backbone's)")
    parser.add_argument("--device", default="cpu", help="device of the tiny backbone (default cpu; the CPU ratio "
                        "then counts only the host's share)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--smoke", action="store_true", help="quickest run: 8 frames, fast, 2 learning steps")
    args = parser.parse_args(argv)
    if args.smoke:
        args.frames, args.preset, args.chunks, args.contexts, args.learn_steps = 8, "fast", "4", "1", 2

    backbone = load_backbone("tiny", device=args.device)
    shot = make_shot(num_frames=args.frames, size=(args.size, args.size), num_parts=2, touching=True, seed=3,
                     noise=0.03)
    folder = Path(os.environ.get("SMITE_BENCH_CACHE", "/tmp/smite-bench-farm"))
    cache = folder / f"head-{args.frames}-{args.size}-{args.learn_steps or 'default'}.smite"
    model = part_model(backbone, shot, args.learn_steps, cache)
    guidance = GuidanceSettings.for_backbone(backbone, **({"iterations": args.iterations}
                                                           if args.iterations is not None else {}))
    settings = SegmentSettings(preset=args.preset, guidance=guidance)
    whole, whole_cpu, whole_wall = segment(backbone, model, shot.frames, settings)
    print(f"shot: {args.frames} frames {args.size}x{args.size}, preset {args.preset}; whole shot "
          f"{whole_cpu:.1f} CPU s ({whole_wall:.1f} s wall)")
    print(f"{'chunk':>5} {'context':>7} {'frames x':>8} {'UNet x':>6} {'CPU x':>6} {'wall x':>6} {'seam agree':>10} "
          f"{'flicker +':>9}")
    rows = []
    for size in (int(c) for c in args.chunks.split(",")):
        for context in (int(c) for c in args.contexts.split(",")):
            run = chunked(backbone, model, shot.frames, settings, size, context)
            row = {"chunk": size, "context": context, "frames_ratio": run["segmented"] / args.frames,
                   "window_frames_ratio": run["units"] / window_frames(args.frames, settings),
                   "cpu_ratio": run["cpu"] / whole_cpu, "wall_ratio": run["wall"] / whole_wall,
                   **seam_figures(whole, run["labels"], shot.frames, run["bounds"])}
            rows.append(row)
            print(f"{size:>5} {context:>7} {row['frames_ratio']:>8.2f} {row['window_frames_ratio']:>6.2f} "
                  f"{row['cpu_ratio']:>6.2f} "
                  f"{row['wall_ratio']:>6.2f} {row['seam_agreement_min']:>10.4f} "
                  f"{row['seam_flicker_excess_max']:>+9.4f}", flush=True)
    if args.json:
        report = {"frames": args.frames, "size": args.size, "preset": args.preset, "whole_cpu_s": whole_cpu,
                  "whole_wall_s": whole_wall, "rows": rows}
        with atomic_path(args.json) as tmp:
            tmp.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
