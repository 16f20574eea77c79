"""A daemon per farm worker session: ``smite farm daemon start`` in a step environment's onEnter, ``stop`` in
its onExit, ``smite render --daemon`` in every chunk between them (the backbone loads once per session).

``start`` launches ``smite serve`` detached (own session, output to a log file: a child that keeps the
runner's output pipes open stalls the session, hosts.md) on a private address (``ipc://`` in the session
folder, or loopback), with the plates' and part model's folders as its roots, and returns once it listens.
Everything it needs to be stopped (address, pid, log) lives in the state folder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from smite.errors import SmiteError

STATE_FILE = "daemon.json"


def roots_for(paths: Sequence[str]) -> list[Path]:
    """The folders the daemon must read: the folder of each plate pattern or file (absolute, deduplicated)."""
    roots: list[Path] = []
    for path in paths:
        folder = Path(path).expanduser().resolve().parent
        if folder not in roots:
            roots.append(folder)
    return roots


def serve_command(address: str, state: Path, roots: Sequence[Path], backbone: str | None, device: str | None,
                  threads: int | None = None) -> list[str]:
    """The ``smite serve`` command line of a session daemon (never unloads the backbone while the session lives)."""
    command = [sys.executable, "-m", "smite.cli", "serve", "--address", address, "--state-dir", str(state / "jobs"),
               "--model-store", str(state / "models"), "--ready-file", str(state / "ready"),
               "--log-file", str(state / "daemon.log"), "--idle-unload", "0"]
    for root in roots:
        command += ["--root", str(root)]
    for flag, value in (("--backbone", backbone), ("--device", device), ("--threads", threads)):
        if value not in (None, ""):
            command += [flag, str(value)]
    return command


def start(address: str, state: Path, roots: Sequence[Path], backbone: str | None = None, device: str | None = None,
          threads: int | None = None, ready_timeout: float = 120.0) -> dict:
    """Start a detached daemon and wait until it listens; returns its record (address, pid, log)."""
    state.mkdir(parents=True, exist_ok=True)
    (state / "ready").unlink(missing_ok=True)
    command = serve_command(address, state, roots, backbone, device, threads)
    with open(state / "daemon.log", "ab") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                   start_new_session=True, close_fds=True)
    record = {"address": address, "pid": process.pid, "log": str(state / "daemon.log")}
    (state / STATE_FILE).write_text(json.dumps(record))
    deadline = time.monotonic() + ready_timeout
    while not (state / "ready").is_file():
        if process.poll() is not None:
            raise SmiteError(f"the daemon exited with code {process.returncode} before listening: "
                             f"{_tail(state / 'daemon.log')}", code="io_error")
        if time.monotonic() > deadline:
            _terminate(process.pid)
            raise SmiteError(f"the daemon did not listen within {ready_timeout:g} s: {_tail(state / 'daemon.log')}",
                             code="io_error")
        time.sleep(0.1)
    record["address"] = (state / "ready").read_text().strip() or address
    (state / STATE_FILE).write_text(json.dumps(record))
    return record


def stop(state: Path, timeout: float = 120.0) -> str:
    """Stop the daemon recorded in ``state``: ask it to shut down (it lets its worker finish, which can take a
    while on a loaded node), then SIGTERM, then SIGKILL. Never fails."""
    try:
        record = json.loads((state / STATE_FILE).read_text())
    except (OSError, ValueError):
        return f"no daemon recorded in {state}"
    pid, address = int(record["pid"]), str(record["address"])
    if not _alive(pid):
        return f"daemon {pid} had already exited"
    from smite.client import Client, DaemonError

    try:
        with Client(address, timeout=5.0, retries=0) as client:
            client.shutdown(cancel_running=True)
    except DaemonError:
        pass  # unreachable: the signals below stop it
    if _wait_exit(pid, timeout):
        return f"daemon {pid} at {address} stopped"
    _terminate(pid)
    return f"daemon {pid} at {address} terminated"


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie child counts as gone once reaped)."""
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)
        if finished == pid:
            return False
    except ChildProcessError:
        pass  # not our child (stop runs in another process than start)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _terminate(pid: int) -> None:
    """SIGTERM, then SIGKILL after 10 s."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if _wait_exit(pid, wait):
            return


def _tail(log: Path, lines: int = 3) -> str:
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"
