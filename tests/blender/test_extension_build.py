"""`smite build-blender-extension`: offline from the wheel cache, with Blender's own builder (from a bpy venv)."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from smite.cli import main
from smite.hosts.blender_extension import PACKAGES, REPO, find_builder

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

WHEELS = REPO / ".cache" / "blender-wheels"
PLATFORMS = ("windows-x64", "windows-arm64", "macos-arm64", "macos-x64", "linux-x64", "linux-arm64")


@pytest.fixture(scope="module")
def wheels():
    if not any(WHEELS.glob("*.whl")):
        pytest.fail(f"no wheels in {WHEELS}: run `make blender-wheels`")
    return WHEELS


def test_one_zip_holds_the_addon_the_client_and_every_wheel(tmp_path, wheels, capsys):
    assert main(["build-blender-extension", str(tmp_path), "--wheels", str(wheels)]) == 0
    (zip_path,) = tmp_path.glob("*.zip")
    assert capsys.readouterr().out.strip() == str(zip_path)
    with zipfile.ZipFile(zip_path) as z:
        names = set(z.namelist())
        manifest = tomllib.loads(z.read("blender_manifest.toml").decode())
        client = z.read("client.py")
    assert {"__init__.py", "ops.py", "panel.py", "raster.py", "jobs.py"} <= names
    assert client == (REPO / "smite" / "client.py").read_bytes()  # the client, unchanged
    assert manifest["id"] == "smite" and set(manifest["platforms"]) == set(PLATFORMS)
    assert set(manifest["permissions"]) == {"network", "files"}
    listed = {w.removeprefix("./") for w in manifest["wheels"]}
    assert listed <= names
    for package in PACKAGES:  # each package: cp311 and cp313 (or abi3) wheels for every OS and CPU
        name = package.split("==")[0]
        mine = [w for w in listed if w.startswith(f"wheels/{name}-")]
        for abi in ("cp311", "cp313|abi3"):
            for tag in ("manylinux", "aarch64", "win_amd64", "win_arm64", "macosx"):
                assert any(tag in w and any(a in w for a in abi.split("|")) for w in mine), (name, abi, tag)
    for wheel in listed:  # bundled unmodified from the package index (the cache holds pip's downloads)
        assert z_bytes(zip_path, wheel) == (wheels / wheel.removeprefix("wheels/")).read_bytes()
    done = subprocess.run([sys.executable, str(find_builder()), "validate", str(zip_path)], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def z_bytes(zip_path, name: str) -> bytes:
    with zipfile.ZipFile(zip_path) as z:
        return z.read(name)


def test_split_platforms_makes_one_smaller_zip_per_platform(tmp_path, wheels):
    assert main(["build-blender-extension", str(tmp_path), "--wheels", str(wheels), "--split-platforms"]) == 0
    zips = sorted(tmp_path.glob("*.zip"))
    assert len(zips) == len(PLATFORMS)
    assert all(any(p.replace("-", "_") in z.name for z in zips) for p in PLATFORMS), [z.name for z in zips]


def test_a_wheel_cache_without_the_wheels_is_one_clear_line(tmp_path, capsys):
    empty = tmp_path / "cache"
    empty.mkdir()
    (empty / "unrelated-1.0-py3-none-any.whl").write_bytes(b"")
    assert main(["build-blender-extension", str(tmp_path / "out"), "--wheels", str(empty)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("smite: error: no pyzmq==") and "make blender-wheels" in err and "\n" not in err
