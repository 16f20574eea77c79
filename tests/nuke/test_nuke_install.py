"""``smite install-nuke`` writes a NUKE_PATH folder that works in an interpreter holding only the standard
library and that folder (Nuke's own Python): no network in the test, no torch/numpy/OpenImageIO reachable.

Wheels come from ``.venv/nuke-wheels`` (``make test`` fills it with ``pip download`` before the tests) or,
when that is empty, are packed from the pyzmq and msgpack installed in this venv (same files, same tags).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from smite.cli import main
from smite.hosts import nuke_install

HERE = Path(__file__).parent
CACHE = HERE.parents[1] / ".venv" / "nuke-wheels"
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def _pack_installed(name: str, dest: Path) -> Path:
    """A wheel of an installed distribution, from its RECORD (the files pip unpacked), with its own tags."""
    dist = importlib.metadata.distribution(name)
    wheel_meta = next(f for f in dist.files if f.name == "WHEEL")
    tags = [ln.split(":", 1)[1].strip() for ln in wheel_meta.read_text().splitlines() if ln.startswith("Tag:")]
    py, abi = tags[0].split("-")[:2]
    platforms = ".".join(sorted({t.split("-")[2] for t in tags}))
    path = dest / f"{dist.metadata['Name'].replace('-', '_')}-{dist.version}-{py}-{abi}-{platforms}.whl"
    records = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in dist.files:
            if file.parts[0] == ".." or "__pycache__" in file.parts or file.name == "RECORD":
                continue
            data = file.locate().read_bytes()
            archive.writestr(str(file), data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            records.append(f"{file},sha256={digest},{len(data)}")
        record = next(f for f in dist.files if f.name == "RECORD")
        archive.writestr(str(record), "\n".join([*records, f"{record},,"]) + "\n")
    return path


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> Path:
    if len(list(CACHE.glob("*.whl"))) >= 2:
        return CACHE
    folder = tmp_path_factory.mktemp("wheels")
    for name in ("pyzmq", "msgpack"):
        _pack_installed(name, folder)
    return folder


ISOLATED_CHECK = r"""
import importlib.util, sys
folder, fake = sys.argv[1], sys.argv[2]
sys.path.insert(0, folder)
spec = importlib.util.spec_from_file_location("nuke", fake)
nuke = importlib.util.module_from_spec(spec)
sys.modules["nuke"] = nuke
spec.loader.exec_module(nuke)
for name in ("init.py", "menu.py"):
    path = folder + "/" + name
    exec(compile(open(path).read(), path, "exec"), {"__file__": path, "__name__": "__main__"})
import msgpack, zmq, smite_client, smite_nuke
from smite_nuke import controller, nuke_host, transfer
assert smite_client.__file__.startswith(folder), smite_client.__file__
assert zmq.__file__.startswith(folder) and msgpack.__file__.startswith(folder)
assert msgpack.unpackb(msgpack.packb({"a": 1})) == {"a": 1}
zmq.Context.instance().socket(zmq.DEALER).close()
node = smite_nuke.create_node()
assert node["learn"].value() and nuke.menu("Nodes").findItem("SMITE/SMITE")
for banned in ("torch", "numpy", "OpenImageIO", "cv2", "smite"):
    assert importlib.util.find_spec(banned) is None, banned + " is importable"
print("isolated ok", zmq.zmq_version(), msgpack.version)
"""


def test_install_nuke_writes_a_folder_that_runs_with_only_itself(tmp_path, wheels, capsys):
    target = tmp_path / "nuke_path"
    assert main(["install-nuke", str(target), "--python-version", PYTHON, "--platform",
                 nuke_install._this_platform(), "--wheels", str(wheels)]) == 0
    printed = capsys.readouterr().out
    assert f"NUKE_PATH={target}" in printed
    libs = target / "python"
    assert (libs / "smite_client.py").read_bytes() == (HERE.parents[1] / "smite" / "client.py").read_bytes()
    assert (libs / "zmq").is_dir() and (libs / "msgpack").is_dir()
    assert (target / "init.py").is_file() and (target / "smite_nuke" / "controller.py").is_file()
    assert not list(target.rglob("__pycache__"))
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", ISOLATED_CHECK, str(target), str(HERE / "fake_nuke.py")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "isolated ok" in proc.stdout
    # a second run replaces the install; a folder that is not a SMITE install is never overwritten
    assert main(["install-nuke", str(target), "--python-version", PYTHON, "--wheels", str(wheels)]) == 0
    other = tmp_path / "someone_elses"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    assert main(["install-nuke", str(other), "--wheels", str(wheels)]) == 2
    assert "is not a SMITE install" in capsys.readouterr().err
    assert (other / "keep.txt").read_text() == "mine"


def test_missing_wheels_are_one_line_and_leave_nothing_behind(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["install-nuke", str(tmp_path / "out"), "--platform", "windows", "--wheels", str(empty)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("smite: error: no pyzmq/msgpack wheels for Python 3.11 on windows") and "\n" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]
