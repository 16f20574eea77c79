"""Job queue order, job record persistence and the model store, in-process."""

from __future__ import annotations

import json
import threading

import pytest
from smite_server.jobs import Job, JobBook, JobQueue
from smite_server.protocol import ProtocolError
from smite_server.store import ModelStore


def test_queue_takes_higher_priority_first_then_fifo_and_skips_cancelled():
    queue = JobQueue()
    jobs = [Job(id=f"j{i}", op="segment", priority=p) for i, p in enumerate([0, 5, 0, -1, 5])]
    for job in jobs:
        queue.put(job)
    jobs[2].cancel.set()
    order = [queue.take(0).id for _ in range(4)]
    assert order == ["j1", "j4", "j0", "j3"]
    assert queue.take(0) is None
    queue.put(jobs[3])
    assert queue.remove(jobs[3]) and not queue.remove(jobs[3])


def test_queue_take_wakes_on_put_and_on_close():
    queue, got = JobQueue(), []
    thread = threading.Thread(target=lambda: got.append(queue.take(None)))
    thread.start()
    queue.put(Job(id="a", op="learn"))
    thread.join(timeout=30)
    assert got[0].id == "a"
    thread = threading.Thread(target=lambda: got.append(queue.take(None)))
    thread.start()
    queue.close()
    thread.join(timeout=30)
    assert got[1] is None


def test_job_book_persists_and_marks_unfinished_jobs_interrupted(tmp_path):
    book = JobBook(tmp_path / "jobs")
    done = Job(id="j1", op="segment", state="done", result={"outputs": [{"frame": 1, "path": "/x"}]}, finished=1.0)
    running = Job(id="j2", op="learn", state="running", payload=b"inline bytes are never stored")
    for job in (done, running):
        book.add(job)
    (tmp_path / "jobs" / "garbage.json").write_text("{not json")
    assert "inline bytes" not in (tmp_path / "jobs" / "j2.json").read_text()
    again = JobBook(tmp_path / "jobs")
    assert again.load() == 2
    assert again.jobs["j1"].result == done.result and again.jobs["j1"].state == "done"
    assert again.jobs["j2"].state == "failed" and again.jobs["j2"].error["code"] == "interrupted"
    assert json.loads((tmp_path / "jobs" / "j2.json").read_text())["state"] == "failed"
    assert [j.id for j in again.expired(retention_s=10, now=100.0)] == ["j1"]
    again.forget(again.jobs["j1"])
    assert not (tmp_path / "jobs" / "j1.json").exists()


def test_model_store_lists_describes_and_deletes(tmp_path):
    import torch

    from smite.model.partmodel import PartModel

    store = ModelStore(tmp_path / "models")
    model = PartModel(part_names=["background", "hat"], tokens=torch.zeros(1, 4), kv={}, base_model="b",
                      base_fingerprint="f" * 16, resolution=256)
    store.save(model, "hat_v1")
    (tmp_path / "models" / "broken.smite").write_bytes(b"\x00" * 20)
    listing = {m["name"]: m for m in store.listing()}
    assert listing["hat_v1"]["part_names"] == ["background", "hat"] and "error" in listing["broken"]
    assert store.describe("hat_v1")["metadata"]["base_fingerprint"] == "f" * 16
    store.delete("broken")
    with pytest.raises(ProtocolError) as err:
        store.describe("broken")
    assert err.value.code == "not_found"


def test_submissions_are_refused_when_the_queue_is_full_or_holds_too_many_inline_bytes():
    from types import SimpleNamespace

    from smite_server.handlers import check_capacity

    config = SimpleNamespace(max_queued_jobs=2, max_queued_bytes=1000)
    daemon = SimpleNamespace(stopping=False, queue=[], config=config, pending_inline_bytes=lambda: 0)
    check_capacity(daemon, 5000)  # one big job alone is fine (the message limit bounds it)
    daemon.pending_inline_bytes = lambda: 800
    with pytest.raises(ProtocolError) as err:
        check_capacity(daemon, 300)
    assert err.value.code == "queue_full" and "MiB" in err.value.message
    daemon.pending_inline_bytes, daemon.queue = (lambda: 0), [1, 2]
    with pytest.raises(ProtocolError) as err:
        check_capacity(daemon, 0)
    assert err.value.code == "queue_full"
    daemon.queue, daemon.stopping = [], True
    with pytest.raises(ProtocolError) as err:
        check_capacity(daemon, 0)
    assert err.value.code == "shutting_down"
