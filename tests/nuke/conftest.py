"""Fixtures of the Nuke plug-in tests: the fake ``nuke`` module, the plug-in on ``sys.path``, one daemon on
loopback and one part model learned through the node, shared by the whole session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
REPO = HERE.parents[1]
PLUGIN = REPO / "plugins" / "nuke"
for folder in (HERE, REPO / "tests" / "server", PLUGIN):  # fake_nuke, server_helpers, smite_nuke
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import fake_nuke  # noqa: E402

sys.modules["nuke"] = fake_nuke


@pytest.fixture(autouse=True)
def nuke():
    """A fresh fake Nuke session owned by the test thread; no controllers left from other tests."""
    import smite_nuke

    fake_nuke.reset()
    smite_nuke._controllers.clear()
    yield fake_nuke
    for ctl in smite_nuke._controllers.values():
        ctl.cancel()
        ctl.wait_idle(60)
