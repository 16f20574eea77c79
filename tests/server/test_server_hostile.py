"""Hostile input against a real daemon: every bad message gets an error reply and the daemon keeps serving."""

from __future__ import annotations

import os
import random

import msgpack
import numpy as np
import pytest
from rawclient import RawClient
from server_helpers import inline

from smite.client import DaemonError, Inline


@pytest.fixture()
def raw(daemon):
    with RawClient(daemon.address) as client:
        yield client


def _error(reply: dict) -> str:
    assert reply["type"] == "error", reply
    assert isinstance(reply["error"]["message"], str) and reply["error"]["message"]
    return reply["error"]["code"]


@pytest.mark.parametrize("frame", [b"", b"\xc1", random.Random(64).randbytes(64), b"\x81\xa1", msgpack.packb([1, 2, 3]),
                                   msgpack.packb("hello"), msgpack.packb({"v": 1}) + b"x"])
def test_undecodable_or_non_map_headers(raw, frame):
    reply = raw.exchange([frame])
    assert _error(reply) in ("bad_message", "bad_request")
    assert reply["v"] == 1 and "id" in reply


def test_extension_types_and_binary_and_integer_keys_are_refused(raw):
    ext = msgpack.packb({"v": 1, "id": "e", "op": "hello", "args": msgpack.ExtType(5, b"boom")})
    assert _error(raw.exchange([ext])) == "bad_message"
    binary = msgpack.packb({"v": 1, "id": "b", "op": "hello", "args": {"x": b"\x00" * 10}}, use_bin_type=True)
    assert _error(raw.exchange([binary])) == "bad_message"
    int_keys = msgpack.packb({1: 2, "id": "k"}, strict_types=False)
    assert _error(raw.exchange([int_keys])) == "bad_message"


@pytest.mark.parametrize("field,value,code", [
    ("v", "1", "bad_request"), ("v", 1.0, "bad_request"), ("v", True, "bad_request"), ("v", None, "bad_request"),
    ("v", [1], "bad_request"), ("v", 2, "unsupported_version"), ("v", -1, "unsupported_version"),
    ("id", 7, "bad_request"), ("id", "", "bad_request"), ("id", "x" * 129, "bad_request"), ("id", None, "bad_request"),
    ("id", {"a": 1}, "bad_request"), ("op", 3, "bad_request"), ("op", None, "bad_request"),
    ("op", ["hello"], "bad_request"), ("op", "rm -rf", "unknown_op"), ("op", "HELLO", "unknown_op"),
    ("args", [], "bad_request"), ("args", "x", "bad_request"), ("args", 5, "bad_request"),
])
def test_wrong_types_in_every_header_field(raw, field, value, code):
    header = {"v": 1, "id": "r1", "op": "hello", "args": {}} | {field: value}
    reply = raw.exchange([msgpack.packb(header, use_bin_type=True)])
    assert _error(reply) == code
    assert reply["id"] == (header["id"] if isinstance(header["id"], str) and 0 < len(header["id"]) <= 128 else None)


def test_unknown_header_fields_and_unknown_args_are_named(raw):
    assert _error(raw.request("hello", {}, extra_field=1)) == "bad_request"
    reply = raw.request("hello", {"verbose": True})
    assert _error(reply) == "bad_request" and "verbose" in reply["error"]["message"]


@pytest.mark.parametrize("args,needle", [
    ({"frames": "x", "masks": [], "parts": ["a"], "name": "m"}, "args.frames"),
    ({"frames": [{"blob": 3, "name": "a.png"}], "masks": [{"path": "/x.png"}], "parts": ["a"], "name": "m"}, "blob"),
    ({"frames": [{"path": 5}], "masks": [{"path": "/x"}], "parts": ["a"], "name": "m"}, "args.frames[0].path"),
    ({"frames": [{"path": "/a", "blob": 0}], "masks": [{"path": "/x"}], "parts": ["a"], "name": "m"}, "exactly one"),
    ({"frames": [{"path": "/a"}], "masks": [{"path": "/x"}], "parts": [1], "name": "m"}, "args.parts[0]"),
    ({"frames": [{"path": "/a"}], "masks": [{"path": "/x"}], "parts": ["a"], "name": "../evil"}, "args.name"),
    ({"frames": [{"path": "/a"}], "masks": [{"path": "/x"}], "parts": ["a"], "name": "m", "priority": 1.5},
     "args.priority"),
    ({"frames": [{"path": "/a"}], "masks": [{"path": "/x"}], "parts": ["a"], "name": "m",
      "settings": {"steps": -1}}, "args.settings.steps"),
    ({"frames": [{"path": "/a"}], "masks": [{"path": "/x"}], "parts": ["a"], "name": "m",
      "settings": {"lr_kv": float("nan")}}, "args.settings.lr_kv"),
    ({"frames": [{"path": "/a"}], "masks": [], "parts": ["a"], "name": "m"}, "args.masks"),
])
def test_wrong_learn_arguments(raw, args, needle):
    reply = raw.request("learn", args)
    assert _error(reply) == "bad_request"
    assert needle in reply["error"]["message"]


def test_a_blob_reference_beyond_the_frames_sent_is_a_truncated_message(raw):
    args = {"model": "hero", "frames": [{"blob": 0, "name": "a.exr"}, {"blob": 1, "name": "b.exr"}]}
    reply = raw.request("segment", args, blobs=[b"only one"])
    assert _error(reply) == "bad_request" and "1 blobs" in reply["error"]["message"]


def test_oversize_messages_and_too_many_blobs(raw, daemon):
    four_mib = b"\x00" * (4 * 1024 * 1024)
    reply = raw.request("hello", {}, blobs=[four_mib, four_mib, four_mib])  # 12 MiB > 8 MiB, frames < 8 MiB
    assert _error(reply) == "too_large"
    assert _error(raw.request("hello", {}, blobs=[b"x"] * 1025)) == "too_large"
    big_header = msgpack.packb({"v": 1, "id": "h", "op": "hello", "args": {"pad": "x" * (2 * 1024 * 1024)}})
    assert _error(raw.exchange([big_header])) == "too_large"
    # One frame over the socket's MAXMSGSIZE: libzmq drops that connection without a reply...
    with RawClient(daemon.address) as doomed:
        doomed.send([msgpack.packb({"v": 1, "id": "x", "op": "hello"}), b"\x00" * (9 * 1024 * 1024)])
    # ...and the daemon goes on serving everyone else.
    assert raw.request("hello", {})["type"] == "reply"


@pytest.fixture()
def outside(tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"not for you")
    return secret


def test_paths_outside_the_roots_are_forbidden(raw, daemon, shot, outside):
    root = daemon.root
    link = root / "link_out"
    if not link.exists():
        link.symlink_to(outside.parent, target_is_directory=True)
    bad_paths = [str(outside), f"{root}/../{outside.parent.name}/secret.png", str(link / "secret.png"), "/etc/passwd"]
    for path in bad_paths:
        reply = raw.request("learn", {"frames": [{"path": path}], "masks": [{"path": str(shot["mask_files"][0])}],
                                      "parts": shot["part_names"], "name": "evil"})
        assert _error(reply) == "forbidden", path
    relative = raw.request("segment", {"model": "hero", "frames": [{"path": "shot/plate.0001.png"}]})
    assert _error(relative) == "bad_request"
    for output in (str(outside.parent / "m.####.exr"), str(link / "m.####.exr"), f"{root}/../m.####.exr"):
        reply = raw.request("segment", {"model": "hero", "frames": [{"path": str(shot["plate_files"][0])}],
                                        "output": output})
        assert _error(reply) in ("forbidden", "not_found"), output
    model_path = raw.request("segment", {"model_path": str(outside), "frames": [{"path": str(shot["plate_files"][0])}]})
    assert _error(model_path) == "forbidden"


def test_outputs_may_not_overwrite_inputs_or_collide(raw, daemon, shot):
    plate = str(shot["plate_files"][0])
    reply = raw.request("segment", {"model": "hero", "frames": [{"path": plate, "frame": 1}],
                                    "output": str(daemon.root / "shot" / "plate.####.png")})
    assert _error(reply) == "bad_request" and "overwrite" in reply["error"]["message"]
    two = [{"path": plate, "frame": 1}, {"path": plate, "frame": 2}]
    reply = raw.request("segment", {"model": "hero", "frames": two, "output": str(daemon.root / "out" / "one.exr")})
    assert _error(reply) == "bad_request" and "placeholder" in reply["error"]["message"]
    same_number = [{"path": plate, "frame": 1}, {"path": plate, "frame": 1}]
    reply = raw.request("segment", {"model": "hero", "frames": same_number,
                                    "output": str(daemon.root / "out" / "m.####.exr")})
    assert _error(reply) == "bad_request"


def _job_error(daemon, submit) -> str:
    """The error code of a job: refused at submission or failed in the worker."""
    with daemon.client() as client:
        try:
            job = submit(client)
            client.wait(job, timeout=600)
        except DaemonError as exc:
            return exc.code
    raise AssertionError("the job succeeded")


def test_corrupt_exr_bytes_fail_the_job_not_the_daemon(learned, daemon, shot):
    good = shot["plate_files"][0].read_bytes()
    for data in (b"\x76\x2f\x31\x01" + os.urandom(500), good[: len(good) // 2], b""):
        code = _job_error(daemon, lambda c, d=data: c.segment("hero", [Inline("plate.exr", d)]))
        assert code == "bad_input"
    assert _job_error(daemon, lambda c: c.segment("hero", [Inline("plate.png", good[:100])])) == "bad_input"
    with daemon.client() as client:
        assert client.hello()["protocol_major"] == 1


def test_nan_pixels_fail_the_job_with_a_clear_message(learned, daemon, tmp_path):
    from smite.io.images import write_image

    plate = np.full((32, 32, 3), 0.5, np.float32)
    plate[3, 4] = np.nan
    write_image(tmp_path / "nan.exr", plate)
    with daemon.client() as client:
        job = client.segment("hero", [inline(tmp_path / "nan.exr")])
        with pytest.raises(DaemonError) as err:
            client.wait(job, timeout=600)
    assert err.value.code == "bad_input" and "NaN" in err.value.message


def test_a_part_model_of_another_backbone_is_refused(learned, daemon, shot):
    from smite.model.partmodel import PartModel

    model = PartModel.load(daemon.store / "hero.smite")
    model.base_fingerprint = "0123456789abcdef"
    model.save(daemon.store / "foreign.smite")
    code = _job_error(daemon, lambda c: c.segment("foreign", [str(shot["plate_files"][0])]))
    assert code == "backbone_mismatch"
    not_a_model = daemon.store / "junk.smite"
    not_a_model.write_bytes(os.urandom(300))
    assert _job_error(daemon, lambda c: c.segment("junk", [str(shot["plate_files"][0])])) == "bad_input"
    with daemon.client() as client:
        listing = {m["name"]: m for m in client.models()["models"]}
        assert "error" in listing["junk"] and listing["hero"]["part_names"]
        client.models("delete", "junk")
        client.models("delete", "foreign")
        with pytest.raises(DaemonError) as err:
            client.models("describe", "junk")
        assert err.value.code == "not_found"


def test_unknown_jobs_and_models_are_not_found(daemon):
    with daemon.client() as client:
        for call in (lambda: client.cancel("nope"), lambda: client.result("nope"), lambda: client.watch("nope"),
                     lambda: client.models("delete", "nope")):
            with pytest.raises(DaemonError) as err:
                call()
            assert err.value.code == "not_found"
