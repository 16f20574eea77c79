"""The flags ``smite learn``/``smite segment`` share with ``smite submit learn``/``smite submit segment``.

One definition for both forms, so a flag cannot mean one thing in-process and another through the daemon.
Defaults that the engine (or the daemon) applies are None here: the in-process commands fill them in, the
daemon client sends only what the user set. Torch-free (the daemon client imports it).
"""

from __future__ import annotations

import argparse

from smite.errors import SmiteError

FRAMES_HELP = "plate pattern: plate.####.exr, plate.%%04d.png, plate.@@@@.exr, plate.$F4.exr or one file"
DEFAULT_RANKS = 6  # smite.io.cryptomatte.DEFAULT_RANKS (not imported: it needs OpenImageIO)


def add_colorspace_flag(p: argparse.ArgumentParser) -> None:
    """``--colorspace``: the plates' colour space."""
    p.add_argument("--colorspace", default=None,
                   help="colour space of the plates, a name of the OCIO config ($OCIO or the built-in one); "
                        "default $SMITE_COLORSPACE, else by file type: float lin_rec709, log DPX Cineon, 8-bit sRGB")


def _ranks(text: str) -> int:
    """A Cryptomatte rank count: even, 2 to 16 (two ranks per RGBA layer)."""
    try:
        ranks = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if ranks < 2 or ranks > 16 or ranks % 2:
        raise argparse.ArgumentTypeError(f"must be even, 2 to 16 (two ranks per RGBA layer), got {ranks}")
    return ranks


def add_segment_flags(p: argparse.ArgumentParser, source: argparse._ActionsContainer | None = None) -> None:
    """The shot and segmentation flags of ``smite segment`` and ``smite submit segment``.

    ``source``: where ``--frames`` goes (a mutually exclusive group of the daemon client, which also takes
    ``--files``); without it ``--frames`` is required. ``-o/--out`` is required unless ``source`` is given (the
    daemon can return mattes inline)."""
    (source or p).add_argument("--frames", required=source is None, help=FRAMES_HELP)
    p.add_argument("--range", default=None,
                   help="frame list: 1001-1100, 1001-1100x2, '1001 1005 1010-1020' (negative: --range=-5-5; "
                        "default: all found)")
    p.add_argument("-o", "--out", required=source is None, help="matte EXR pattern, e.g. mattes/shot.####.exr")
    p.add_argument("--temperature", type=float, default=None, help="softness of the mattes (logit units, default 1)")
    p.add_argument("--preset", choices=("fast", "quality"), default=None,
                   help="quality: temporal guidance along point tracks; fast: one pass per window "
                        "(default $SMITE_PRESET, else quality; through the daemon: else its `smite serve --preset`)")
    p.add_argument("--tracker", choices=("flow", "cotracker"), default=None,
                   help="point tracker of the quality preset (default $SMITE_TRACKER or flow; cotracker needs "
                        "a CoTracker3 checkpoint: --cotracker-checkpoint or $SMITE_COTRACKER_CHECKPOINT)")
    p.add_argument("--window", type=int, default=None, help="frames segmented together (default 16)")
    p.add_argument("--overlap", type=int, default=None,
                   help="frames shared by consecutive windows (default 8 for quality, 0 for fast)")
    p.add_argument("--no-coarse-to-fine", dest="coarse_to_fine", action="store_const", const=False, default=None,
                   help="do not refine the foreground of plates larger than the model frame")
    p.add_argument("--edges", choices=("refined", "bilinear"), default=None,
                   help="matte edges: refined on the plate in the uncertain band (default) or bilinear (the "
                        "latent-grid maps resized, softer)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    p.add_argument("--cryptomatte", action="store_true",
                   help="also write Cryptomatte layers (CryptoSmite00...) into each matte EXR")
    p.add_argument("--ranks", type=_ranks, default=None,
                   help=f"Cryptomatte ranks with --cryptomatte: even, 2 to 16 (default {DEFAULT_RANKS})")
    add_colorspace_flag(p)


def segment_settings(args: argparse.Namespace) -> dict:
    """The ``SegmentSettings`` fields (and daemon ``settings`` keys) the user set."""
    given = {"seed": args.seed, "matte_temperature": args.temperature, "preset": args.preset, "window": args.window,
             "overlap": args.overlap, "tracker": args.tracker, "coarse_to_fine": args.coarse_to_fine,
             "edges": args.edges}
    return {k: v for k, v in given.items() if v is not None}


def add_learn_flags(p: argparse.ArgumentParser) -> None:
    """The reference and learning flags of ``smite learn`` and ``smite submit learn``."""
    p.add_argument("--frames", required=True, help=FRAMES_HELP)
    p.add_argument("--refs", required=True,
                   help="reference frames: a frame list, e.g. 1001, '1001 1040', 1001,1040 (negative: --refs=-5)")
    p.add_argument("--masks", help="label-map images (0 = background, k = k-th name) or EXRs with smite_<part>.A "
                                   "layers, as a pattern over the reference frame numbers")
    p.add_argument("--matte", action="append", default=[], metavar="PART=PATTERN",
                   help="one single-channel matte per part (alpha or first channel), repeatable")
    p.add_argument("--names", help="comma-separated part names in label order (not 'background')")
    p.add_argument("--overwrite", action="store_true", help="replace the part model if it exists")
    p.add_argument("--steps", type=int, default=None,
                   help="learning epochs: steps per training reference (default: the backbone's)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    add_colorspace_flag(p)


def part_names(args: argparse.Namespace) -> list[str]:
    """``--names`` as a list (empty without it)."""
    return [n.strip() for n in args.names.split(",") if n.strip()] if args.names else []


def reference_masks(args: argparse.Namespace, ref_numbers: list[int], names: list[str]) -> tuple[list, list[str]]:
    """Mask sources per reference frame (a path, or {part: path} with ``--matte``), and the part names (from
    ``--names`` or the ``--matte`` parts)."""
    from smite.io.sequences import expand_frames

    refs = ",".join(map(str, ref_numbers))
    if args.matte:
        if args.masks:
            raise SmiteError("give either --masks or --matte, not both")
        pairs = [m.split("=", 1) for m in args.matte]
        if any(len(p) != 2 for p in pairs):
            raise SmiteError("--matte takes PART=PATTERN, e.g. --matte face=face.####.png")
        names = names or [p for p, _ in pairs]
        per_part = {part: [path for _, path in expand_frames(pattern, refs)] for part, pattern in pairs}
        return [{part: paths[i] for part, paths in per_part.items()} for i in range(len(ref_numbers))], names
    if not args.masks:
        raise SmiteError("no reference masks: give --masks PATTERN or --matte PART=PATTERN")
    if not names:
        raise SmiteError("give the part names in label order with --names face,hair,...")
    return [path for _, path in expand_frames(args.masks, refs)], names


def reference_frames(args: argparse.Namespace) -> tuple[list[int], list]:
    """The reference frame numbers (``--refs``) and their plate files (``--frames`` over them)."""
    from smite.io.sequences import expand_frames, format_frame_range, parse_frame_range

    numbers = parse_frame_range(args.refs)
    return numbers, [path for _, path in expand_frames(args.frames, format_frame_range(numbers))]
