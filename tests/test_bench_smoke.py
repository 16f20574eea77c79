"""Every bench runs: its ``--smoke`` mode (smallest sizes, one repeat) in a subprocess prints its figures.

A bench that drifts from the code it measures (a changed signature, a moved module) fails here, not when
someone next needs its numbers. Every ``bench/*.py`` is run; the ones listed in ``CHECKS`` also have their
figures checked. The runs go two at a time (one torch thread each): most of a smoke run is a single thread
importing torch and diffusers, so two lanes halve the wall time on a 2-core machine. The tiny backbone works at
128 px in them (``SMOKE_ENV``).
"""

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
NUMBER = r"[0-9]+(?:\.[0-9]+)?"


def _daemon(out: str, folder: Path) -> None:
    assert re.search(rf"floor +: +{NUMBER} ms/frame", out), out
    ratios = re.findall(rf"ratio ({NUMBER})", out)
    assert len(ratios) == 2 and all(float(r) > 0 for r in ratios), out


def _learn(out: str, folder: Path) -> None:
    assert re.search(rf"tiny backbone, CPU, 128 px: {NUMBER} s/step \(median of 2\), peak {NUMBER} GiB", out), out


def _attention_grouping(out: str, folder: Path) -> None:
    assert re.search(rf"same-part attention mass {NUMBER} vs area share {NUMBER}", out), out


def _video(out: str, folder: Path) -> None:
    data = json.loads((folder / "video.json").read_text())
    for preset in ("fast", "quality"):
        row = data["presets"][preset]
        assert 0 <= row["miou"] <= 1 and row["seconds_per_frame"] > 0 and row["evaluations_per_frame"] > 0, row
    assert [run["frames"] for run in data["memory"]["runs"]] == [1, 2] and data["memory"]["ratio"] > 0


def _warm(out: str, folder: Path) -> None:
    assert re.search(rf"cold +2 +{NUMBER} +{NUMBER} +{NUMBER}", out), out
    assert len(re.findall(rf"warm +[12] +{NUMBER} +{NUMBER} +{NUMBER}", out)) == 2, out
    assert "reaches the cold run's mIoU" in out or "no warm budget reached" in out, out


def _thin(out: str, folder: Path) -> None:
    for way in ("plain", "zoom"):
        assert re.search(rf"\| 1 \| {NUMBER} \| {way} \| {NUMBER} \| {NUMBER} \| {NUMBER} \| {NUMBER} \|", out), out


# name: (extra arguments, extra environment, check of the output); {tmp} is the test's folder
CHECKS = {
    "daemon.py": ((), {}, _daemon),
    "learn.py": ((), {}, _learn),
    "attention_grouping.py": ((), {}, _attention_grouping),
    "video.py": (("--json", "{tmp}/video.json"), {"SMITE_BENCH_CACHE": "{tmp}"}, _video),
    "warm.py": ((), {}, _warm),
    "thin.py": ((), {"SMITE_BENCH_CACHE": "{tmp}"}, _thin),
}


# The slowest first, so the two lanes end together.
SLOWEST = ("video.py", "warm.py", "farm.py", "guidance.py", "edges.py", "learn.py")
NAMES = sorted(p.name for p in BENCH.glob("*.py"))
LANES = 2  # one per core: most of a smoke run is one thread importing torch and diffusers
# One torch thread per lane; the tiny backbone at the suite's plumbing 128 px (at its own 256 px the smoke runs
# took 2.5x longer; what they check, that each bench runs and prints its figures, does not depend on the size).
SMOKE_ENV = {"OMP_NUM_THREADS": "1", "SMITE_TINY_RESOLUTION": "128"}


def _smoke(name: str, folder: Path) -> subprocess.CompletedProcess:
    args, env, _ = CHECKS.get(name, ((), {}, None))
    args = [a.format(tmp=folder) for a in args]
    env = os.environ | SMOKE_ENV | {k: v.format(tmp=folder) for k, v in env.items()}
    return subprocess.run([sys.executable, str(BENCH / name), "--smoke", *args], capture_output=True, text=True,
                          timeout=900, env=env, cwd=BENCH.parent)


@pytest.fixture(scope="module")
def smoke_runs(request, tmp_path_factory):
    """The smoke runs of the benches this session selected, started together in ``LANES`` lanes:
    name -> (future of the finished process, its folder)."""
    selected = {item.callspec.params["name"] for item in request.session.items
                if getattr(item, "originalname", None) == "test_bench_smoke_mode_runs_and_prints_its_figures"}
    order = sorted(selected, key=lambda n: SLOWEST.index(n) if n in SLOWEST else len(SLOWEST))
    with ThreadPoolExecutor(LANES) as pool:
        runs = {}
        for name in order:
            folder = tmp_path_factory.mktemp(name.removesuffix(".py"))
            runs[name] = (pool.submit(_smoke, name, folder), folder)
        yield runs


@pytest.mark.parametrize("name", NAMES)
def test_bench_smoke_mode_runs_and_prints_its_figures(name, smoke_runs):
    future, folder = smoke_runs[name]
    proc = future.result()
    assert proc.returncode == 0, f"{name} --smoke failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    assert proc.stdout.strip(), f"{name} --smoke printed nothing"
    check = CHECKS.get(name, ((), {}, None))[2]
    if check is not None:
        check(proc.stdout, folder)
