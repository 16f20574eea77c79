"""The model store: learned part models kept as ``<folder>/<name>.smite`` (safetensors, written atomically).

Listing reads only the JSON header of each file (safetensors metadata), never the tensors; a corrupt file
is listed with its error instead of breaking the listing.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from pathlib import Path

from safetensors import SafetensorError, safe_open

from smite.errors import SmiteError
from smite_server.protocol import ProtocolError

SUFFIX = ".smite"
# Temp files of the daemon's own atomic writes: ".<name>.<8 hex>.tmp" plus an optional extension
# (smite.io.images.atomic_path, jobs._write_json, store_model). Only these are ever cleaned up.
TEMP_NAME = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp(\.[A-Za-z]{1,8})?$")
SUMMARY_KEYS = ("part_names", "base_model", "base_fingerprint", "resolution", "map_mode", "validation_miou",
                "reference_ids")


def read_header(path: Path) -> dict:
    """The checked ``smite`` JSON metadata of a .smite file (``smite.model.partmodel.parse_header``);
    SmiteError (bad_input, naming the file) if it is not a readable, well-formed part model."""
    from smite.model.partmodel import parse_header

    try:
        with safe_open(str(path), "np") as fh:
            header = (fh.metadata() or {}).get("smite")
    except (SafetensorError, OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise SmiteError(f"{path.name[:200]} is not a readable part model ({reason})") from exc
    if header is None:
        raise SmiteError(f"{path.name[:200]} is a safetensors file but not a SMITE part model")
    return parse_header(header, path.name[:200])


def store_model(model, path: Path, overwrite: bool) -> Path:
    """Store a part model at ``path`` atomically. Without ``overwrite`` the name is claimed with a hard link,
    which fails if the name was taken meanwhile (two queued learn jobs of one new name): error ``exists``."""
    if overwrite:
        return model.save(path)
    tmp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp{SUFFIX}")
    model.save(tmp)
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise SmiteError(f"a part model named {path.stem!r} was stored while this job ran; learn again with "
                         "another name or with overwrite", code="exists") from None
    finally:
        tmp.unlink(missing_ok=True)
    return path


def clean_temp_files(folder: Path, older_than_s: float = 60.0) -> list[Path]:
    """Delete the daemon's own stale temp files in ``folder`` (left by a kill during a write); returns them.
    Files touched in the last ``older_than_s`` seconds may belong to a writer still running and are kept."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    limit = time.time() - older_than_s
    for entry in entries:
        try:
            if TEMP_NAME.match(entry.name) and entry.is_file(follow_symlinks=False) \
                    and entry.stat(follow_symlinks=False).st_mtime < limit:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


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
        """A listing entry; an unreadable or malformed file is listed with its ``error`` (never raises)."""
        entry: dict = {"name": path.name[: -len(SUFFIX)], "bytes": None, "modified": None}
        try:
            stat = path.stat()
            entry |= {"bytes": stat.st_size, "modified": stat.st_mtime}
            meta = read_header(path)
            entry |= {k: meta.get(k) for k in SUMMARY_KEYS}
        except SmiteError as exc:
            entry["error"] = str(exc)
        except OSError as exc:
            entry["error"] = f"{path.name[:200]}: {exc.strerror or exc}"
        return entry

    def listing(self) -> list[dict]:
        paths = sorted(self.folder.glob(f"*{SUFFIX}"))
        return [self._entry(p) for p in paths if not p.name.startswith(".") and not p.is_dir()]  # no temp files

    def delete(self, name: str) -> None:
        self.require(name).unlink()
