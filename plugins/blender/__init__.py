"""SMITE for Blender's compositor: learn parts from Mask datablocks, segment clips on the SMITE daemon, get
one matte socket per part.

Plain modules (naming, framemap, plan, jobs) hold the logic and import no bpy; the bpy glue (prefs, props,
tree, raster, runtime, ops, panel) is imported only when Blender registers the add-on. Nothing here imports
torch: all ML runs in the daemon (``smite serve``), reached through ``client.py`` (bundled at build time).
"""

_GLUE = ("prefs", "props", "ops", "panel", "runtime")


def _modules():
    import importlib

    return [importlib.import_module(f"{__package__}.{name}") for name in _GLUE]


def register() -> None:
    for module in _modules():
        module.register()


def unregister() -> None:
    for module in reversed(_modules()):
        module.unregister()
