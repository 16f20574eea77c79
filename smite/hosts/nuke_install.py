"""``smite install-nuke DIR``: a self-contained NUKE_PATH folder for the SMITE node, without torch.

The folder holds the plug-in (``plugins/nuke``: ``init.py``, ``menu.py``, ``smite_nuke/``), the daemon client
(``smite/client.py`` copied unchanged as ``python/smite_client.py``) and pyzmq + msgpack unpacked from the
wheels the package index publishes for Nuke's Python (3.11: Nuke 16, 3.10: Nuke 15) and platform. Standard
library only: no torch, numpy or OpenImageIO (this runs on artists' machines and in CI).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from smite.errors import SmiteError

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "plugins" / "nuke"
CLIENT = REPO / "smite" / "client.py"
PACKAGES = ("pyzmq==27.3.0", "msgpack==1.2.4")  # pinned: every install gets the same bytes
PLATFORMS = {  # --platform -> pip --platform tags (pip also accepts older manylinux / macOS versions)
    "linux": ["manylinux_2_28_x86_64", "manylinux2014_x86_64"],
    "windows": ["win_amd64"],
    "macos": ["macosx_11_0_arm64"],  # Apple silicon; pyzmq ships one universal2 wheel, msgpack arm64
}
PYTHONS = ("3.9", "3.10", "3.11", "3.12")
MARKER = ".smite-nuke.json"
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")


def add_install_nuke_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``smite install-nuke`` on the CLI's subparsers."""
    p = sub.add_parser("install-nuke", help="write a NUKE_PATH folder with the SMITE node (no torch)",
                       description="Write a self-contained NUKE_PATH folder: the SMITE plug-in, the daemon "
                                   "client, and pyzmq + msgpack wheels unpacked for Nuke's Python.")
    p.add_argument("folder", type=Path, help="folder to write (created; a previous SMITE install is replaced)")
    p.add_argument("--python-version", default="3.11", choices=PYTHONS,
                   help="Nuke's Python: 3.11 for Nuke 16, 3.10 for Nuke 15, 3.9 for Nuke 14 (default 3.11)")
    p.add_argument("--platform", default=_this_platform(), choices=sorted(PLATFORMS),
                   help="the artists' OS (default: this one)")
    p.add_argument("--wheels", type=Path, default=None,
                   help="take the wheels from this folder only (offline, pip --no-index --find-links)")
    p.set_defaults(func=cmd_install_nuke)


def _this_platform() -> str:
    return {"win32": "windows", "darwin": "macos"}.get(sys.platform, "linux")


def cmd_install_nuke(args: argparse.Namespace) -> int:
    folder = install_nuke(args.folder, args.python_version, args.platform, args.wheels)
    print(f"SMITE for Nuke (Python {args.python_version}, {args.platform}) installed in {folder}")
    print(f"add it to Nuke: NUKE_PATH={folder}   (or in ~/.nuke/init.py: nuke.pluginAddPath({str(folder)!r}))")
    return 0


def download_wheels(dest: Path, python_version: str, platform: str, wheels: Path | None = None) -> list[Path]:
    """``pip download`` the pinned pyzmq and msgpack wheels for ``platform`` and ``python_version``."""
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
           "--only-binary=:all:", "--python-version", python_version, "--implementation", "cp",
           "--dest", str(dest)]
    for tag in PLATFORMS[platform]:
        cmd += ["--platform", tag]
    if wheels is not None:
        if not Path(wheels).is_dir():
            raise SmiteError(f"wheel folder {wheels} does not exist")
        cmd += ["--no-index", "--find-links", str(wheels)]
    proc = subprocess.run([*cmd, *PACKAGES], capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip() and "WARNING" not in ln]
        where = f"in {wheels}" if wheels is not None else "on the package index"
        raise SmiteError(f"no pyzmq/msgpack wheels for Python {python_version} on {platform} {where}: "
                         f"{lines[-1] if lines else 'pip download failed'}")
    found = sorted(dest.glob("*.whl"))
    names = {w.name.split("-")[0].lower() for w in found}
    if names != {"pyzmq", "msgpack"}:
        raise SmiteError(f"pip download gave {', '.join(w.name for w in found) or 'nothing'}; "
                         "expected one pyzmq and one msgpack wheel")
    return found


def _unpack(wheel: Path, target: Path) -> None:
    """Unpack a wheel as pip would lay out its purelib/platlib files (no scripts or data in these two)."""
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.namelist():
            if member.split("/", 1)[0].endswith(".data"):
                raise SmiteError(f"{wheel.name} has data files; unpacking it by hand is not supported")
        archive.extractall(target)


def _check_target(folder: Path) -> None:
    if folder.exists() and (not folder.is_dir() or (any(folder.iterdir()) and not (folder / MARKER).exists())):
        raise SmiteError(f"{folder} exists and is not a SMITE install; give a new or empty folder")


def install_nuke(folder: str | Path, python_version: str = "3.11", platform: str = "linux",
                 wheels: str | Path | None = None) -> Path:
    """Write the NUKE_PATH folder (built next to it, then renamed into place); returns its absolute path."""
    if platform not in PLATFORMS:
        raise SmiteError(f"unknown platform {platform!r}; choose one of {', '.join(sorted(PLATFORMS))}")
    if not (PLUGIN / "init.py").is_file() or not CLIENT.is_file():
        raise SmiteError(f"the Nuke plug-in sources are not in {REPO}; run install-nuke from a SMITE checkout")
    folder = Path(folder).expanduser().absolute()
    _check_target(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        build = staging / "nuke"
        shutil.copytree(PLUGIN, build, ignore=_IGNORED)
        libs = build / "python"
        libs.mkdir()
        downloaded = download_wheels(staging / "wheels", python_version, platform, wheels)
        for wheel in downloaded:
            _unpack(wheel, libs)
        shutil.copy2(CLIENT, libs / "smite_client.py")
        info = {"python": python_version, "platform": platform, "wheels": [w.name for w in downloaded]}
        (build / MARKER).write_text(json.dumps(info, indent=2) + "\n")
        if folder.exists():
            shutil.rmtree(folder)
        build.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder
