"""The daemon's CLI commands (as registered into the main ``smite`` CLI), run against the shared daemon."""

from __future__ import annotations

import subprocess
import sys


def smite(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "smite_server", *args], capture_output=True, text=True,
                          timeout=600)


def test_submit_segment_by_path_and_inline_then_jobs_models_cancel(learned, daemon, shot, tmp_path):
    plate = str(shot["plate_files"][2])
    out = daemon.root / "cli" / "m.####.exr"
    run = smite("submit", "segment", "--model", "hero", "--files", plate, "--output", str(out),
                "--address", daemon.address)
    assert run.returncode == 0, run.stderr
    job = run.stdout.split()[0]
    assert (daemon.root / "cli" / "m.0003.exr").is_file() and "1 frames segmented" in run.stdout
    run = smite("submit", "segment", "--model", "hero", "--files", plate, "--inline", "--save-inline",
                str(tmp_path / "inline"), "--address", daemon.address)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "inline" / "hero.0003.exr").is_file()
    listing = smite("jobs", "--address", daemon.address)
    assert job in listing.stdout and "done" in listing.stdout
    assert '"state": "done"' in smite("jobs", job, "--address", daemon.address).stdout
    assert "hero" in smite("models", "--address", daemon.address).stdout
    assert "already done" in smite("cancel", job, "--address", daemon.address).stdout


def test_cli_errors_are_one_line_with_the_daemon_code(daemon, shot):
    run = smite("submit", "segment", "--model", "nope", "--files", str(shot["plate_files"][0]), "--output",
                str(daemon.root / "x.####.exr"), "--address", daemon.address)
    assert run.returncode == 2
    assert len(run.stderr.strip().splitlines()) == 1 and "not_found" in run.stderr


def test_keys_command(tmp_path):
    run = smite("keys", str(tmp_path / "k"), "--client", "blender1")
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "k" / "server.key_secret").is_file()
    assert (tmp_path / "k" / "authorized" / "blender1.key").is_file()
