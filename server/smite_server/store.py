"""The model store: learned part models kept as ``<folder>/<name>.smite`` (safetensors, written atomically).

Listing reads only the JSON header of each file (safetensors metadata), never the tensors; a corrupt file
is listed with its error instead of breaking the listing.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors import SafetensorError, safe_open

from smite.errors import SmiteError
from smite_server.protocol import ProtocolError

SUFFIX = ".smite"
SUMMARY_KEYS = ("part_names", "base_model", "base_fingerprint", "resolution", "map_mode", "validation_miou",
                "reference_ids")


def read_header(path: Path) -> dict:
    """The ``smite`` JSON metadata of a .smite file; SmiteError if it is not a readable part model."""
    try:
        with safe_open(str(path), "np") as fh:
            header = (fh.metadata() or {}).get("smite")
        meta = json.loads(header) if header is not None else None
    except (SafetensorError, OSError, ValueError) as exc:
        raise SmiteError(f"{path.name} is not a readable part model ({type(exc).__name__})") from exc
    if not isinstance(meta, dict):
        raise SmiteError(f"{path.name} is a safetensors file but not a SMITE part model")
    return meta


class ModelStore:
    """Part models by name in one folder."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder).expanduser()
        self.folder.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        return self.folder / f"{name}{SUFFIX}"

    def exists(self, name: str) -> bool:
        return self.path(name).is_file()

    def require(self, name: str) -> Path:
        path = self.path(name)
        if not path.is_file():
            raise ProtocolError("not_found", f"no part model named {name!r} in the store; see `smite models`")
        return path

    def save(self, part_model, name: str) -> Path:
        """Store ``part_model`` (a ``smite.model.partmodel.PartModel``) atomically under ``name``."""
        return part_model.save(self.path(name))

    def describe(self, name: str) -> dict:
        """Name, file size, modification time and the model's metadata."""
        path = self.require(name)
        return self._entry(path) | {"metadata": read_header(path)}

    def _entry(self, path: Path) -> dict:
        stat = path.stat()
        entry = {"name": path.name[: -len(SUFFIX)], "bytes": stat.st_size, "modified": stat.st_mtime}
        try:
            meta = read_header(path)
            entry |= {k: meta.get(k) for k in SUMMARY_KEYS}
        except SmiteError as exc:
            entry["error"] = str(exc)
        return entry

    def listing(self) -> list[dict]:
        return [self._entry(p) for p in sorted(self.folder.glob(f"*{SUFFIX}")) if p.is_file()]

    def delete(self, name: str) -> None:
        self.require(name).unlink()
