"""Shot segmentation benchmark: quality, speed, memory and UNet work of the ``fast`` and ``quality`` presets.

On a noisy synthetic shot (tiny backbone; a part model learned once from frame 0 and cached under /tmp) each
preset prints mIoU (frames 1..), flicker, seconds per frame, peak memory, and UNet frame-evaluations per
output frame next to the same count for the published schedule of method.md §6 and the ratio. It also
times the UNet evaluations alone, so the overhead ((total - UNet) / total) is visible. Then it compares
the peak memory of two shot lengths (each in a fresh process) and, on a GPU, times an SD2.1-shaped model
with random weights in bf16 on 512-px, 1K or 2K plates (``--sd21-plates``; the README's hardware table).

    python bench/video.py [--frames 48] [--presets fast,quality] [--iterations N] [--skip-memory]
                          [--memory-frames 30,120] [--memory-preset fast] [--sd21] [--sd21-plates 512,1k,2k]
                          [--json PATH]

What is counted (a "frame-evaluation" is one frame through the UNet; batch B counts B):

* ours: a forward hook on the UNet adds the batch size of every call; calls made with gradients enabled
  (the latent optimisation, which always backpropagates) count 3 (forward + backward ~ 3 forwards).
* the method (§6.1-6.3, §9 constants): guided (quality) = 16-frame windows with overlap 8; per window of L
  frames a reference pass with the CFG batch of 2 the released code runs (§6.2a: 2L; counted although only
  the conditional half is read), 4 full-window calls (4L) and 3 guided steps x 15 iterations x ceil(L/4)
  chunks of up to 4 frames, forward + backward (135L). Unguided (fast) = 18-frame windows without overlap,
  one CFG-batch-2 reference pass each. The released default also runs the hierarchical coarse pass of §7
  first (the unguided schedule again); it is shown separately ("with §7").
* UNet time: forward = pre-hook to hook; backward = from the gradient reaching the chunk's maps to it
  reaching the chunk's latents, i.e. the UNet backward plus the (small) backward of the WAS maps.
  On CUDA every hook synchronises, which slows the run a little.
* peak memory: peak RSS (VmHWM) from the start of a preset's segmentation (reset through
  /proc/self/clear_refs), and on CUDA the allocator's peak. Learning runs in its own process, and each
  shot length of the memory comparison in a fresh one, with its plates streamed from PNGs as the CLI reads
  them, so neither the learning nor the whole shot in memory counts.

``--learn-steps`` and ``--iterations`` shorten a trial run; ``--sd21-frames`` sets the SD2.1-shaped shot.
``--smoke``: the smallest run of every part (2 frames, 2 learning steps, 1 latent iteration, memory runs of 1
and 2 frames), to check the bench runs. ``$SMITE_BENCH_CACHE`` moves the cache (default /tmp/smite-bench-video).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import math
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from smite.evaluate.metrics import mean_iou
from smite.evaluate.scores import flicker
from smite.io.images import atomic_path, read_image
from smite.learn.learner import LearnSettings, PartLearner
from smite.model.backbone import Backbone, load_backbone
from smite.model.partmodel import PartModel
from smite.synthetic.shots import SyntheticShot, make_shot, write_shot
from smite.video.guidance import GuidanceSettings
from smite.video.settings import PRESETS, SegmentSettings
from smite.video.shot import ShotSegmenter
from smite.video.windows import plan_windows

CACHE = Path(os.environ.get("SMITE_BENCH_CACHE", "/tmp/smite-bench-video"))
SHOT = {"num_parts": 3, "seed": 1, "noise": 0.08}  # noisy plates, so flicker is visible
TINY_SIZE = (256, 256)
MEMORY_LIMIT = 1.25  # acceptance: peak(120 frames) <= 1.25 x peak(30 frames)

# The published schedule (method.md §6.1-6.3, §9).
GUIDED_WINDOW, UNGUIDED_WINDOW = (16, 8), (18, 0)
CFG_BATCH = 2  # §6.2a: the reference pass runs the CFG pair
FULL_WINDOW_CALLS = 4  # §6.2c: t = 104, 103, 102, 101
GUIDED_STEPS, ITERATIONS = 3, 15
FWD_BWD = 3  # a forward + backward counts as 3 frame-evaluations


def _bench_learn():
    """bench/learn.py as a module (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location("bench_learn", Path(__file__).with_name("learn.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- the published schedule ------------------------------------------------------------------------------------


def method_evaluations(num_frames: int, guided: bool) -> dict[str, float]:
    """UNet frame-evaluations per output frame of the published schedule on ``num_frames`` frames.

    Returns ``{"section6": ..., "with_coarse": ...}``: §6 alone, and with the §7 coarse pass added.
    """
    def reference(windows) -> int:
        return sum(CFG_BATCH * w.length for w in windows)

    unguided = plan_windows(num_frames, *UNGUIDED_WINDOW)
    if guided:
        windows = plan_windows(num_frames, *GUIDED_WINDOW)
        frames = sum(w.length for w in windows)  # the chunks of a window cover its L frames once per iteration
        total = reference(windows) + FULL_WINDOW_CALLS * frames + GUIDED_STEPS * ITERATIONS * frames * FWD_BWD
    else:
        total = reference(unguided)
    return {"section6": total / num_frames, "with_coarse": (total + reference(unguided)) / num_frames}


# -- measuring ---------------------------------------------------------------------------------------------------


class UnetMeter:
    """Counts and times a backbone's UNet calls through hooks (see the module doc)."""

    def __init__(self, backbone: Backbone) -> None:
        self.cuda = backbone.device.type == "cuda"
        self.no_grad_frames = 0  # frames through forwards without gradients
        self.grad_frames = 0  # frames through forwards with gradients (each is backpropagated once)
        self.forward_s = self.backward_s = 0.0
        self._forward_start = self._backward_start = 0.0
        unet = backbone.unet
        self.handles = [unet.register_forward_pre_hook(self._pre, with_kwargs=True),
                        unet.register_forward_hook(self._post, with_kwargs=True)]

    @property
    def evaluations(self) -> int:
        return self.no_grad_frames + FWD_BWD * self.grad_frames

    @property
    def unet_s(self) -> float:
        return self.forward_s + self.backward_s

    def _now(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    def _pre(self, module, args, kwargs) -> None:
        self._forward_start = self._now()

    def _post(self, module, args, kwargs, output) -> None:
        self.forward_s += self._now() - self._forward_start
        frames = int((args[0] if args else kwargs["sample"]).shape[0])
        if torch.is_grad_enabled():
            self.grad_frames += frames
        else:
            self.no_grad_frames += frames

    def wrap(self, chunk_maps: Callable) -> Callable:
        """``chunk_maps`` whose backward is timed: maps' gradient (start) to latents' gradient (end)."""
        def timed(z: torch.Tensor, t: int) -> torch.Tensor:
            maps = chunk_maps(z, t)
            if maps.requires_grad and z.requires_grad:
                maps.register_hook(self._backward_starts)
                z.register_hook(self._backward_ends)
            return maps
        return timed

    def _backward_starts(self, grad: torch.Tensor) -> None:
        self._backward_start = self._now()

    def _backward_ends(self, grad: torch.Tensor) -> None:
        self.backward_s += self._now() - self._backward_start

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


def reset_peak_memory(device: torch.device) -> bool:
    """Restart peak tracking: CUDA allocator stats and the process's peak RSS (Linux clear_refs; False if not)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _status_mib(field: str) -> float | None:
    """A memory line of /proc/self/status (``VmHWM``, ``VmRSS``) in MiB; None where there is none."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None


def peak_rss_mib() -> float:
    """Peak RSS of this process image in MiB: VmHWM, else ru_maxrss.

    ru_maxrss of a child started from a large process still holds the parent's RSS at fork (Linux keeps the
    pre-exec peak), so VmHWM, which belongs to the exec'd image alone, is preferred.
    """
    peak = _status_mib("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB


def peak_memory(device: torch.device) -> dict[str, float]:
    """Peak RSS of this process (MiB) and, on CUDA, peak allocated GPU memory (MiB)."""
    peaks = {"rss_mib": peak_rss_mib()}
    if device.type == "cuda":
        peaks["gpu_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return peaks


def segment_measured(backbone: Backbone, model: PartModel, preset: str, frames: Iterable[np.ndarray],
                     num_frames: int, guidance: GuidanceSettings | None) -> dict:
    """Segment a shot with one preset; returns labels uint16 (T, H, W) and the measurements.

    Only the label maps are kept (the mattes are dropped as they stream out, like a writer would).
    """
    segmenter = ShotSegmenter(backbone, model, SegmentSettings(preset=preset, guidance=guidance))
    meter = UnetMeter(backbone)
    segmenter.optimizer.chunk_maps = meter.wrap(segmenter.optimizer.chunk_maps)
    window, overlap = segmenter.settings.window_and_overlap()
    reset_ok = reset_peak_memory(backbone.device)
    rss_start = _status_mib("VmRSS")
    start = time.perf_counter()
    try:
        labels = np.stack([m.labels for m in segmenter.segment(frames, num_frames=num_frames)])
        if backbone.device.type == "cuda":
            torch.cuda.synchronize()
        total = time.perf_counter() - start
    finally:
        meter.close()
    return {
        "labels": labels, "seconds": total, "seconds_per_frame": total / num_frames,
        "peak": peak_memory(backbone.device), "peak_reset": reset_ok, "rss_start_mib": rss_start,
        "windows": f"{window}/{overlap} x{len(segmenter.windows(num_frames))}",
        "iterations": segmenter.guidance.iterations if segmenter.guided else 0,
        "no_grad_frames": meter.no_grad_frames, "grad_frames": meter.grad_frames,
        "evaluations_per_frame": meter.evaluations / num_frames,
        "unet_forward_s": meter.forward_s, "unet_backward_s": meter.backward_s, "unet_s": meter.unet_s,
        "overhead": (total - meter.unet_s) / total,
    }


def measure_preset(backbone: Backbone, model: PartModel, shot: SyntheticShot, preset: str,
                   guidance: GuidanceSettings | None, score: bool) -> dict:
    """One preset on a shot held in memory: the measurements, mIoU/flicker when ``score``, and the method's count."""
    result = segment_measured(backbone, model, preset, shot.frames, len(shot.frames), guidance)
    labels = result.pop("labels")
    if score:
        scored = slice(1, None) if len(labels) > 1 else slice(None)  # frame 0 is the reference frame
        result["miou"] = mean_iou(labels[scored], shot.labels[scored], shot.num_labels).miou
        result["flicker"] = flicker(labels, shot.frames)
    method = method_evaluations(len(labels), guided=preset == "quality")
    result["method_per_frame"] = method
    result["ratio"] = {k: result["evaluations_per_frame"] / v for k, v in method.items()}
    return result


# -- inputs ------------------------------------------------------------------------------------------------------


def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def learn_settings(backbone: Backbone, args: argparse.Namespace) -> LearnSettings:
    overrides = {} if args.learn_steps is None else {"steps": args.learn_steps,
                                                     "token_steps": max(1, args.learn_steps // 5)}
    return LearnSettings.for_backbone(backbone, **overrides)


def model_path(backbone: Backbone, num_frames: int, settings: LearnSettings) -> Path:
    """Where the part model of this backbone, shot and learning settings is cached."""
    return CACHE / f"model-{_key(backbone.fingerprint, num_frames, SHOT, TINY_SIZE, asdict(settings))}.smite"


def child_learn(args: argparse.Namespace) -> None:
    """In a fresh process (so learning's memory does not inflate the presets' peaks): learn and cache the model."""
    backbone = load_backbone("tiny", device=args.device)
    settings = learn_settings(backbone, args)
    shot = make_shot(args.frames, TINY_SIZE, **SHOT)
    print(f"learning a part model from frame 0 ({settings.steps} steps)...", flush=True)
    start = time.perf_counter()
    model = PartLearner(backbone, settings).learn([shot.frames[0]], [shot.labels[0]], shot.part_names)
    CACHE.mkdir(parents=True, exist_ok=True)
    path = model.save(model_path(backbone, args.frames, settings))
    print(f"part model: learned in {time.perf_counter() - start:.0f} s (validation mIoU {model.validation_miou:.3f}),"
          f" cached {path}", flush=True)


def learned_model(backbone: Backbone, args: argparse.Namespace) -> Path:
    """The part model learned from frame 0 of the shot: cached, else learned in a subprocess."""
    path = model_path(backbone, args.frames, learn_settings(backbone, args))
    if path.is_file():
        print(f"part model: cached {path}")
        return path
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child-learn", "--frames", str(args.frames),
           "--device", args.device] + ([] if args.learn_steps is None else ["--learn-steps", str(args.learn_steps)])
    if subprocess.run(cmd).returncode != 0 or not path.is_file():
        sys.exit("learning the part model failed (see above)")
    return path


def random_model(backbone: Backbone, num_parts: int) -> PartModel:
    """A part model with random tokens and the base K/V (timing does not depend on what was learned)."""
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randn(num_parts, backbone.unet.config.cross_attention_dim, generator=gen)
    return PartModel(["background"] + [f"part{i}" for i in range(1, num_parts + 1)], tokens, dict(backbone.base_kv),
                     backbone.model_id, backbone.fingerprint, backbone.resolution)


def shot_folder(num_frames: int) -> Path:
    """The synthetic shot of ``num_frames`` frames written as PNGs (cached; ``.complete`` marks a full write)."""
    folder = CACHE / f"shot-{num_frames}-{_key(SHOT, TINY_SIZE)}"
    if not (folder / ".complete").is_file():
        write_shot(make_shot(num_frames, TINY_SIZE, **SHOT), folder)
        (folder / ".complete").touch()
    return folder


def streamed_plates(folder: Path) -> Iterable[np.ndarray]:
    """The plates of a shot folder read one at a time, as the CLI does: float32 (H, W, 3) each."""
    return (read_image(p) for p in sorted(folder.glob("plate.*.png")))


# -- peak memory against shot length -----------------------------------------------------------------------------


def child_memory(args: argparse.Namespace) -> None:
    """In a fresh process: segment the streamed shot of ``args.child_memory`` frames, print peaks as JSON."""
    backbone = load_backbone("tiny", device=args.device)
    model = PartModel.load(args.child_model)
    num_frames = args.child_memory
    guidance = _guidance(backbone, args.iterations)
    result = segment_measured(backbone, model, args.memory_preset, streamed_plates(Path(args.child_shot)),
                              num_frames, guidance)
    # peaks since the start of the segmentation (the loaded backbone is resident then; loading's transients are not)
    print(json.dumps({"frames": num_frames, "seconds": result["seconds"], "rss_start_mib": result["rss_start_mib"],
                      "peak_reset": result["peak_reset"], **result["peak"]}))


def memory_comparison(args: argparse.Namespace, model_file: Path) -> dict:
    """Peak memory of each length in ``args.memory_frames``, each in a fresh subprocess, and the ratio."""
    lengths = [int(x) for x in args.memory_frames.split(",")]
    print(f"\npeak memory vs shot length: {args.memory_preset} preset, tiny backbone, {args.device}; each length in"
          " a fresh process, plates streamed from PNGs; peak while segmenting (backbone loaded)")
    window = SegmentSettings(preset=args.memory_preset).window_and_overlap()[0]
    if min(lengths) < window:
        print(f"  note: a shot shorter than one window ({window} frames) is one window of its own length, so its"
              " peak grows with the length; compare lengths of at least one window")
    runs = []
    for n in lengths:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child-memory", str(n),
               "--child-model", str(model_file), "--child-shot", str(shot_folder(n)),
               "--memory-preset", args.memory_preset, "--device", args.device]
        if args.iterations is not None:
            cmd += ["--iterations", str(args.iterations)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"memory run with {n} frames failed:\n{proc.stderr[-3000:]}")
        run = json.loads(proc.stdout.strip().splitlines()[-1])
        gpu = f", {run['gpu_mib']:.1f} MiB GPU" if "gpu_mib" in run else ""
        start = f", {run['rss_start_mib']:.1f} MiB at the start" if run["rss_start_mib"] is not None else ""
        start += "" if run["peak_reset"] else " (peak not reset: includes loading)"
        print(f"  {n:>5} frames: peak {run['rss_mib']:8.1f} MiB RSS{gpu}{start} ({run['seconds'] / n:.2f} s/frame)")
        runs.append(run)
    key = "gpu_mib" if "gpu_mib" in runs[0] else "rss_mib"
    ratio = runs[-1][key] / runs[0][key]
    verdict = "PASS" if ratio <= MEMORY_LIMIT else "FAIL"
    print(f"  ratio {lengths[-1]}/{lengths[0]} frames ({key}): {ratio:.3f} (limit {MEMORY_LIMIT}): {verdict}")
    return {"preset": args.memory_preset, "runs": runs, "measure": key, "ratio": ratio, "pass": ratio <= MEMORY_LIMIT}


# -- reporting ---------------------------------------------------------------------------------------------------


def _guidance(backbone: Backbone, iterations: int | None) -> GuidanceSettings | None:
    return None if iterations is None else GuidanceSettings.for_backbone(backbone, iterations=iterations)


def _fmt(value, spec: str) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def print_table(results: dict[str, dict]) -> None:
    """One row per preset; the notes say what each column measures."""
    header = (f"{'preset':<8}{'mIoU':>7}{'flicker':>9}{'s/frame':>9}{'peak MiB':>10}{'evals/fr':>10}"
              f"{'§6':>8}{'ratio':>7}{'§6+§7':>8}{'ratio':>7}{'UNet s':>9}{'total s':>9}{'overhead':>9}")
    print(header)
    print("-" * len(header))
    for preset, r in results.items():
        peak = r["peak"].get("gpu_mib", r["peak"]["rss_mib"])
        print(f"{preset:<8}{_fmt(r.get('miou'), '.3f'):>7}{_fmt(r.get('flicker'), '.4f'):>9}"
              f"{r['seconds_per_frame']:>9.2f}{peak:>10.1f}{r['evaluations_per_frame']:>10.2f}"
              f"{r['method_per_frame']['section6']:>8.2f}{r['ratio']['section6']:>7.3f}"
              f"{r['method_per_frame']['with_coarse']:>8.2f}{r['ratio']['with_coarse']:>7.3f}"
              f"{r['unet_s']:>9.1f}{r['seconds']:>9.1f}{r['overhead']:>9.2f}")
    print()
    for preset, r in results.items():
        start = "" if r["rss_start_mib"] is None else f"; RSS at the start {r['rss_start_mib']:.1f} MiB"
        print(f"  {preset}: windows {r['windows']}, {r['iterations']} latent iterations per guided step; "
              f"{r['no_grad_frames']} no-grad + {FWD_BWD} x {r['grad_frames']} fwd+bwd frame-evaluations; "
              f"UNet forward {r['unet_forward_s']:.1f} s + backward {r['unet_backward_s']:.1f} s{start}")
    reset = all(r["peak_reset"] for r in results.values())
    gpu = any("gpu_mib" in r["peak"] for r in results.values())
    print("  mIoU: frames 1.. (frame 0 is the reference); flicker: smite.evaluate.scores.flicker over all frames\n"
          f"  peak MiB: {'GPU allocated' if gpu else 'RSS'} during the preset"
          f"{'' if reset else ' (could not reset: peak of the process so far)'}\n"
          "  evals/fr: UNet frame-evaluations per output frame (fwd+bwd = 3); §6: the published schedule "
          f"(reference pass with CFG batch {CFG_BATCH} counted); §6+§7: plus the hierarchical coarse pass; "
          "ratio = ours / method\n"
          "  UNet s: forward + backward (backward includes the WAS-map backward); "
          "overhead = (total - UNet) / total")


def run_presets(backbone, model, shot, args: argparse.Namespace, scored: bool) -> dict:
    """Measure every preset of ``args.presets`` on ``shot`` and print the table."""
    results = {}
    for preset in args.presets:
        print(f"  running {preset}...", flush=True)
        results[preset] = measure_preset(backbone, model, shot, preset, _guidance(backbone, args.iterations), scored)
    print()
    print_table(results)
    return results


def run_tiny(args: argparse.Namespace) -> tuple[dict, Path]:
    backbone = load_backbone("tiny", device=args.device)
    shot = make_shot(args.frames, TINY_SIZE, **SHOT)
    path = learned_model(backbone, args)
    model = PartModel.load(path)
    print(f"\ntiny backbone, {args.device}, {torch.get_num_threads()} threads: {args.frames}-frame shot "
          f"{TINY_SIZE[1]}x{TINY_SIZE[0]}, {SHOT['num_parts']} parts, seed {SHOT['seed']}, noise {SHOT['noise']}")
    gt = flicker(shot.labels, shot.frames)
    print(f"ground-truth flicker (what the metric gives perfect labels on this motion): {gt:.4f}", flush=True)
    return {"gt_flicker": gt, "presets": run_presets(backbone, model, shot, args, scored=True)}, path


def run_sd21(args: argparse.Namespace) -> dict:
    """The SD2.1-shaped model (random weights) on each plate size of ``--sd21-plates``: seconds per frame and peak
    memory per preset, the plate's own pipeline included (framing, coarse-to-fine crops, refined edges)."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    backbone = _bench_learn().sd21_shaped_random_backbone(device)
    model = random_model(backbone, SHOT["num_parts"])
    results = {"device": device, "frames": args.sd21_frames, "plates": {}}
    if device == "cuda":
        results["gpu"] = torch.cuda.get_device_name(backbone.device)
    for name, size in args.sd21_plates:
        shot = make_shot(args.sd21_frames, size, **SHOT)
        print(f"\nSD2.1-shaped model, random weights, {device} ({backbone.precision}), {name} plate "
              f"{size[1]}x{size[0]}, {args.sd21_frames}-frame shot (mIoU/flicker meaningless with random weights: "
              "not shown)")
        results["plates"][name] = run_presets(backbone, model, shot, args, scored=False)
    return results


PLATE_SIZES = {"512": (512, 512), "1k": (576, 1024), "2k": (1152, 2048)}  # (H, W): the README's hardware table


def parse_plates(text: str) -> list[tuple[str, tuple[int, int]]]:
    """``512,1k,2k`` -> [(name, (H, W)), ...]."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in PLATE_SIZES]
    if unknown:
        raise SystemExit(f"unknown plate size(s) {', '.join(unknown)}: use {', '.join(PLATE_SIZES)}")
    return [(n, PLATE_SIZES[n]) for n in names]


def write_json(path: Path, data: dict) -> None:
    """Atomic write (``smite.io.images.atomic_path``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=float))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=48, help="frames of the synthetic shot (default 48)")
    parser.add_argument("--presets", default="fast,quality", help="comma-separated presets (default fast,quality)")
    parser.add_argument("--iterations", type=int, help="latent iterations per guided step (default: the backbone's)")
    parser.add_argument("--learn-steps", type=int, help="learning steps of the part model (default: the backbone's)")
    parser.add_argument("--device", default="cpu", help="device of the tiny backbone runs (default cpu)")
    parser.add_argument("--skip-memory", action="store_true", help="skip the peak memory vs shot length runs")
    parser.add_argument("--memory-frames", default="30,120", help="shot lengths compared (default 30,120)")
    parser.add_argument("--memory-preset", default="fast", choices=PRESETS,
                        help="preset of the memory runs (default fast: a 120-frame quality run takes ~1 h on CPU)")
    parser.add_argument("--sd21", action="store_true", help="also the SD2.1-shaped model (automatic on a GPU)")
    parser.add_argument("--sd21-frames", type=int, default=16, help="frames of the SD2.1-shaped run (default 16)")
    parser.add_argument("--sd21-plates", default="512", help="plate sizes of the SD2.1-shaped run: 512, 1k "
                        "(1024x576), 2k (2048x1152), comma-separated (default 512)")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--smoke", action="store_true", help="smallest sizes of every part, one repeat")
    parser.add_argument("--child-learn", action="store_true", help=argparse.SUPPRESS)
    for hidden in ("--child-memory", "--child-model", "--child-shot"):
        parser.add_argument(hidden, help=argparse.SUPPRESS, type=int if hidden == "--child-memory" else str)
    args = parser.parse_args()
    if args.smoke:
        args.frames, args.learn_steps, args.iterations, args.memory_frames, args.sd21_frames = 2, 2, 1, "1,2", 1
    args.presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    args.sd21_plates = parse_plates(args.sd21_plates)
    unknown = [p for p in args.presets if p not in PRESETS]
    if unknown:
        parser.error(f"unknown preset(s) {', '.join(unknown)}: use {', '.join(PRESETS)}")
    return args


def main() -> None:
    args = parse_args()
    if args.child_memory is not None:
        child_memory(args)
        return
    if args.child_learn:
        child_learn(args)
        return
    results, path = run_tiny(args)
    if not args.skip_memory:
        results["memory"] = memory_comparison(args, path)
    if torch.cuda.is_available() or args.sd21:
        results["sd21"] = run_sd21(args)
    if args.json is not None:
        write_json(args.json, results)
        print(f"\nresults written to {args.json}")


if __name__ == "__main__":
    main()
