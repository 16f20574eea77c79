"""Every bench runs: its ``--smoke`` mode (smallest sizes, one repeat) in a subprocess prints its figures.

A bench that drifts from the code it measures (a changed signature, a moved module) fails here, not when
someone next needs its numbers. Every ``bench/*.py`` is run; the ones listed in ``CHECKS`` also have their
figures checked.
"""

import json
import os
import re
import subprocess
import sys
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


# name: (extra arguments, extra environment, check of the output); {tmp} is the test's folder
CHECKS = {
    "daemon.py": ((), {}, _daemon),
    "learn.py": ((), {}, _learn),
    "attention_grouping.py": ((), {}, _attention_grouping),
    "video.py": (("--json", "{tmp}/video.json"), {"SMITE_BENCH_CACHE": "{tmp}"}, _video),
    "warm.py": ((), {}, _warm),
}


@pytest.mark.parametrize("name", sorted(p.name for p in BENCH.glob("*.py")))
def test_bench_smoke_mode_runs_and_prints_its_figures(name, tmp_path):
    args, env, check = CHECKS.get(name, ((), {}, None))
    args = [a.format(tmp=tmp_path) for a in args]
    env = os.environ | {k: v.format(tmp=tmp_path) for k, v in env.items()}
    proc = subprocess.run([sys.executable, str(BENCH / name), "--smoke", *args], capture_output=True, text=True,
                          timeout=900, env=env, cwd=BENCH.parent)
    assert proc.returncode == 0, f"{name} --smoke failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    assert proc.stdout.strip(), f"{name} --smoke printed nothing"
    if check is not None:
        check(proc.stdout, tmp_path)
