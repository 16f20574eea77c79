"""A real daemon driven by the client: learn, segment by path and inline, progress, cancel, concurrency."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from server_helpers import TINY_LEARN, inline

from smite.client import DaemonError
from smite.io.images import read_mattes_exr


def test_hello_reports_versions_backbone_and_limits(daemon):
    with daemon.client() as client:
        info = client.hello()
    assert info["protocol"] == "1.1" and info["protocol_major"] == 1
    assert info["backbone"] == "tiny" and info["device"] == "cpu"
    assert info["limits"]["max_message_bytes"] == 8 * 1024 * 1024
    assert info["roots"] == [str(daemon.root.resolve())]
    assert {"learn", "segment", "jobs", "cancel", "result", "models", "unload", "shutdown"} <= set(info["operations"])
    assert "vram_free" in info and "vram_used" in info


def test_learn_by_path_streams_ordered_progress_and_ends_with_a_result(learned, daemon):
    events = learned["events"]
    seqs = [e.seq for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert events[0].event == "state" and events[0].body["state"] == "running"
    progress = [e.body for e in events if e.event == "progress"]
    # One event per learning step; how many steps 3 "steps" make depends on the schedule (per reference).
    assert [b["step"] for b in progress] == list(range(1, progress[-1]["total"] + 1))
    assert progress[-1]["total"] >= 3
    assert events[-1].event == "finished"
    record = learned["record"]
    assert record["state"] == "done" and record["result"]["model"] == "hero"
    assert record["result"]["part_names"][0] == "background"
    assert record["result"]["kept_start"] is False  # not a warm run
    assert (daemon.store / "hero.smite").is_file()


def test_models_lists_and_describes_the_stored_model(learned, daemon):
    with daemon.client() as client:
        listing = client.models()["models"]
        described = client.models("describe", "hero")["model"]
    assert [m["name"] for m in listing] == ["hero"]
    assert listing[0]["base_model"] == "smite/tiny-sd"
    assert described["metadata"]["part_names"] == learned["record"]["result"]["part_names"]


def test_segment_by_path_writes_matte_exrs_inside_the_root(learned, daemon, shot):
    out = daemon.root / "out" / "hero.####.exr"
    with daemon.client() as client:
        job = client.segment("hero", sequence=str(daemon.root / "shot" / "plate.####.png"), frame_range="2-3",
                             output=str(out), cryptomatte=True)
        record = client.wait(job, timeout=600)
        outputs = client.result(job)
    assert [e["frame"] for e, _ in outputs] == [2, 3]
    assert all(data is None for _, data in outputs)
    mattes = read_mattes_exr(daemon.root / "out" / "hero.0002.exr")
    assert mattes.part_names == record["result"]["part_names"]
    assert mattes.alphas.shape == (3, 128, 128)
    np.testing.assert_allclose(mattes.alphas.sum(0), 1.0, atol=5e-3)
    assert "cryptomatte" in str(read_exr_attributes(daemon.root / "out" / "hero.0003.exr"))


def read_exr_attributes(path) -> list[str]:
    import OpenImageIO as oiio

    return [a.name for a in oiio.ImageInput.open(str(path)).spec().extra_attribs]


def test_segment_inline_streams_exr_bytes_and_keeps_them_for_result(learned, daemon, shot, tmp_path):
    frames = [(7, inline(shot["plate_files"][1])), (8, inline(shot["plate_files"][2]))]
    with daemon.client() as client:
        job = client.segment("hero", frames)
        streamed = [e for e in client.events(job, timeout=600) if e.event == "output"]
        fetched = client.result(job)
    assert [e.body["frame"] for e in streamed] == [7, 8]
    assert [entry["frame"] for entry, _ in fetched] == [7, 8]
    assert streamed[0].blobs[0] == fetched[0][1]
    path = tmp_path / "m.exr"
    path.write_bytes(fetched[1][1])
    mattes = read_mattes_exr(path)
    assert mattes.metadata["frame"] == 8 and mattes.labels.shape == (128, 128)


def test_learn_inline_with_per_part_mattes(daemon, shot, tmp_path):
    from smite.io.images import read_label_map, write_png

    labels = read_label_map(shot["mask_files"][0])
    mattes = {}
    for k, part in enumerate(shot["part_names"], start=1):
        path = tmp_path / f"{part}.png"
        write_png(path, np.repeat((labels == k)[..., None], 3, axis=2).astype(np.float32))
        mattes[part] = inline(path)
    with daemon.client() as client:
        job = client.learn([inline(shot["plate_files"][0])], [mattes], shot["part_names"], name="inline_parts",
                           settings={"steps": 1, "token_steps": 1, "eval_every": 1}, watch=False)
        record = client.wait(job, timeout=600)
    assert record["state"] == "done"
    assert record["request"]["frames"] == [{"blob": 0, "name": "plate.0001.png"}]


def test_cancel_stops_a_running_job_within_one_step(daemon, shot):
    with daemon.client() as client:
        job = client.learn([str(shot["plate_files"][0])], [str(shot["mask_files"][0])], shot["part_names"],
                           name="to_cancel", settings={"steps": 200, "token_steps": 100, "eval_every": 200})
        events = client.events(job, timeout=600)
        for event in events:
            if event.event == "progress":
                break
        reply = client.cancel(job)
        after = list(events)
    assert reply["cancelling"] is True
    progress_after = [e for e in after if e.event == "progress"]
    # the step running when the cancel arrived may still report; the next one must not start
    assert len(progress_after) <= 2
    record = after[-1].body["job"]
    assert record["state"] == "cancelled" and record["error"]["code"] == "cancelled"
    assert record["progress"]["step"] < 10
    with daemon.client() as client:
        with pytest.raises(DaemonError) as err:
            client.result(job)
        assert err.value.code == "cancelled"
        assert client.cancel(job)["cancelling"] is False  # idempotent


def test_wait_cancels_when_the_hosts_progress_bar_says_so(daemon, shot):
    pressed = []
    with daemon.client() as client:
        job = client.learn([str(shot["plate_files"][0])], [str(shot["mask_files"][0])], shot["part_names"],
                           name="pressed", settings={"steps": 200, "token_steps": 100, "eval_every": 200})
        with pytest.raises(DaemonError) as err:
            client.wait(job, progress=lambda e: pressed.append(e.event == "progress"), cancel_if=lambda: any(pressed),
                        timeout=600)
    assert err.value.code == "cancelled"


def test_a_queued_job_is_cancelled_at_once_and_priority_orders_the_queue(daemon, shot):
    with daemon.client() as client:
        blocker = client.learn([str(shot["plate_files"][0])], [str(shot["mask_files"][0])], shot["part_names"],
                               name="blocker", settings={"steps": 200, "token_steps": 100, "eval_every": 200},
                               watch=False)
        low = client.segment("hero", [str(shot["plate_files"][0])], watch=False, priority=-5)
        high = client.segment("hero", [str(shot["plate_files"][1])], watch=False, priority=5)
        gone = client.segment("hero", [str(shot["plate_files"][2])], watch=False)
        assert client.job(gone)["state"] == "queued"
        assert client.cancel(gone)["job"]["state"] == "cancelled"
        client.cancel(blocker)
        client.wait(low, timeout=600)
        high_record, low_record = client.job(high), client.job(low)
    assert high_record["state"] == low_record["state"] == "done"
    assert high_record["started"] <= low_record["started"]


def test_two_clients_submitting_at_once_are_both_served(learned, daemon, shot):
    results, errors = {}, []

    def run(name: str, frame: int) -> None:
        try:
            with daemon.client() as client:
                job = client.segment("hero", [str(shot["plate_files"][frame])])
                results[name] = client.wait(job, timeout=600)
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f"c{i}", i)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert {r["state"] for r in results.values()} == {"done"}
    assert results["c0"]["id"] != results["c1"]["id"]


def test_another_client_can_watch_a_job_and_a_disconnected_submitter_keeps_its_result(learned, daemon, shot):
    submitter = daemon.client()
    job = submitter.segment("hero", [str(shot["plate_files"][4]), str(shot["plate_files"][5])])
    submitter.close()  # gone before the job finishes
    with daemon.client() as watcher:
        record = watcher.wait(job, timeout=600)
        assert record["state"] == "done"
        assert len(watcher.result(job)) == 2


def test_resubmitting_the_same_request_id_returns_the_same_job(learned, daemon, shot):
    with daemon.client() as client:
        header_args = {"model": "hero", "frames": [{"path": str(shot["plate_files"][0])}], "watch": False}
        rid = client.new_id()
        first = _raw_call(client, rid, "segment", header_args)
        second = _raw_call(client, rid, "segment", header_args)
        client.wait(first["job"]["id"], timeout=600)
    assert first["job"]["id"] == second["job"]["id"]


def _raw_call(client, request_id: str, op: str, args: dict) -> dict:
    import time

    client._send({"v": 1, "id": request_id, "op": op, "args": args}, [], time.monotonic() + 30)
    while True:
        header, blobs = client._receive(time.monotonic() + 60)
        if header.get("id") == request_id and header.get("type") == "reply":
            return header["body"]


def test_unload_frees_the_backbone_and_the_next_job_loads_it_again(learned, daemon, shot):
    with daemon.client() as client:
        assert client.unload() is True
        assert client.hello()["loaded"] is False
        job = client.segment("hero", [str(shot["plate_files"][0])])
        assert client.wait(job, timeout=600)["state"] == "done"
        assert client.hello()["loaded"] is True


def test_submit_learn_inline_settings_are_checked(daemon, shot):
    with daemon.client() as client:
        with pytest.raises(DaemonError) as err:
            client.learn([str(shot["plate_files"][0])], [str(shot["mask_files"][0])], shot["part_names"],
                         name="x", settings=TINY_LEARN | {"stepz": 3})
    assert err.value.code == "bad_request" and "stepz" in err.value.message
