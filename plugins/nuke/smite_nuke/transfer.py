"""Getting frames to the daemon: by path when it shares our filesystem (its ``hello.roots`` hold the files),
inline (the encoded file as bytes) otherwise.

Standard library only, plus the client module (pyzmq + msgpack): this runs inside Nuke.
"""

from __future__ import annotations

import os
import tempfile

from smite_nuke.client_module import client as smite_client
from smite_nuke.settings import NodeError

INLINE_EXTENSIONS = (".exr", ".png", ".jpg", ".jpeg", ".tif", ".tiff")  # what the daemon decodes inline


def roots(hello: dict) -> list[str]:
    """The daemon's root folders, or none when it cannot read files by path."""
    if "path_io" not in (hello.get("features") or []):
        return []
    return [os.path.realpath(r) for r in hello.get("roots") or []]


def inside(path: str, folders: list[str]) -> bool:
    real = os.path.realpath(path)
    return any(real == f or real.startswith(f.rstrip(os.sep) + os.sep) for f in folders)


def choose_mode(hello: dict, folder: str) -> str:
    """``"path"`` when the daemon can read and write ``folder`` by path, else ``"inline"``."""
    return "path" if inside(folder, roots(hello)) else "inline"


def sendable(path: str) -> bool:
    """Whether a file can be sent as it is (a format the daemon reads), instead of being rendered to EXR."""
    return path.lower().endswith(INLINE_EXTENSIONS) and os.path.isfile(path)


def source(path: str, folders: list[str]):
    """A protocol image for ``path``: the path itself when the daemon can read it, else its bytes inline."""
    if inside(path, folders):
        return path
    if not path.lower().endswith(INLINE_EXTENSIONS):
        raise NodeError(f"{os.path.basename(path)} cannot be sent inline; render it to EXR first.")
    with open(path, "rb") as handle:
        return smite_client.Inline(os.path.basename(path), handle.read())


def image_ref(item, blobs: list) -> dict:
    """``{"path"}`` or ``{"blob", "name"}`` for a path or an Inline (bytes appended to ``blobs``)."""
    if isinstance(item, smite_client.Inline):
        blobs.append(item.data)
        return {"blob": len(blobs) - 1, "name": item.name}
    return {"path": str(item)}


def inline_bytes(items) -> int:
    return sum(len(i.data) for i in items if isinstance(i, smite_client.Inline))


def write_atomic(path: str, data: bytes) -> None:
    """Write a file through a temp file in the same folder and a rename: a reader never sees half a file."""
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=".smite-", suffix=os.path.splitext(path)[1], dir=folder)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
