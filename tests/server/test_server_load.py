"""Bounded loopback load: 16 clients x 50 hello/jobs requests while a segment job runs; none is lost."""

from __future__ import annotations

import threading
import time

import numpy as np

CLIENTS, REQUESTS = 16, 50


def test_sixteen_clients_fifty_requests_each_during_a_segment_job(learned, daemon, shot, capsys):
    plates = [str(p) for p in shot["plate_files"]] * 2
    latencies: list[float] = []
    errors: list[Exception] = []
    saw_running = []
    lock = threading.Lock()

    def hammer(k: int) -> None:
        try:
            with daemon.client() as client:
                client.retries = 0  # a lost request must show up as a failure, not be hidden by a resend
                for i in range(REQUESTS):
                    started = time.perf_counter()
                    if (i + k) % 2:
                        running = client.hello()["running"]
                    else:
                        running = [j["id"] for j in client.jobs(states=["running"])]
                    took = time.perf_counter() - started
                    with lock:
                        latencies.append(took)
                        saw_running.append(bool(running))
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)

    with daemon.client() as submitter:
        job = submitter.segment("hero", [(n, p) for n, p in enumerate(plates)], stream_outputs=False)
        for event in submitter.events(job, timeout=600):
            if event.event == "state":
                break  # the job is running: start the load
        threads = [threading.Thread(target=hammer, args=(k,)) for k in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        record = submitter.wait(job, timeout=600)
    assert not errors, errors[:3]
    assert len(latencies) == CLIENTS * REQUESTS
    assert any(saw_running)
    assert record["state"] == "done" and len(record["result"]["outputs"]) == len(plates)
    p50, p99 = np.percentile(latencies, [50, 99]) * 1000
    with capsys.disabled():
        print(f"\nload: {len(latencies)} replies, p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
              f"max {max(latencies) * 1000:.1f} ms")
