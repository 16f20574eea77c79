"""Stable import path for trackers (``smite.tracking.get_tracker``); they live in ``smite.video.tracking``."""

from smite.video.tracking import Tracker, get_tracker

__all__ = ["Tracker", "get_tracker"]
