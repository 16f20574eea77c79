"""Property-based fuzzing of the live daemon: 2,000+ malformed messages, each answered with an error, and the
daemon still answers ``hello`` afterwards without its memory growing."""

from __future__ import annotations

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rawclient import RawClient

OPS = ["hello", "learn", "segment", "jobs", "watch", "unwatch", "cancel", "result", "models"]  # not shutdown/unload
ARG_NAMES = ["frames", "masks", "parts", "name", "settings", "model", "model_path", "sequence", "output", "job",
             "priority", "watch", "blob", "path", "action", "start", "count", "states", "limit", "cryptomatte"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(allow_nan=True),
                    st.text(max_size=20), st.binary(max_size=20))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)
args = st.dictionaries(st.sampled_from(ARG_NAMES), values, max_size=5)
header_maps = st.fixed_dictionaries(
    {}, optional={"v": st.one_of(st.just(1), values), "id": st.one_of(st.text(min_size=1, max_size=8), values),
                  "op": st.one_of(st.sampled_from(OPS), values), "args": st.one_of(args, values)})


def _packed(value) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


headers = st.one_of(
    st.binary(max_size=64),  # random bytes
    values.map(_packed),  # any msgpack value
    header_maps.map(_packed),  # a header with wrong or missing fields
    header_maps.map(_packed).flatmap(lambda b: st.integers(0, max(len(b) - 1, 0)).map(lambda n: b[:n])),  # cut
    st.tuples(st.sampled_from(OPS), args).map(lambda t: _packed({"v": 1, "id": "f", "op": t[0], "args": t[1]})),
)
messages = st.tuples(headers, st.lists(st.binary(max_size=32), max_size=3))


def _guarded(header: bytes) -> bytes:
    """Never send a valid shutdown/unload (the fuzzed daemon is shared)."""
    try:
        decoded = msgpack.unpackb(header, raw=False, strict_map_key=False)
    except Exception:
        return header
    if isinstance(decoded, dict) and decoded.get("op") in ("shutdown", "unload"):
        return _packed({**decoded, "op": "hello"})
    return header


def test_two_thousand_malformed_messages_are_all_answered(daemon, capsys):
    stats = {"sent": 0, "errors": 0, "rss": []}
    with RawClient(daemon.address) as raw:

        @settings(max_examples=2000, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(messages)
        def one(message):
            header, blobs = message
            reply, _ = raw.exchange([_guarded(header), *blobs]), None
            assert reply["v"] == 1 and reply["type"] in ("reply", "error")
            if reply["type"] == "error":
                assert isinstance(reply["error"]["code"], str) and reply["error"]["message"]
                stats["errors"] += 1
            stats["sent"] += 1
            if stats["sent"] in (300, 2000):
                stats["rss"].append(daemon.rss_kb())

        one()
        assert raw.request("hello", {})["type"] == "reply"
    assert stats["sent"] >= 2000
    assert stats["errors"] > 0.9 * stats["sent"]
    grown_kb = stats["rss"][-1] - stats["rss"][0]
    with capsys.disabled():
        print(f"\nfuzz: {stats['sent']} messages, {stats['errors']} errors, "
              f"daemon RSS {stats['rss'][0]} -> {stats['rss'][-1]} KiB")
    assert grown_kb < 64 * 1024
