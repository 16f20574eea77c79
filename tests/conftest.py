"""Shared fixtures: the tiny backbone is loaded once per test session (it is the same for every test), and each
part model learned from a synthetic shot is learned once per session, however many tests use it.

Plumbing tests (and every subprocess: CLI, daemon, hosts, farm, benches) run the tiny backbone at 128 px
($SMITE_TINY_RESOLUTION): the same weights and code at a quarter of the latent cells, 4-8x less CPU. Tests of
what the model learns and how well it segments use ``tiny_backbone_256``, its own 256 px.
"""

import hashlib
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test may touch the network
os.environ.setdefault("SMITE_TINY_RESOLUTION", "128")  # plumbing at 128 px, inherited by every subprocess


# `make test` runs two pytest-xdist workers (``--dist loadgroup``). Tests that share a session fixture must run in
# one worker, or each worker would build it: the host and server folders (their daemons), and the acceptances
# (one learned part model). Every other module is a group of its own. The heaviest groups go first, so the
# other worker fills the time while they run; most of what it runs waits on subprocesses starting up.
TESTS = Path(__file__).resolve().parent
SHARED_LEARNED_MODEL = ("learn/test_acceptance.py", "video/test_acceptance_video.py")
FOLDER_GROUPS = ("server", "farm", "nuke", "blender")
HEAVIEST = ("acceptance", "farm", "nuke", "test_bench_smoke.py", "server", "blender", "test_demo.py")


def xdist_group(item: pytest.Item) -> str:
    """The worker group of a test: ``acceptance``, a host/server folder, or its module's path."""
    path = Path(str(item.fspath)).resolve().relative_to(TESTS)
    if path.as_posix() in SHARED_LEARNED_MODEL:
        return "acceptance"
    return path.parts[0] if path.parts[0] in FOLDER_GROUPS else path.as_posix()


@pytest.hookimpl(tryfirst=True)  # before xdist reads the group marks (it appends them to the test ids)
def pytest_collection_modifyitems(config, items):
    groups = {item: xdist_group(item) for item in items}
    for item, group in groups.items():
        item.add_marker(pytest.mark.xdist_group(group))
    rank = {group: i for i, group in enumerate(HEAVIEST)}
    items.sort(key=lambda item: rank.get(groups[item], len(HEAVIEST)))  # stable: module order kept inside


@pytest.fixture(scope="session")
def tiny_backbone():
    """The tiny backbone at the suite's plumbing resolution (128 px)."""
    from smite.model.backbone import load_backbone

    return load_backbone("tiny", device="cpu")


@pytest.fixture(scope="session")
def tiny_backbone_256():
    """The tiny backbone at its own 256 px: for tests of what it learns and how well it segments."""
    from smite.model.backbone import load_backbone

    return load_backbone("tiny", device="cpu", resolution=256)


@pytest.fixture(scope="session")
def learned_part_model(tiny_backbone_256):
    """``learned_part_model(shot, settings=None)``: the part model learned on the 256-px tiny backbone from frame 0 of
    ``shot`` (default settings: ``LearnSettings.for_backbone``), cached for the session by the reference frame,
    its labels, the part names and the settings. Treat it as read-only."""
    from smite.learn.learner import LearnSettings, PartLearner

    cache = {}

    def learn(shot, settings=None):
        settings = settings or LearnSettings.for_backbone(tiny_backbone_256)
        key = hashlib.sha256(shot.frames[0].tobytes() + shot.labels[0].tobytes()
                             + repr((list(shot.part_names), settings)).encode()).hexdigest()
        if key not in cache:
            cache[key] = PartLearner(tiny_backbone_256, settings).learn([shot.frames[0]], [shot.labels[0]],
                                                                    shot.part_names)
        return cache[key]

    return learn
