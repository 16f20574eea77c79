"""Command-line parsers of the farm commands: ``smite render`` and ``smite farm daemon|opencue``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

RENDER_EPILOG = """exit codes: 0 done, 2 bad input (do not retry), 75 temporary failure (retry), 130 cancelled
examples:
  smite render shot.smite --frames plate.####.exr --range 1001-1240 --chunk 1061-1120 --context 8 \\
      -o mattes/shot.####.exr
  smite render shot.smite --frames plate.####.exr --range 1001-1240 --chunk 1061-1120 -o m/shot.####.exr \\
      --daemon ipc:///tmp/session/smite.ipc
"""


def add_render_parser(sub) -> None:
    """``smite render``: one chunk of a shot (see ``smite.farm.render``)."""
    p = sub.add_parser("render", help="render one farm chunk of a shot's mattes (resumable, farm exit codes)",
                       epilog=RENDER_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("part_model", type=Path, help="a .smite file from `smite learn`")
    p.add_argument("--frames", required=True, help="plate pattern, e.g. plate.####.exr")
    p.add_argument("--range", required=True, help="the shot's frame range, e.g. 1001-1240 (context stops here)")
    p.add_argument("--chunk", default=None, help="the frames this task owns and writes (default: the whole range)")
    p.add_argument("--context", type=int, default=8,
                   help="how far back (frames of --range) the chunk follows maps carried into its windows (default 8)")
    p.add_argument("-o", "--out", required=True, help="matte EXR pattern, e.g. mattes/shot.####.exr")
    p.add_argument("--force", action="store_true", help="redo owned frames whose matte is already complete")
    p.add_argument("--daemon", default=None, metavar="ADDRESS",
                   help="segment in the daemon at ADDRESS (ipc:// or tcp://127.0.0.1:PORT) instead of in-process")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for each daemon reply (default 30)")
    p.add_argument("--preset", choices=("fast", "quality"), default="quality")
    p.add_argument("--window", type=int, default=None, help="frames segmented together (default or 0: the preset's)")
    p.add_argument("--overlap", type=int, default=None, help="frames shared by windows (default: the preset's)")
    p.add_argument("--tracker", choices=("flow", "cotracker"), default="flow")
    p.add_argument("--temperature", type=float, default=1.0, help="softness of the mattes (logit units)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-coarse-to-fine", dest="coarse_to_fine", action="store_false")
    p.add_argument("--guidance-iterations", type=int, default=None,
                   help="latent iterations per guided step (in-process only; default: the backbone's)")
    p.add_argument("--backbone", default=None, help="backbone (default: the one the part model names)")
    p.add_argument("--device", default=None)
    p.add_argument("--precision", default=None, choices=["auto", "fp32", "fp16", "bf16"])
    p.add_argument("--colorspace", default=None, help="colour space of float/EXR plates (default lin_rec709)")
    p.set_defaults(func=cmd_render)


def cmd_render(args) -> int:
    from smite.farm.render import RenderJob, cancel_on_signals, render

    job = RenderJob(part_model=args.part_model, frames=args.frames, shot=args.range, out=args.out, chunk=args.chunk,
                    context=args.context, force=args.force, daemon=args.daemon, timeout=args.timeout,
                    preset=args.preset, window=args.window or None, overlap=args.overlap, tracker=args.tracker,
                    seed=args.seed, temperature=args.temperature, coarse_to_fine=args.coarse_to_fine,
                    guidance_iterations=args.guidance_iterations, backbone=args.backbone, device=args.device,
                    precision=args.precision, colorspace=args.colorspace)
    with cancel_on_signals() as cancel:
        return render(job, cancel=cancel)


def add_farm_parser(sub) -> None:
    """``smite farm daemon start|stop`` (worker-session daemon) and ``smite farm opencue`` (job spec)."""
    farm = sub.add_parser("farm", help="render-farm helpers: worker-session daemon, OpenCue job")
    tools = farm.add_subparsers(dest="farm_command", metavar="TOOL", required=True)

    start = tools.add_parser("daemon-start", help="start a detached daemon for this worker session")
    start.add_argument("--state", type=Path, required=True, help="session folder for its records and log")
    start.add_argument("--address", default=None, help="bind address (default ipc://STATE/smite.ipc)")
    start.add_argument("--read", action="append", default=[], metavar="PATTERN",
                       help="a plate pattern or file the daemon reads (its folder becomes a root); repeatable")
    start.add_argument("--backbone", default=None)
    start.add_argument("--device", default=None)
    start.add_argument("--threads", type=int, default=None)
    start.add_argument("--ready-timeout", type=float, default=120.0)
    start.set_defaults(func=cmd_daemon_start)

    stop = tools.add_parser("daemon-stop", help="stop the daemon started for this worker session")
    stop.add_argument("--state", type=Path, required=True)
    stop.set_defaults(func=cmd_daemon_stop)

    cue = tools.add_parser("opencue", help="build (and --submit) the shot's OpenCue job: learn + chunked segment")
    cue.add_argument("--name", required=True, help="job name")
    cue.add_argument("--plates", required=True, help="plate pattern (absolute, as render nodes see it)")
    cue.add_argument("--frames", required=True, help="the shot's frame range")
    cue.add_argument("--ref-frames", default=None, help="reference frames to learn from (none: use --part-model)")
    cue.add_argument("--masks", default=None, help="mask pattern over the reference frames")
    cue.add_argument("--parts", default=None, help="comma list of part names")
    cue.add_argument("--part-model", required=True, help="the .smite file the learn layer writes (or an existing one)")
    cue.add_argument("--output", required=True, help="matte pattern, e.g. /show/mattes/shot.####.exr")
    cue.add_argument("--chunk-size", type=int, default=16)
    cue.add_argument("--context", type=int, default=8)
    cue.add_argument("--window", type=int, default=0, help="frames segmented together (0: the preset's)")
    cue.add_argument("--preset", choices=("fast", "quality"), default="quality")
    cue.add_argument("--backbone", default=None)
    cue.add_argument("--device", default=None)
    cue.add_argument("--smite", default="smite", help="the smite command on render nodes (default: smite)")
    cue.add_argument("--show", default=None)
    cue.add_argument("--shot", default=None)
    cue.add_argument("--user", default=None)
    cue.add_argument("-o", "--out", type=Path, default=None, help="write the job spec XML here")
    cue.add_argument("--submit", action="store_true", help="launch on the Cuebot (CUEBOT_HOSTS)")
    cue.set_defaults(func=cmd_opencue)


def cmd_daemon_start(args) -> int:
    from smite.farm.daemon import roots_for, start

    state = args.state.resolve()
    address = args.address or f"ipc://{state / 'smite.ipc'}"
    record = start(address, state, roots_for(args.read), args.backbone, args.device, args.threads,
                   args.ready_timeout)
    print(f"smite daemon {record['pid']} listening on {record['address']} (log {record['log']})", flush=True)
    return 0


def cmd_daemon_stop(args) -> int:
    from smite.farm.daemon import stop

    print(stop(args.state.resolve()), flush=True)
    return 0


def cmd_opencue(args) -> int:
    from smite.errors import SmiteError
    from smite.farm.opencue import ShotJob, job_spec, submit, write_spec

    job = ShotJob(name=args.name, plates=args.plates, frames=args.frames, part_model=args.part_model,
                  output=args.output, ref_frames=args.ref_frames, masks=args.masks, parts=args.parts,
                  chunk_size=args.chunk_size, context=args.context, window=args.window, preset=args.preset,
                  backbone=args.backbone, device=args.device, smite=args.smite, show=args.show, shot=args.shot,
                  user=args.user)
    if args.out is None and not args.submit:
        sys.stdout.write(job_spec(job) + "\n")
    if args.out is not None:
        print(f"OpenCue job spec: {write_spec(job, args.out)}")
    if args.submit:
        names = submit(job)
        if not names:
            raise SmiteError("the Cuebot accepted no job")
        print(f"submitted: {', '.join(names)}")
    return 0
