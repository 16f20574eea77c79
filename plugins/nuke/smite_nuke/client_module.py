"""The daemon client: the project's ``smite/client.py``, found either as ``smite_client`` (copied unchanged
into an installed NUKE_PATH folder by ``smite install-nuke``) or as ``smite.client`` (a development checkout
with the smite-vfx package importable). Either way it needs only pyzmq and msgpack, never torch."""

from __future__ import annotations

try:
    import smite_client as client
except ImportError:  # a development checkout: NUKE_PATH=plugins/nuke with smite-vfx installed
    from smite import client

__all__ = ["client"]
