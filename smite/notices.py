"""Third-party notices on the command line: hidden, or one line each with ``--verbose``.

Loading the backbone makes diffusers and transformers print paragraphs that are not the user's business (a
missing ``accelerate``, "modules that should be kept in float32", tokenizer notices, loading progress bars).
The CLI calls :func:`quiet_third_party` first so it prints its own lines only.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from typing import TextIO

LIBRARIES = ("diffusers", "transformers", "huggingface_hub", "accelerate", "tokenizers", "torch")
_WARNING_SOURCES = r"(diffusers|transformers|huggingface_hub|accelerate|tokenizers|torch|torchvision)(\.|$)"


def one_line(text: str, limit: int = 160) -> str:
    """The first non-empty line of ``text``, cut to ``limit`` characters."""
    first = next((line.strip() for line in str(text).splitlines() if line.strip()), "")
    return first if len(first) <= limit else first[: limit - 3] + "..."


class OneLineHandler(logging.Handler):
    """Prints each record as ``smite: note (library): first line``, each distinct line once."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(logging.WARNING)
        self.stream = stream
        self.seen: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        line = f"smite: note ({record.name.split('.')[0]}): {one_line(record.getMessage())}"
        if line not in self.seen:
            self.seen.add(line)
            print(line, file=self.stream or sys.stderr)


def _library_loggers(verbose: bool) -> None:
    """Set the libraries' verbosity before they configure themselves (env) and after (their root loggers)."""
    level = "warning" if verbose else "error"
    for name in ("DIFFUSERS_VERBOSITY", "TRANSFORMERS_VERBOSITY"):
        os.environ.setdefault(name, level)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers' "Loading weights" bar too
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # its notice after a fork
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING if verbose else logging.ERROR)
    for name in ("transformers", "diffusers"):  # already imported: the env was read, switch its bars off
        if name in sys.modules:
            sys.modules[name].utils.logging.disable_progress_bar()


def _configure_verbose(stream: TextIO | None) -> None:
    """Make the libraries configure their loggers now, then route them through one-line handlers."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.get_logger("diffusers")  # configures the library root logger once
    transformers_logging.get_logger("transformers")
    handler = OneLineHandler(stream)
    for name in LIBRARIES:
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.propagate = False
        logger.setLevel(logging.WARNING)

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        print(f"smite: note ({category.__name__}): {one_line(str(message))}", file=stream or sys.stderr)

    warnings.showwarning = show
    warnings.filterwarnings("once", module=_WARNING_SOURCES)


def quiet_third_party(verbose: bool = False, stream: TextIO | None = None) -> None:
    """Hide third-party notices (warnings and library log records below ERROR), or with ``verbose`` print
    each as one line on ``stream`` (default stderr). Errors still show."""
    _library_loggers(verbose)
    if verbose:
        _configure_verbose(stream)
    else:
        warnings.filterwarnings("ignore", module=_WARNING_SOURCES)
