"""The daemon's CLI commands (as registered into the main ``smite`` CLI), run against the shared daemon."""

from __future__ import annotations

import json
import subprocess
import sys

import OpenImageIO as oiio


def smite(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "smite_server", *args], capture_output=True, text=True,
                          timeout=600)


def test_submit_segment_by_path_and_inline_then_jobs_models_cancel(learned, daemon, shot, tmp_path):
    plate = str(shot["plate_files"][2])
    out = daemon.root / "cli" / "m.####.exr"
    # the flags of `smite segment`: --frames PATTERN --range LIST -o PATTERN and the segmentation options
    run = smite("submit", "segment", "--model", "hero", "--frames", shot["plates"], "--range", "3", "-o", str(out),
                "--preset", "fast", "--cryptomatte", "--ranks", "2", "--address", daemon.address)
    assert run.returncode == 0, run.stderr
    job = run.stdout.split()[0]
    assert (daemon.root / "cli" / "m.0003.exr").is_file() and "1 frames segmented" in run.stdout
    request = json.loads(smite("jobs", job, "--address", daemon.address).stdout)["request"]
    assert request["settings"] == {"preset": "fast"} and request["cryptomatte"] is True  # only what was set
    channels = oiio.ImageInput.open(str(daemon.root / "cli" / "m.0003.exr")).spec().channelnames
    assert [c for c in channels if c.startswith("CryptoSmite")] == ["CryptoSmite00." + c for c in "RGBA"]
    run = smite("submit", "segment", "--model", "hero", "--files", plate, "--inline", "--save-inline",
                str(tmp_path / "inline"), "--address", daemon.address)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "inline" / "hero.0003.exr").is_file()
    listing = smite("jobs", "--address", daemon.address)
    assert job in listing.stdout and "done" in listing.stdout
    assert '"state": "done"' in smite("jobs", job, "--address", daemon.address).stdout
    assert "hero" in smite("models", "--address", daemon.address).stdout
    assert "already done" in smite("cancel", job, "--address", daemon.address).stdout


def test_submit_learn_takes_the_flags_of_smite_learn(daemon, shot):
    """--frames/--masks are patterns over --refs (expanded here, sent as files); --model is the store name."""
    run = smite("submit", "learn", "--frames", shot["plates"], "--refs", "1,4", "--masks", shot["masks"],
                "--names", ",".join(shot["part_names"]), "--model", "cli_hero", "--steps", "1", "--seed", "3",
                "--set", "token_steps=1", "--no-wait", "--address", daemon.address)
    assert run.returncode == 0, run.stderr
    job = run.stdout.split()[0]
    smite("cancel", job, "--address", daemon.address)  # the request is under test, not the learning
    request = json.loads(smite("jobs", job, "--address", daemon.address).stdout)["request"]
    assert [f["path"] for f in request["frames"]] == [str(shot["plate_files"][0]), str(shot["plate_files"][3])]
    assert [m["path"] for m in request["masks"]] == [str(shot["mask_files"][0]), str(shot["mask_files"][3])]
    assert request["name"] == "cli_hero" and request["parts"] == shot["part_names"]
    assert request["settings"] == {"token_steps": 1, "steps": 1, "seed": 3}


def test_cli_errors_are_one_line_with_the_daemon_code(daemon, shot):
    run = smite("submit", "segment", "--model", "nope", "--files", str(shot["plate_files"][0]), "-o",
                str(daemon.root / "x.####.exr"), "--address", daemon.address)
    assert run.returncode == 2
    assert len(run.stderr.strip().splitlines()) == 1 and "not_found" in run.stderr


def test_keys_command(tmp_path):
    run = smite("keys", str(tmp_path / "k"), "--client", "blender1")
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "k" / "server.key_secret").is_file()
    assert (tmp_path / "k" / "authorized" / "blender1.key").is_file()
