"""Helpers of the daemon tests: a real daemon in a subprocess on loopback (tiny backbone, one torch thread)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from smite.client import Client, Inline

# Daemon tests learn with a handful of steps: learning quality is tested elsewhere.
TINY_LEARN = {"steps": 3, "token_steps": 2, "eval_every": 1}
START_TIMEOUT_S = 600  # import torch + load the tiny backbone at nice 10 on a busy 2-core machine: a hang guard only


@dataclass
class DaemonProcess:
    """A ``python -m smite_server serve`` subprocess and its folders."""

    home: Path
    extra: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    address: str | None = None
    own_folders_in_root: bool = False  # model store and state inside the root (the daemon must refuse them)
    env: dict[str, str] = field(default_factory=dict)  # on top of the suite's environment

    @property
    def root(self) -> Path:
        return self.home / "root"

    @property
    def store(self) -> Path:
        return self.root / ".smite" / "models" if self.own_folders_in_root else self.home / "store"

    @property
    def state(self) -> Path:
        return self.root / ".smite" / "daemon" if self.own_folders_in_root else self.home / "state"

    def start(self) -> DaemonProcess:
        for folder in (self.root, self.store, self.state):
            folder.mkdir(parents=True, exist_ok=True)
        ready = self.home / "ready"
        ready.unlink(missing_ok=True)
        address = self.address or "tcp://127.0.0.1:0"  # a restart binds the same port again
        cmd = [sys.executable, "-m", "smite_server", "serve", "--address", address, "--model", "tiny",
               "--root", str(self.root), "--model-store", str(self.store), "--state-dir", str(self.state),
               "--threads", "1", "--preset", "fast", "--ready-file", str(ready),
               "--log-file", str(self.home / "daemon.log"),
               *self.extra]
        env = os.environ | {"OMP_NUM_THREADS": "1"} | self.env
        self.proc = subprocess.Popen(["nice", "-n", "10", *cmd], env=env, stdout=subprocess.DEVNULL,
                                     stderr=open(self.home / "stderr.log", "ab"))
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ready.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"daemon did not start:\n{(self.home / 'stderr.log').read_text()[-3000:]}")
            time.sleep(0.05)
        self.address = ready.read_text()
        return self

    def client(self, timeout: float = 60.0) -> Client:
        return Client(self.address, timeout=timeout)

    def rss_kb(self) -> int:
        """Resident memory of the daemon (the python process under ``nice``), from /proc."""
        for line in Path(f"/proc/{self.python_pid()}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def python_pid(self) -> int:
        return self.proc.pid  # nice execs the command: same pid

    def kill(self) -> None:
        """SIGKILL: no chance to save anything."""
        os.kill(self.python_pid(), signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()


def inline(path: Path) -> Inline:
    return Inline(path.name, path.read_bytes())
