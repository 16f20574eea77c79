"""SIGKILL the daemon and start it again on the same folders: stored part models and finished jobs' records
(with their outputs) survive; the job that was running comes back failed with code ``interrupted``."""

from __future__ import annotations

from pathlib import Path

import pytest
from server_helpers import DaemonProcess

from smite.client import DaemonError
from smite.synthetic.shots import make_shot, write_shot


def test_a_killed_daemon_restarts_with_its_models_and_finished_jobs(tmp_path):
    daemon = DaemonProcess(tmp_path / "d").start()
    try:
        shot = make_shot(num_frames=2, size=(128, 128), num_parts=2, seed=5)
        parts = write_shot(shot, daemon.root / "s")["part_names"]
        plate, mask = daemon.root / "s" / "plate.0001.png", daemon.root / "s" / "masks" / "mask.0001.png"
        with daemon.client() as client:
            learned = client.learn([str(plate)], [str(mask)], parts, name="kept",
                                   settings={"steps": 1, "token_steps": 1, "eval_every": 1})
            client.wait(learned, timeout=600)
            segmented = client.segment("kept", [(1, str(plate))], output=str(daemon.root / "out" / "m.####.exr"))
            client.wait(segmented, timeout=600)
            running = client.learn([str(plate)], [str(mask)], parts, name="never",
                                   settings={"steps": 500, "token_steps": 250, "eval_every": 500})
            for event in client.events(running, timeout=600):
                if event.event == "progress":
                    break
        survivor = daemon.client()  # stays open across the kill and reconnects by itself
        survivor.watch_poll_s = 0.5
        daemon.kill()

        address = daemon.address
        daemon.start()
        assert daemon.address == address
        with pytest.raises(DaemonError) as err:
            survivor.wait(running, timeout=600)
        assert err.value.code == "interrupted"
        assert survivor.hello()["pid"] == daemon.python_pid()
        survivor.close()
        with daemon.client() as client:
            assert [m["name"] for m in client.models()["models"]] == ["kept"]
            records = {j["id"]: j for j in client.jobs()}
            assert records[learned]["state"] == "done" and records[learned]["result"]["model"] == "kept"
            assert records[segmented]["state"] == "done"
            assert records[running]["state"] == "failed"
            assert records[running]["error"]["code"] == "interrupted"
            outputs = client.result(segmented)
            assert [Path(entry["path"]).name for entry, _ in outputs] == ["m.0001.exr"]
            assert Path(outputs[0][0]["path"]).is_file()
            with pytest.raises(DaemonError) as err:
                client.result(running)
            assert err.value.code == "interrupted"
            again = client.segment("kept", [(2, str(plate))], output=str(daemon.root / "out" / "m.####.exr"))
            assert client.wait(again, timeout=600)["state"] == "done"
            client.shutdown()
        assert daemon.proc.wait(timeout=120) == 0
    finally:
        daemon.stop()
