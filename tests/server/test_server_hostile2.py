"""Hostile input, second round (issue 9, daemon items 10-18) against real daemons on loopback: crafted part
models, symlinks swapped in after submission, the daemon's own folders inside a root, image bombs, floods of
huge frame ranges, reused request ids, racing model names, malformed stores, kills during writes."""

from __future__ import annotations

import errno
import json
import os
import shutil
import struct
import threading
import time
import zlib
from pathlib import Path

import msgpack
import numpy as np
import pytest
from rawclient import RawClient
from safetensors import safe_open
from safetensors.numpy import save_file
from server_helpers import TINY_LEARN, DaemonProcess

from smite.client import DaemonError, Inline
from smite.io.images import read_mattes_exr

TINY_UNET = Path(__file__).parents[2] / "smite" / "model" / "assets" / "tiny-sd" / "unet"


def _tensors_and_header(path: Path) -> tuple[dict, dict]:
    with safe_open(str(path), "np") as fh:
        return {k: fh.get_tensor(k) for k in fh.keys()}, json.loads(fh.metadata()["smite"])


def _craft(store: Path, name: str, hero: Path, tensors: dict | None = None, header: dict | str | None = None) -> Path:
    """A .smite file in the store: hero's tensors and header, with some replaced."""
    base_tensors, base_header = _tensors_and_header(hero)
    header = base_header if header is None else header
    path = store / f"{name}.smite"
    text = header if isinstance(header, str) else json.dumps(header)
    save_file(base_tensors if tensors is None else tensors, str(path), metadata={"smite": text})
    return path


def _error_of(client, job: str) -> DaemonError:
    with pytest.raises(DaemonError) as err:
        client.wait(job, timeout=600)
    return err.value


def _inline_mattes(client, model: str, plate: Path, tmp: Path):
    """Segment one plate inline; the matte file read back."""
    job = client.segment(model, [Inline(plate.name, plate.read_bytes())])
    blobs = [e.blobs[0] for e in client.events(job, timeout=600) if e.event == "output"]
    assert len(blobs) == 1, f"job {job} gave {len(blobs)} outputs"
    tmp.write_bytes(blobs[0])
    return read_mattes_exr(tmp)


# -- 10. a part model may only change what it owns ------------------------------------------------------------


def test_a_crafted_part_model_cannot_touch_other_backbone_weights(learned, daemon, shot, tmp_path):
    hero, plate = daemon.store / "hero.smite", shot["plate_files"][1]
    with safe_open(str(TINY_UNET / "diffusion_pytorch_model.safetensors"), "np") as fh:
        conv_in = fh.get_tensor("conv_in.weight")
    tensors, _ = _tensors_and_header(hero)
    kv_name = next(k for k in tensors if k.startswith("kv/"))
    crafted = {
        "conv": tensors | {"kv/conv_in.weight": np.random.default_rng(0).normal(size=conv_in.shape).astype(np.float32)},
        "shape": tensors | {kv_name: np.zeros((3, 5), np.float32)},
        "nan": tensors | {kv_name: np.full(tensors[kv_name].shape, np.nan, np.float32)},
    }
    with daemon.client() as client:
        clean = _inline_mattes(client, "hero", plate, tmp_path / "clean.exr")
        try:
            for name, values in crafted.items():
                _craft(daemon.store, f"crafted_{name}", hero, tensors=values)
                error = _error_of(client, client.segment(f"crafted_{name}", [Inline(plate.name, plate.read_bytes())]))
                assert error.code == "bad_input", (name, error)
                assert f"crafted_{name}.smite" in error.message, error.message
            assert "conv_in" in _error_of(client, client.segment("crafted_conv", [str(plate)])).message
            after = _inline_mattes(client, "hero", plate, tmp_path / "after.exr")
        finally:
            for name in crafted:
                (daemon.store / f"crafted_{name}.smite").unlink(missing_ok=True)
    assert np.array_equal(clean.alphas, after.alphas) and np.array_equal(clean.labels, after.labels)


# -- 11. path confinement when files are opened, not only at submission ----------------------------------------


def test_folders_swapped_for_symlinks_after_submission_are_not_followed(learned, daemon, shot, tmp_path):
    outside = tmp_path / "outside"
    (outside / "in").mkdir(parents=True)
    (outside / "out").mkdir()
    (outside / "save").mkdir()
    shutil.copy(shot["plate_files"][0], outside / "in" / "plate.png")
    base = daemon.root / "swap"
    for sub in ("in", "out", "save"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy(shot["plate_files"][0], base / "in" / "plate.png")
    shutil.copy(shot["mask_files"][0], base / "in" / "mask.png")
    with daemon.client() as client:
        # A long learn job keeps the worker busy while the jobs under test wait in the queue.
        blocker = client.learn([str(shot["plate_files"][0])], [str(shot["mask_files"][0])], shot["part_names"],
                               name="blocker", settings={"steps": 5000, "token_steps": 10, "eval_every": 5000},
                               priority=100)
        for event in client.events(blocker, timeout=600):
            if event.event == "state":
                break
        reads = client.segment("hero", [(1, str(base / "in" / "plate.png"))])
        writes = client.segment("hero", [(1, str(shot["plate_files"][0]))], output=str(base / "out" / "m.####.exr"))
        saves = client.learn([str(shot["plate_files"][0])], [str(shot["mask_files"][0])], shot["part_names"],
                             name="swapped", save_to=str(base / "save" / "s.smite"), settings=TINY_LEARN)
        for sub in ("in", "out", "save"):  # the swap: each folder becomes a link to a folder outside the root
            (base / sub).rename(base / f"{sub}.orig")
            (base / sub).symlink_to(outside / sub, target_is_directory=True)
        client.cancel(blocker)
        errors = {name: _error_of(client, job) for name, job in
                  (("reads", reads), ("writes", writes), ("saves", saves))}
        assert "swapped" not in [m["name"] for m in client.models()["models"]]
    assert {name: e.code for name, e in errors.items()} == {"reads": "forbidden", "writes": "forbidden",
                                                             "saves": "forbidden"}, errors
    assert not list((outside / "out").iterdir()) and not list((outside / "save").iterdir())


# -- 12. the daemon's own folders are not usable by path -------------------------------------------------------


@pytest.fixture(scope="module")
def own(tmp_path_factory, daemon):
    """A dedicated daemon whose single root contains its model store and state folder."""
    proc = DaemonProcess(tmp_path_factory.mktemp("own"), own_folders_in_root=True).start()
    yield proc
    proc.stop()


def test_paths_into_the_store_or_state_are_forbidden_even_inside_a_root(own, learned, daemon, shot):
    shutil.copy(daemon.store / "hero.smite", own.store / "hero.smite")
    plate = own.root / "plate.png"
    shutil.copy(shot["plate_files"][0], plate)
    with RawClient(own.address) as raw:
        attempts = {
            "save_to": raw.request("learn", {"frames": [{"path": str(plate)}], "masks": [{"path": str(plate)}],
                                             "parts": ["a"], "name": "x", "save_to": str(own.store / "hero.smite")}),
            "output": raw.request("segment", {"model": "hero", "frames": [{"path": str(plate)}],
                                              "output": str(own.state / "results" / "m.####.exr")}),
            "input": raw.request("segment", {"model": "hero", "frames": [{"path": str(own.store / "hero.smite")}]}),
            "model_path": raw.request("segment", {"model_path": str(own.store / "hero.smite"),
                                                  "frames": [{"path": str(plate)}]}),
        }
    for what, reply in attempts.items():
        assert reply["type"] == "error" and reply["error"]["code"] == "forbidden", (what, reply)
        assert "own folders" in reply["error"]["message"]


# -- 13. pixel limits before decoding --------------------------------------------------------------------------


def exr_bomb(path: Path) -> bytes:
    """A few-hundred-byte EXR: 1x1 data window in a 16384x16384 display window."""
    import OpenImageIO as oiio

    spec = oiio.ImageSpec(1, 1, 3, oiio.HALF)
    spec.full_width = spec.full_height = 16384
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec) and out.write_image(np.zeros((1, 1, 3), np.float32))
    out.close()
    return path.read_bytes()


def png_bomb(side: int = 20000) -> bytes:
    """A few-KB grey PNG declaring side x side pixels (a few rows of data, the rest missing)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = zlib.compress(b"\x00" * ((side + 1) * 4), 9)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", rows) + chunk(b"IEND", b""))


def test_image_bombs_are_refused_from_their_headers(learned, daemon, tmp_path):
    bombs = {"bomb.exr": exr_bomb(tmp_path / "bomb.exr"), "bomb.png": png_bomb()}
    assert all(len(data) < 10_000 for data in bombs.values())
    with daemon.client() as client:
        limits = client.hello()["limits"]
        assert limits["max_image_pixels"] >= 8192 * 4320 and limits["max_image_channels"] >= 4
        for name, data in bombs.items():
            error = _error_of(client, client.segment("hero", [Inline(name, data)]))
            assert error.code == "bad_input" and name in error.message and "limit" in error.message, error
            error = _error_of(client, client.learn([Inline(name, data)], [Inline(name, data)], ["a"], name="bomb"))
            assert error.code == "bad_input", error
        assert client.hello()["protocol_major"] == 1


def test_out_of_memory_on_a_cpu_daemon_does_not_mention_gpus():
    from smite_server.worker import _unexpected

    cpu = _unexpected(MemoryError(), "cpu")
    assert cpu["code"] == "out_of_memory" and "GPU" not in cpu["message"] and "RAM" in cpu["message"]
    gpu_oom = type("OutOfMemoryError", (RuntimeError,), {})()
    assert "GPU" in _unexpected(gpu_oom, "cuda:0")["message"]


# -- 14. nothing slow on the request loop -----------------------------------------------------------------------


def test_hello_is_answered_while_huge_requests_arrive(daemon, shot, capsys):
    plate = str(shot["plate_files"][0])
    # Thousands of paths to resolve, then refused (no such model): work for the preparation thread.
    many_paths = {"model": "nope", "frames": [{"path": plate, "frame": i} for i in range(8000)]}
    # The 101-byte flood: a million-frame range, refused before it is expanded.
    huge_range = {"model": "hero", "sequence": {"pattern": str(daemon.root / "flood" / "p.####.png"),
                                                "frames": "0-999999"}}
    floods = [many_paths] * 4 + [huge_range] * 10
    latencies, order = [], []
    with RawClient(daemon.address) as flood, RawClient(daemon.address) as probe:
        for i, args in enumerate(floods):
            flood.send([msgpack.packb({"v": 1, "id": f"flood-{i}", "op": "segment", "args": args})])

        def collect() -> None:
            for _ in floods:
                order.append(("flood", flood.recv()[0]))

        reader = threading.Thread(target=collect)
        reader.start()
        for i in range(30):
            started = time.perf_counter()
            reply = probe.request("hello", {}, rid=f"h{i}")
            latencies.append(time.perf_counter() - started)
            assert reply["type"] == "reply"
            order.append(("hello", reply))
        reader.join(timeout=600)
    replies = {h["id"]: h for kind, h in order if kind == "flood"}
    assert len(replies) == len(floods)
    assert all(replies[f"flood-{i}"]["error"]["code"] == "not_found" for i in range(4))
    for i in range(4, len(floods)):
        assert replies[f"flood-{i}"]["error"]["code"] == "bad_request"
        assert "at most 100000" in replies[f"flood-{i}"]["error"]["message"]
    # The loop answered a hello before it had finished checking the first flood: the work is done elsewhere.
    assert order.index(next(o for o in order if o[0] == "hello")) < order.index(next(o for o in order
                                                                                    if o[0] == "flood"))
    p50, p99 = np.percentile(latencies, [50, 99]) * 1000
    with capsys.disabled():
        print(f"\nhello under a flood: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(latencies) * 1e3:.1f} ms")


# -- 15. idempotent resubmission per client and request ---------------------------------------------------------


def test_a_reused_request_id_is_only_a_resend_for_the_same_client_and_arguments(learned, daemon, shot):
    plate = shot["plate_files"][0]
    args = {"model": "hero", "frames": [{"blob": 0, "name": "p.png"}], "watch": False}
    blobs = [plate.read_bytes()]
    with RawClient(daemon.address) as alice, RawClient(daemon.address) as mallory:
        first = alice.request("segment", args, rid="same-id", blobs=blobs)
        resent = alice.request("segment", args, rid="same-id", blobs=blobs)
        other_client = mallory.request("segment", args, rid="same-id", blobs=blobs)
        other_args = alice.request("segment", args | {"priority": 5}, rid="same-id", blobs=blobs)
        invalid = alice.request("segment", args | {"model": "../x"}, rid="same-id", blobs=blobs)
    jobs = [r["body"]["job"]["id"] for r in (first, resent, other_client, other_args)]
    assert jobs[0] == jobs[1]
    assert len({jobs[0], jobs[2], jobs[3]}) == 3
    assert invalid["type"] == "error" and invalid["error"]["code"] == "bad_request"
    with daemon.client() as client:
        for job in set(jobs):
            client.cancel(job)


# -- 16. model names are checked again when the model is stored -----------------------------------------------


def test_two_queued_learn_jobs_of_one_new_name_do_not_both_store(learned, daemon, shot):
    frames, masks = [str(shot["plate_files"][0])], [str(shot["mask_files"][0])]
    one_step = {"steps": 1, "token_steps": 1, "eval_every": 1}
    with daemon.client() as client:
        first = client.learn(frames, masks, shot["part_names"], name="twin", settings=one_step)
        second = client.learn(frames, masks, shot["part_names"], name="twin", settings=one_step | {"seed": 9})
        try:
            assert client.wait(first, timeout=600)["state"] == "done"
            error = _error_of(client, second)
            assert error.code == "exists" and "twin" in error.message
            assert client.models("describe", "twin")["model"]["metadata"]["seed"] != 9  # the first one stayed
        finally:
            client.models("delete", "twin")


# -- 17. store robustness -------------------------------------------------------------------------------------


def test_malformed_part_models_are_bad_input_naming_the_file_and_listed_with_their_error(learned, daemon, shot):
    hero = daemon.store / "hero.smite"
    tensors, header = _tensors_and_header(hero)
    kv_name = next(k for k in tensors if k.startswith("kv/"))
    bad = {
        "deep": ("[" * 200_000) + ("]" * 200_000),
        "extra_key": header | {"evil": 1},
        "string_version": header | {"format_version": "1"},
        "int_parts": header | {"part_names": ["background", 1, 2]},
    }
    bad_tensors = {
        "unknown_kv": tensors | {"kv/mid_block.attentions.0.proj_in.weight": np.zeros((4, 4), np.float32)},
        "wrong_shape": tensors | {kv_name: np.zeros((2, 2), np.float32)},
    }
    plate = str(shot["plate_files"][0])
    try:
        for name, value in bad.items():
            _craft(daemon.store, f"bad_{name}", hero, header=value)
        for name, value in bad_tensors.items():
            _craft(daemon.store, f"bad_{name}", hero, tensors=value)
        with daemon.client() as client:
            listing = {m["name"]: m for m in client.models()["models"]}
            for name in bad:
                assert f"bad_{name}.smite" in listing[f"bad_{name}"]["error"], listing[f"bad_{name}"]
                with pytest.raises(DaemonError) as err:
                    client.models("describe", f"bad_{name}")
                assert err.value.code == "bad_input" and f"bad_{name}.smite" in err.value.message
            assert "error" not in listing["hero"]
            for name in [*bad, *bad_tensors]:
                try:
                    error = _error_of(client, client.segment(f"bad_{name}", [plate]))
                except DaemonError as exc:  # refused at submission (header) rather than in the job
                    error = exc
                assert error.code == "bad_input" and f"bad_{name}.smite" in error.message, (name, error)
            long_name = str(daemon.root / ("x" * 300 + ".png"))
            for submit in (lambda: client.segment("hero", [long_name]),
                           lambda: client.segment("hero", [plate], output=str(daemon.root / ("y" * 300) / "m.exr")),
                           lambda: client.learn([long_name], [plate], ["a"], name="long")):
                with pytest.raises(DaemonError) as err:
                    client.wait(submit(), timeout=600)
                message = err.value.message
                assert err.value.code == "bad_input" and ("x" * 50 in message or "y" * 50 in message), err.value
    finally:
        for name in [*bad, *bad_tensors]:
            (daemon.store / f"bad_{name}.smite").unlink(missing_ok=True)


# -- 18. leftovers: crafted part names, output folders, full disks, kills ---------------------------------------


def test_crafted_part_names_become_safe_channel_names(learned, daemon, shot, tmp_path):
    hero = daemon.store / "hero.smite"
    _, header = _tensors_and_header(hero)
    assert len(header["part_names"]) == 3
    _craft(daemon.store, "names", hero, header=header | {"part_names": ["background", "a\nb", "../x"]})
    try:
        with daemon.client() as client:
            mattes = _inline_mattes(client, "names", shot["plate_files"][0], tmp_path / "m.exr")
    finally:
        (daemon.store / "names.smite").unlink()
    assert mattes.part_names == ["background", "a_b", "x"]


def test_an_output_ending_in_a_slash_is_an_error(learned, daemon, shot):
    with RawClient(daemon.address) as raw:
        for key, value in (("output", str(daemon.root / "outdir") + "/"),):
            reply = raw.request("segment", {"model": "hero", "frames": [{"path": str(shot["plate_files"][0])}],
                                            key: value})
            assert reply["type"] == "error" and reply["error"]["code"] == "bad_request", reply
        reply = raw.request("learn", {"frames": [{"path": str(shot["plate_files"][0])}],
                                      "masks": [{"path": str(shot["mask_files"][0])}], "parts": shot["part_names"],
                                      "name": "slash", "save_to": str(daemon.root) + "/"})
        assert reply["type"] == "error" and reply["error"]["code"] == "bad_request", reply


def test_a_full_disk_is_disk_full_not_bad_input(tmp_path):
    from smite_server.tasks import writing

    from smite.errors import SmiteError
    from smite.io.images import atomic_path

    def fill() -> None:
        with atomic_path(tmp_path / "m.exr"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(SmiteError) as err:
        writing(fill)
    assert err.value.code == "disk_full"
    with pytest.raises(SmiteError) as err:
        writing(lambda: (_ for _ in ()).throw(OSError(errno.EIO, "I/O error")))
    assert err.value.code == "io_error"
    assert not list(tmp_path.iterdir())


def test_a_killed_daemon_lists_written_frames_and_cleans_its_temp_files(own, learned, daemon, shot):
    shutil.copy(daemon.store / "hero.smite", own.store / "hero.smite")
    plates = own.root / "plates"
    plates.mkdir(exist_ok=True)
    for path in shot["plate_files"]:
        shutil.copy(path, plates / path.name)
    out = own.root / "kill" / "m.####.exr"
    frames = [(n, str(plates / shot["plate_files"][n % len(shot["plate_files"])].name)) for n in range(1, 41)]
    with own.client() as client:
        job = client.segment("hero", frames, output=str(out), settings={"window": 2, "overlap": 0})
        for event in client.events(job, timeout=600):
            if event.event == "output":
                break
    stale = out.parent / ".m.0001.0badcafe.tmp.exr"  # the daemon's own temp naming, as a kill leaves it
    stale.write_bytes(b"partial")
    foreign = out.parent / ".m.notours.tmp.exr"
    foreign.write_bytes(b"someone else's")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    os.utime(foreign, (old, old))
    own.kill()
    own.start()
    with own.client() as client:
        record = client.job(job)
    assert record["state"] == "failed" and record["error"]["code"] == "interrupted"
    written = record["written"]
    assert written and written[0]["frame"] == 1 and Path(written[0]["path"]).is_file()
    assert not stale.exists() and foreign.exists()
