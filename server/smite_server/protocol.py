"""The SMITE wire protocol, version 1 (docs/protocol.md): multipart framing, msgpack headers with limits.

A message is ``[header, blob0, blob1, ...]``: the header a msgpack map, the blobs raw bytes (pixels, EXR
files) referenced from the header as ``{"blob": i}``. On the daemon's ROUTER socket the peer's routing id
comes first. Decoding never trusts its input: size and count limits first, then msgpack with hard limits
and no extension types, then a check of every header field. Every failure is a :class:`ProtocolError`
carrying the error code and one-line message that the daemon sends back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import msgpack

PROTOCOL_MAJOR = 1
PROTOCOL_MINOR = 1  # 1.1: image limits, disk_full/io_error, idempotency per client, written outputs
PROTOCOL_VERSION = f"{PROTOCOL_MAJOR}.{PROTOCOL_MINOR}"

MAX_ID_LENGTH = 128
REQUEST_KEYS = frozenset({"v", "id", "op", "args"})
MESSAGE_TYPES = ("reply", "error", "event")


class ProtocolError(Exception):
    """A request the daemon refuses: ``code`` (docs/protocol.md, error codes) and a one-line message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = " ".join(str(message).split())


@dataclass(frozen=True)
class Limits:
    """Size limits of one inbound message; the daemon reports them in ``hello``."""

    max_message_bytes: int = 256 * 1024 * 1024  # header + all blobs
    max_header_bytes: int = 1024 * 1024
    max_blobs: int = 1024
    max_array_len: int = 100_000
    max_map_len: int = 10_000

    def as_dict(self) -> dict:
        return {
            "max_message_bytes": self.max_message_bytes,
            "max_header_bytes": self.max_header_bytes,
            "max_blobs": self.max_blobs,
        }


@dataclass
class Request:
    """A decoded request: request id, operation name, its ``args`` map and the blobs (bytes-like)."""

    id: str
    op: str
    args: dict
    blobs: list = field(default_factory=list)


def _refuse_ext(code: int, data: bytes) -> None:
    raise ProtocolError("bad_message", f"msgpack extension type {code} is not allowed in headers")


def unpack_header(data: bytes | memoryview, limits: Limits) -> object:
    """Decode one msgpack object from ``data`` with hard limits; no ext types, str keys, no trailing bytes."""
    if len(data) > limits.max_header_bytes:
        raise ProtocolError("too_large", f"header is {len(data)} bytes; the limit is {limits.max_header_bytes}")
    unpacker = msgpack.Unpacker(
        None, raw=False, strict_map_key=True, use_list=True, ext_hook=_refuse_ext,
        max_buffer_size=max(limits.max_header_bytes, 1), max_str_len=limits.max_header_bytes,
        max_bin_len=0, max_ext_len=0, max_array_len=limits.max_array_len, max_map_len=limits.max_map_len,
    )
    try:
        unpacker.feed(data)
        value = unpacker.unpack()
    except ProtocolError:
        raise
    except msgpack.OutOfData:
        raise ProtocolError("bad_message", "header is truncated msgpack") from None
    except Exception as exc:  # msgpack raises ValueError, TypeError, ExtraData, StackError, UnicodeDecodeError
        raise ProtocolError("bad_message", f"header is not valid msgpack ({type(exc).__name__}: {exc})") from None
    if unpacker.tell() != len(data):
        raise ProtocolError("bad_message", "header has bytes after its msgpack object")
    return value


def pack(value: object) -> bytes:
    """Encode a header; only plain types (dict, list, str, int, float, bool, None) are allowed."""
    return msgpack.packb(value, use_bin_type=True, strict_types=False)


def check_sizes(frames: Sequence, limits: Limits) -> None:
    """Refuse a message with no header, too many blobs or too many bytes (before any decoding)."""
    if not frames:
        raise ProtocolError("bad_message", "empty message: a header frame is required")
    if len(frames) - 1 > limits.max_blobs:
        raise ProtocolError("too_large", f"{len(frames) - 1} blobs; the limit is {limits.max_blobs}")
    total = sum(len(f) for f in frames)
    if total > limits.max_message_bytes:
        raise ProtocolError("too_large", f"message is {total} bytes; the limit is {limits.max_message_bytes}")


def peek_id(header: object) -> str | None:
    """The request id of a decoded header if it is a valid one (so errors can name the request)."""
    if isinstance(header, dict):
        rid = header.get("id")
        if isinstance(rid, str) and 0 < len(rid) <= MAX_ID_LENGTH:
            return rid
    return None


def parse_request(header: object, blobs: list, operations: Sequence[str]) -> Request:
    """Check the header fields ``v``, ``id``, ``op``, ``args`` of a decoded header."""
    if not isinstance(header, dict):
        raise ProtocolError("bad_message", f"header must be a msgpack map, got {type(header).__name__}")
    unknown = sorted(set(header) - REQUEST_KEYS)
    if unknown:
        raise ProtocolError("bad_request", f"unknown header field(s) {', '.join(unknown)}; use v, id, op, args")
    version = header.get("v")
    if type(version) is not int:
        raise ProtocolError("bad_request", f"header field v must be an integer protocol version, got {version!r}")
    if version != PROTOCOL_MAJOR:
        raise ProtocolError(
            "unsupported_version",
            f"protocol version {version} is not supported; this daemon speaks {PROTOCOL_MAJOR} ({PROTOCOL_VERSION})",
        )
    rid = header.get("id")
    if not isinstance(rid, str) or not 0 < len(rid) <= MAX_ID_LENGTH:
        raise ProtocolError("bad_request", f"header field id must be a string of 1 to {MAX_ID_LENGTH} characters")
    op = header.get("op")
    if not isinstance(op, str):
        raise ProtocolError("bad_request", f"header field op must be a string, got {type(op).__name__}")
    if op not in operations:
        raise ProtocolError("unknown_op", f"unknown operation {op[:64]!r}; known: {', '.join(operations)}")
    args = header.get("args", {})
    if not isinstance(args, dict):
        raise ProtocolError("bad_request", f"header field args must be a map, got {type(args).__name__}")
    return Request(rid, op, args, blobs)


def reply_header(request_id: str, op: str, body: dict) -> dict:
    """Header of a successful reply to request ``request_id``."""
    return {"v": PROTOCOL_MAJOR, "id": request_id, "type": "reply", "op": op, "body": body}


def error_header(request_id: str | None, op: str | None, code: str, message: str) -> dict:
    """Header of an error reply (``request_id`` None when the request had no readable id)."""
    return {"v": PROTOCOL_MAJOR, "id": request_id, "type": "error", "op": op,
            "error": {"code": code, "message": message}}


def event_header(request_id: str, op: str, job: str, seq: int, event: str, body: dict) -> dict:
    """Header of event number ``seq`` of ``job``, sent to the subscription made by request ``request_id``."""
    return {"v": PROTOCOL_MAJOR, "id": request_id, "type": "event", "op": op, "job": job, "seq": seq,
            "event": event, "body": body}
