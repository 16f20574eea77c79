"""Shared fixtures: the tiny backbone is loaded once per test session (it is the same for every test)."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test may touch the network


@pytest.fixture(scope="session")
def tiny_backbone():
    from smite.model.backbone import load_backbone

    return load_backbone("tiny", device="cpu")
