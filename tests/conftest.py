"""Shared fixtures: the tiny backbone is loaded once per test session (it is the same for every test), and each
part model learned from a synthetic shot is learned once per session, however many tests use it."""

import hashlib
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test may touch the network
if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two workers on two cores: one thread each (and in the daemons and CLIs they start), or
    # their torch thread pools would fight over the cores.
    os.environ.setdefault("OMP_NUM_THREADS", "1")

# Learned once per worker for both: the video acceptance segments the learning acceptance's three-part shot.
SHARED_MODEL_MODULES = ("tests/learn/test_acceptance.py", "tests/video/test_acceptance_video.py")
# Started first (the longest runs), so that no worker is left with one of them at the end.
LONGEST_FIRST = (*SHARED_MODEL_MODULES, "tests/farm/test_openjd.py", "tests/test_bench_smoke.py", "tests/test_demo.py",
                 "tests/nuke/test_nuke_e2e.py")


def pytest_collection_modifyitems(config, items):
    """With pytest-xdist's ``--dist loadgroup``: a module's tests stay on one worker (its module fixtures run
    once), the two acceptance modules share one, and the longest modules are handed out first."""
    def module(item) -> str:
        return item.nodeid.split("::")[0]

    for item in items:
        group = "acceptance" if module(item) in SHARED_MODEL_MODULES else module(item)
        item.add_marker(pytest.mark.xdist_group(group))
    rank = {m: i for i, m in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(module(item), len(rank)))  # stable: the rest keep their order


@pytest.fixture(scope="session")
def tiny_backbone():
    from smite.model.backbone import load_backbone

    return load_backbone("tiny", device="cpu")


@pytest.fixture(scope="session")
def learned_part_model(tiny_backbone):
    """``learned_part_model(shot, settings=None)``: the part model learned on the tiny backbone from frame 0 of
    ``shot`` (default settings: ``LearnSettings.for_backbone``), cached for the session by the reference frame,
    its labels, the part names and the settings. Treat it as read-only."""
    from smite.learn.learner import LearnSettings, PartLearner

    cache = {}

    def learn(shot, settings=None):
        settings = settings or LearnSettings.for_backbone(tiny_backbone)
        key = hashlib.sha256(shot.frames[0].tobytes() + shot.labels[0].tobytes()
                             + repr((list(shot.part_names), settings)).encode()).hexdigest()
        if key not in cache:
            cache[key] = PartLearner(tiny_backbone, settings).learn([shot.frames[0]], [shot.labels[0]],
                                                                    shot.part_names)
        return cache[key]

    return learn
