"""Shared fixtures: the tiny backbone is loaded once per test session (it is the same for every test), and each
part model learned from a synthetic shot is learned once per session, however many tests use it."""

import hashlib
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test may touch the network


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
