"""The README's package map matches the tree: every package folder is listed and every listed path exists."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _map_rows() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## What is here", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| `")]


def test_every_package_folder_is_in_the_map():
    listed = " ".join(_map_rows())
    packages = sorted(p.parent.name for p in (ROOT / "smite").glob("*/__init__.py") if p.parent.name != "assets")
    missing = [name for name in packages if f"`smite/{name}/`" not in listed]
    assert not missing, f"README package map lacks: {missing}"


def test_every_path_in_the_map_exists():
    paths = re.findall(r"`((?:smite|server|tests|bench|plugins|farm|docs)/[^`]*)`", " ".join(_map_rows()))
    assert paths
    absent = [p for p in paths if not (ROOT / p).exists()]
    assert not absent, f"README package map names paths that do not exist: {absent}"
