"""Typed reading of untrusted msgpack maps: every access checks type and bounds and names the field in errors.

``Fields(args, "args").int("priority", default=0, lo=-100, hi=100)`` either returns a value of the right
type or raises ``ProtocolError("bad_request", "args.priority must be ...")``. ``done()`` refuses keys that
were never read, so a misspelt option is an error instead of being silently ignored.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from smite_server.protocol import ProtocolError

MISSING = object()


def _type_name(value: object) -> str:
    return "nil" if value is None else type(value).__name__


class Fields:
    """Checked access to the keys of one map; ``where`` is its path in the message (``args.frames[0]``)."""

    def __init__(self, value: object, where: str) -> None:
        if not isinstance(value, dict):
            raise ProtocolError("bad_request", f"{where} must be a map, got {_type_name(value)}")
        self.data, self.where, self.seen = value, where, set()

    def _get(self, key: str, default: object) -> object:
        self.seen.add(key)
        value = self.data.get(key, MISSING)
        if value is MISSING or (value is None and default is not MISSING):
            if default is MISSING:
                raise ProtocolError("bad_request", f"{self.where}.{key} is required")
            return default
        return value

    def _fail(self, key: str, wanted: str, value: object) -> ProtocolError:
        shown = repr(value)[:40] if isinstance(value, (str, int, float, bool)) else _type_name(value)
        return ProtocolError("bad_request", f"{self.where}.{key} must be {wanted}, got {shown}")

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def str(self, key: str, default: object = MISSING, max_len: int = 4096, choices: tuple = ()) -> str | None:
        value = self._get(key, default)
        if value is default and default is not MISSING:
            return value
        if not isinstance(value, str) or not 0 < len(value) <= max_len:
            raise self._fail(key, f"a string of 1 to {max_len} characters", value)
        if "\x00" in value:
            raise self._fail(key, "a string without NUL characters", value)
        if choices and value not in choices:
            raise self._fail(key, f"one of {', '.join(choices)}", value)
        return value

    def int(self, key: str, default: object = MISSING, lo: int = -(2**31), hi: int = 2**31 - 1) -> int | None:
        value = self._get(key, default)
        if value is default and default is not MISSING:
            return value
        if type(value) is not int or not lo <= value <= hi:
            raise self._fail(key, f"an integer in {lo}..{hi}", value)
        return value

    def float(self, key: str, default: object = MISSING, lo: float = -math.inf, hi: float = math.inf) -> float | None:
        value = self._get(key, default)
        if value is default and default is not MISSING:
            return value
        if type(value) not in (int, float) or not math.isfinite(value) or not lo <= value <= hi:
            raise self._fail(key, f"a finite number in {lo}..{hi}", value)
        return float(value)

    def bool(self, key: str, default: object = MISSING) -> bool:
        value = self._get(key, default)
        if type(value) is not bool:
            raise self._fail(key, "true or false", value)
        return value

    def map(self, key: str, default: object = MISSING) -> Fields | None:
        value = self._get(key, default)
        if value is default and default is not MISSING:
            return value
        return Fields(value, f"{self.where}.{key}")

    def items(self, key: str, max_items: int, default: object = MISSING, min_items: int = 1) -> list[tuple]:
        """``[(item, where)]`` of a list field with ``min_items..max_items`` entries."""
        value = self._get(key, default)
        if value is default and default is not MISSING:
            return value
        if not isinstance(value, list) or not min_items <= len(value) <= max_items:
            raise self._fail(key, f"a list of {min_items} to {max_items} items", value)
        return [(item, f"{self.where}.{key}[{i}]") for i, item in enumerate(value)]

    def strings(self, key: str, max_items: int, default: object = MISSING, max_len: int = 256) -> list[str] | None:
        pairs = self.items(key, max_items, default)
        if pairs is default and default is not MISSING:
            return pairs
        out = []
        for item, where in pairs:
            if not isinstance(item, str) or not 0 < len(item) <= max_len or "\x00" in item:
                raise ProtocolError("bad_request", f"{where} must be a string of 1 to {max_len} characters")
            out.append(item)
        return out

    def keys(self) -> Iterator[str]:
        return iter(self.data)

    def done(self) -> None:
        """Refuse keys that no accessor asked for (typos, options of a newer protocol minor)."""
        unknown = sorted(str(k) for k in self.data if k not in self.seen)
        if unknown:
            raise ProtocolError("bad_request", f"unknown field(s) in {self.where}: {', '.join(unknown)[:200]}")
