"""Shared fixtures: the tiny backbone is loaded once per test session (it is the same for every test), and each
part model learned from a synthetic shot is learned once per session, however many tests use it.

Plumbing tests (and every subprocess: CLI, daemon, hosts, farm, benches) run the tiny backbone at 128 px
($SMITE_TINY_RESOLUTION): the same weights and code at a quarter of the latent cells, 4-8x less CPU. Tests of
what the model learns and how well it segments use ``tiny_backbone_256``, its own 256 px.
"""

import hashlib
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test may touch the network
os.environ.setdefault("SMITE_TINY_RESOLUTION", "128")  # plumbing at 128 px, inherited by every subprocess
# OpenMP threads that wait by sleeping, not spinning: two workers (and their subprocesses) share 2 cores, and a
# spinning thread burns the core its sibling needs (two 2-thread learns side by side: 26 s each passive, far
# longer spinning; alone, passive is no slower: 14.6 s against 15.7 s for 12 steps at 256 px).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


# `make test` runs two pytest-xdist workers. Tests that share a session fixture must run in one worker, or each
# worker would build it: the host and server folders (their daemons), and the acceptances (one learned part
# model). Every other module is a group of its own. The heaviest groups go first, so the other worker fills the
# time while they run; most of what it runs waits on subprocesses starting up. (The two 256-px learns in separate
# groups ran side by side with the bench smokes, and the suite took longer: 802 s against 766 s, and 1032 s
# against 855 s from a fresh clone.)
SHARED_LEARNED_MODEL = ("tests/learn/test_acceptance.py", "tests/video/test_acceptance_video.py")
FOLDER_GROUPS = ("server", "farm", "nuke", "blender")
HEAVIEST = ("acceptance", "farm", "nuke", "tests/test_bench_smoke.py", "server", "blender", "tests/test_demo.py")


def worker_group(nodeid: str) -> str:
    """The worker group of a test id (``tests/<path>::<name>``): ``acceptance``, a host or server folder, or its
    module's path."""
    path = nodeid.split("::", 1)[0]
    if path in SHARED_LEARNED_MODEL:
        return "acceptance"
    parts = path.split("/")
    return parts[1] if len(parts) > 2 and parts[1] in FOLDER_GROUPS else path


def pytest_collection_modifyitems(config, items):
    rank = {group: i for i, group in enumerate(HEAVIEST)}
    items.sort(key=lambda item: rank.get(worker_group(item.nodeid), len(HEAVIEST)))  # stable: module order kept


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Whole groups (``worker_group``) to a worker, in collection order (heaviest first)."""
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return worker_group(nodeid)

    config.option.loadscopereorder = False
    return GroupScheduling(config, log)


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
