"""Load the add-on's plain modules (no bpy) from plugins/blender as the package ``smite_blender``."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

ADDON = Path(__file__).resolve().parents[2] / "plugins" / "blender"
PACKAGE = "smite_blender"


def load(name: str):
    """``smite_blender.<name>``, importing the package itself first (its __init__ imports no bpy)."""
    if PACKAGE not in sys.modules:
        spec = importlib.util.spec_from_file_location(PACKAGE, ADDON / "__init__.py",
                                                      submodule_search_locations=[str(ADDON)])
        module = importlib.util.module_from_spec(spec)
        sys.modules[PACKAGE] = module  # before exec: dataclasses look their module up (hosts.md)
        spec.loader.exec_module(module)
    return importlib.import_module(f"{PACKAGE}.{name}")
