"""``smite build-blender-extension``: the Blender add-on as one zip that "Install from Disk" accepts.

Stages ``plugins/blender`` with ``smite/client.py`` (the torch-free daemon client) and the pyzmq and msgpack
wheels for Blender's Python ABIs (cp311: Blender 4.2-5.0, cp313: 5.1+) on every platform of the manifest,
unmodified from the package index, then runs Blender's own extension builder (``blender_ext.py``, shipped
inside the ``bpy`` wheel; plain Python). No torch here: this runs in CI and on artists' machines.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.tags import Tag, cpython_tags, mac_platforms
from packaging.utils import canonicalize_name, parse_wheel_filename

from smite.errors import SmiteError

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "plugins" / "blender"
CLIENT = REPO / "smite" / "client.py"
PACKAGES = ("pyzmq==27.3.0", "msgpack==1.2.4")  # pinned: the same bytes in every build
ABIS = {"cp311": "3.11", "cp313": "3.13"}
_LINUX = [f"manylinux_2_{n}" for n in (28, 27, 26, 17)] + ["manylinux2014"]
PLATFORM_TAGS = {  # manifest platform -> pip --platform tags (pip adds older macOS versions and universal2)
    "linux-x64": [f"{t}_x86_64" for t in _LINUX],
    "linux-arm64": [f"{t}_aarch64" for t in _LINUX],
    "windows-x64": ["win_amd64"],
    "windows-arm64": ["win_arm64"],
    "macos-arm64": ["macosx_11_0_arm64"],
    "macos-x64": ["macosx_11_0_x86_64"],
}
BUILDER_GLOB = "*/scripts/addons_core/bl_pkg/cli/blender_ext.py"
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".*", "wheels")


def add_blender_extension_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``smite build-blender-extension`` on the CLI's subparsers."""
    p = sub.add_parser("build-blender-extension", help="build the Blender add-on zip (extension, Blender 4.2+)")
    p.add_argument("out_dir", nargs="?", type=Path, help="folder for the zip(s)")
    p.add_argument("--split-platforms", action="store_true", help="one smaller zip per platform")
    p.add_argument("--wheels", type=Path, default=None,
                   help="wheel cache folder: used offline when it has the wheels, filled otherwise")
    p.add_argument("--download-only", action="store_true", help="only fill --wheels (from the package index)")
    p.add_argument("--blender-ext", type=Path, default=None,
                   help="Blender's blender_ext.py (default: $SMITE_BLENDER_EXT, an installed bpy, .venv-bpy-*)")
    p.add_argument("--source", type=Path, default=SOURCE, help="add-on source folder (default plugins/blender)")
    p.set_defaults(func=cmd_build_blender_extension)


def cmd_build_blender_extension(args: argparse.Namespace) -> int:
    if args.download_only:
        if args.wheels is None:
            raise SmiteError("--download-only needs --wheels DIR")
        names = fetch_wheels(args.wheels, args.wheels, offline=False)
        print(f"{len(names)} wheels in {args.wheels}")
        return 0
    if args.out_dir is None:
        raise SmiteError("give the output folder: smite build-blender-extension OUT_DIR")
    zips = build_extension(args.out_dir, args.split_platforms, args.wheels, args.blender_ext, args.source)
    for path in zips:
        print(path)
    return 0


def _supported_tags(abi: str, platform: str) -> list[Tag]:
    """The wheel tags Blender's Python ``abi`` accepts on a manifest platform, best first (as pip ranks them)."""
    platforms: list[str] = []
    for tag in PLATFORM_TAGS[platform]:
        if tag.startswith("macosx_"):
            _, major, minor, arch = tag.split("_", 3)
            platforms += list(mac_platforms((int(major), int(minor)), arch))
        else:
            platforms.append(tag)
    version = tuple(int(x) for x in ABIS[abi].split("."))
    return list(cpython_tags(version, abis=[abi], platforms=platforms))


def pick_cached(cache: Path, abi: str, platform: str) -> list[Path]:
    """The best cached wheel of each pinned package for one ABI and platform (no pip, no network)."""
    ranks = {tag: i for i, tag in enumerate(_supported_tags(abi, platform))}
    picked = []
    for requirement in PACKAGES:
        name, version = requirement.split("==")
        best: tuple[int, Path] | None = None
        for wheel in cache.glob("*.whl"):
            w_name, w_version, _, w_tags = parse_wheel_filename(wheel.name)
            rank = min((ranks[t] for t in w_tags if t in ranks), default=None)
            if w_name == canonicalize_name(name) and str(w_version) == version and rank is not None:
                best = min(best or (rank, wheel), (rank, wheel))
        if best is None:
            raise SmiteError(f"no {requirement} wheel for {abi} {platform} in {cache}; run `make blender-wheels` "
                             "(needs the network once) or build without --wheels")
        picked.append(best[1])
    return picked


def fetch_wheels(dest: Path, cache: Path | None, offline: bool) -> list[str]:
    """Put one wheel per package, ABI and platform into ``dest`` (from ``cache`` when ``offline``, else from
    the package index, also kept in ``cache``). Returns the wheel file names."""
    dest.mkdir(parents=True, exist_ok=True)
    if offline and cache is not None:
        wheels = {w for abi in ABIS for platform in PLATFORM_TAGS for w in pick_cached(cache, abi, platform)}
        for wheel in wheels:
            shutil.copy2(wheel, dest / wheel.name)
        return sorted(w.name for w in wheels)
    names: set[str] = set()
    for abi, version in ABIS.items():
        for platform, tags in PLATFORM_TAGS.items():
            with tempfile.TemporaryDirectory() as tmp:
                cmd = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
                       "--only-binary=:all:", "--no-deps", "--dest", tmp, "--python-version", version,
                       "--implementation", "cp", "--abi", abi, "--abi", "abi3", "--abi", "none"]
                cmd += [a for tag in tags for a in ("--platform", tag)]
                if cache is not None and cache.is_dir():
                    cmd += ["--find-links", str(cache)]
                if offline:
                    cmd += ["--no-index"]
                done = subprocess.run([*cmd, *PACKAGES], capture_output=True, text=True)
                if done.returncode != 0:
                    where = f"the wheel cache {cache}" if offline else "the package index"
                    raise SmiteError(f"no {'/'.join(PACKAGES)} wheels for {abi} {platform} in {where}: "
                                     f"{_last_line(done.stderr)}")
                for wheel in Path(tmp).glob("*.whl"):
                    names.add(wheel.name)
                    for folder in {dest, *([cache] if cache is not None and not offline else [])}:
                        folder.mkdir(parents=True, exist_ok=True)
                        if not (folder / wheel.name).exists():
                            shutil.copy2(wheel, folder / wheel.name)
    return sorted(names)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "pip failed"


def find_builder(explicit: Path | None = None) -> Path:
    """Blender's ``blender_ext.py``: explicit path, ``$SMITE_BLENDER_EXT``, this Python's bpy, ``.venv-bpy-*``."""
    candidates: list[Path] = []
    if explicit is not None:
        candidates.append(explicit)
    elif os.environ.get("SMITE_BLENDER_EXT"):
        candidates.append(Path(os.environ["SMITE_BLENDER_EXT"]))
    else:
        spec = importlib.util.find_spec("bpy")  # finds the package without importing Blender
        if spec is not None and spec.submodule_search_locations:
            for loc in spec.submodule_search_locations:
                candidates += [Path(p) for p in sorted(glob.glob(os.path.join(loc, BUILDER_GLOB)))]
        found = glob.glob(str(REPO / ".venv-bpy-*" / "lib" / "python*" / "site-packages" / "bpy" / BUILDER_GLOB))
        candidates += [Path(p) for p in sorted(found, key=_version_key, reverse=True)]
    for path in candidates:
        if path.is_file():
            return path
    raise SmiteError("Blender's extension builder (blender_ext.py, inside the bpy wheel) was not found: "
                     "run `make bpy-venvs`, or pass --blender-ext PATH")


def _version_key(path: str) -> tuple[int, ...]:
    m = re.search(r"\.venv-bpy-([\d.]+)", path)
    return tuple(int(x) for x in m.group(1).split(".") if x) if m else ()


def stage(source: Path, stage_dir: Path) -> Path:
    """Copy the add-on and the daemon client into ``stage_dir/smite``; returns that folder."""
    if not (source / "blender_manifest.toml").is_file():
        raise SmiteError(f"{source} is not the add-on source (no blender_manifest.toml)")
    target = stage_dir / "smite"
    shutil.copytree(source, target, ignore=_IGNORED)
    shutil.copy2(CLIENT, target / "client.py")
    return target


def build_extension(out_dir: Path, split_platforms: bool = False, wheels: Path | None = None,
                    builder: Path | None = None, source: Path = SOURCE) -> list[Path]:
    """Build the extension zip(s) into ``out_dir``; returns their paths."""
    builder_path = find_builder(builder)
    offline = wheels is not None and any(wheels.glob("*.whl"))
    out_dir.mkdir(parents=True, exist_ok=True)
    before = set(out_dir.glob("*.zip"))
    with tempfile.TemporaryDirectory(prefix="smite-ext-") as tmp:
        target = stage(source, Path(tmp))
        names = fetch_wheels(target / "wheels", wheels, offline)
        stage_manifest(target, names)
        cmd = [sys.executable, str(builder_path), "build", "--source-dir", str(target), "--output-dir", str(out_dir)]
        done = subprocess.run(cmd + (["--split-platforms"] if split_platforms else []), capture_output=True,
                              text=True)
        if done.returncode != 0:
            raise SmiteError(f"Blender's extension builder failed: {_last_line(done.stdout + done.stderr)}")
    made = sorted(set(out_dir.glob("*.zip")) - before) or sorted(out_dir.glob("smite-*.zip"))
    if not made:
        raise SmiteError(f"Blender's extension builder wrote no zip into {out_dir}")
    return made


def stage_manifest(target: Path, wheels: list[str]) -> None:
    """List the staged wheels in the staged manifest (its one ``wheels = [...]`` line)."""
    manifest = target / "blender_manifest.toml"
    listed = ", ".join(f'"./wheels/{name}"' for name in sorted(wheels))
    text, count = re.subn(r"(?m)^wheels = \[.*\]$", f"wheels = [{listed}]", manifest.read_text())
    if count != 1:
        raise SmiteError(f"{manifest} needs one `wheels = [...]` line")
    manifest.write_text(text)
