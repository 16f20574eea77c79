"""Protocol decoding, field checking and request schemas, in-process (no daemon)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import msgpack
import pytest
from smite_server import requests as rq
from smite_server.fields import Fields
from smite_server.protocol import Limits, ProtocolError, check_sizes, pack, parse_request, unpack_header

LIMITS = Limits(max_message_bytes=1000, max_header_bytes=200, max_blobs=2, max_array_len=10, max_map_len=10)
OPS = ("hello", "learn")


def _code(func, *args) -> str:
    with pytest.raises(ProtocolError) as err:
        func(*args)
    assert err.value.message and "\n" not in err.value.message
    return err.value.code


def test_unpack_header_limits_and_refusals():
    assert unpack_header(pack({"v": 1, "id": "a"}), LIMITS) == {"v": 1, "id": "a"}
    assert _code(unpack_header, b"\x92\x01", LIMITS) == "bad_message"  # truncated array
    assert _code(unpack_header, pack({"a": 1}) + b"\x00", LIMITS) == "bad_message"  # trailing bytes
    assert _code(unpack_header, pack(list(range(11))), LIMITS) == "bad_message"  # array too long
    assert _code(unpack_header, pack({str(i): i for i in range(11)}), LIMITS) == "bad_message"
    assert _code(unpack_header, pack("x" * 300), LIMITS) == "too_large"
    assert _code(unpack_header, msgpack.packb(msgpack.ExtType(1, b"x")), LIMITS) == "bad_message"
    assert _code(unpack_header, msgpack.packb({"t": msgpack.Timestamp(1)}), LIMITS) == "bad_message"
    assert _code(unpack_header, msgpack.packb(b"raw", use_bin_type=True), LIMITS) == "bad_message"
    assert _code(unpack_header, b"\xa2\xff\xfe", LIMITS) == "bad_message"  # invalid UTF-8
    assert _code(unpack_header, b"\x91" * 2000 + b"\xc0", Limits(max_header_bytes=4096)) == "bad_message"  # nesting


def test_check_sizes():
    check_sizes([b"h", b"1", b"2"], LIMITS)
    assert _code(check_sizes, [], LIMITS) == "bad_message"
    assert _code(check_sizes, [b"h", b"1", b"2", b"3"], LIMITS) == "too_large"
    assert _code(check_sizes, [b"h", b"x" * 1000], LIMITS) == "too_large"


def test_parse_request():
    req = parse_request({"v": 1, "id": "r", "op": "hello"}, [], OPS)
    assert (req.id, req.op, req.args) == ("r", "hello", {})
    assert _code(parse_request, {"v": 1, "id": "r", "op": "nope"}, [], OPS) == "unknown_op"
    assert _code(parse_request, {"v": 3, "id": "r", "op": "hello"}, [], OPS) == "unsupported_version"
    assert _code(parse_request, {"v": 1, "id": "r", "op": "hello", "x": 1}, [], OPS) == "bad_request"


def test_fields_type_checks_and_unknown_keys():
    f = Fields({"n": 3, "s": "x", "b": True, "f": 1, "l": ["a"], "extra": 1}, "args")
    assert f.int("n", lo=0, hi=5) == 3 and f.str("s") == "x" and f.bool("b") is True and f.float("f") == 1.0
    assert f.strings("l", 2) == ["a"] and f.int("missing", default=7) == 7
    with pytest.raises(ProtocolError, match="args: extra"):
        f.done()
    assert _code(Fields({"n": True}, "a").int, "n") == "bad_request"  # bool is not an int
    assert _code(Fields({"n": 9}, "a").int, "n", 0, 0, 5) == "bad_request"
    assert _code(Fields({"s": "a\x00b"}, "a").str, "s") == "bad_request"
    assert _code(Fields({"x": float("inf")}, "a").float, "x") == "bad_request"
    assert _code(Fields({}, "a").str, "s") == "bad_request"
    assert _code(Fields, [1], "a") == "bad_request"


def test_learn_and_segment_schemas():
    req = rq.parse_learn({"frames": [{"blob": 0, "name": "a.exr"}], "masks": [{"mattes": {"hat": {"path": "/m"}}}],
                          "parts": ["hat"], "name": "m1", "settings": {"steps": 5}, "priority": 3}, 1)
    assert req.frames[0].blob == 0 and req.masks[0].mattes["hat"].path == "/m"
    assert req.settings == {"steps": 5} and req.submit.priority == 3 and req.submit.watch is True
    seg = rq.parse_segment({"model": "m1", "sequence": {"pattern": "/p.####.exr", "frames": "1-3"}}, 0)
    assert seg.sequence == ("/p.####.exr", "1-3") and seg.output is None and seg.ranks == 6
    assert _code(rq.parse_segment, {"model": "m", "frames": [{"path": "/a"}], "ranks": 3}, 0) == "bad_request"
    assert _code(rq.parse_segment, {"model": "m", "model_path": "/x", "frames": [{"path": "/a"}]}, 0) == "bad_request"
    assert _code(rq.parse_segment, {"model": "m"}, 0) == "bad_request"
    assert _code(rq.parse_learn, {"frames": [{"blob": 0, "name": "a.txt"}], "masks": [{"path": "/m"}],
                                  "parts": ["a"], "name": "m"}, 1) == "bad_request"
    assert _code(rq.parse_models, {"action": "delete"}) == "bad_request"
    assert _code(rq.parse_jobs, {"states": ["zombie"]}) == "bad_request"


def test_the_client_imports_nothing_heavy():
    source = Path(__file__).resolve().parents[2] / "smite" / "client.py"
    imported = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported - set(sys.stdlib_module_names) - {"__future__"} == {"zmq", "msgpack"}
    code = ("import sys, smite.client; bad = [m for m in ('torch', 'OpenImageIO', 'numpy', 'cv2', 'diffusers') "
            "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
