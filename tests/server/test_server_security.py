"""Path roots, bind rules and CURVE: in-process daemons with a stub engine (no model needed)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from smite_server.config import DaemonConfig
from smite_server.daemon import Daemon
from smite_server.protocol import ProtocolError
from smite_server.security import Roots, check_bind, create_keys, is_local_address, is_local_peer, load_server_keys

from smite.client import Client, DaemonError, DaemonTimeout
from smite.errors import SmiteError


class StubEngine:
    """Just enough Engine for requests that never run a job."""

    loaded = False

    def info(self) -> dict:
        return {"backbone": "stub", "device": "cpu", "loaded": False}

    def unload(self) -> None:
        pass


def test_roots_resolve_inside_and_refuse_outside(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "shots").mkdir(parents=True)
    outside.mkdir()
    (root / "escape").symlink_to(outside, target_is_directory=True)
    (root / "shots" / "inner").symlink_to(root / "shots", target_is_directory=True)
    roots = Roots([root])
    assert roots.resolve(str(root / "shots" / "a.exr"), "x") == root.resolve() / "shots" / "a.exr"
    assert roots.resolve(str(root / "shots" / "inner" / "a.exr"), "x").parent == root.resolve() / "shots"
    for bad in (str(outside / "a.exr"), f"{root}/../outside/a.exr", str(root / "escape" / "a.exr"), "/"):
        with pytest.raises(ProtocolError) as err:
            roots.resolve(bad, "args.frames[0]")
        assert err.value.code == "forbidden" and "args.frames[0]" in err.value.message
    with pytest.raises(ProtocolError) as err:
        roots.resolve("shots/a.exr", "x")
    assert err.value.code == "bad_request"
    assert roots.resolve_pattern(str(root / "new" / "m.####.exr"), "o").name == "m.####.exr"
    with pytest.raises(ProtocolError):
        roots.resolve_pattern(str(root / "escape" / "m.####.exr"), "o")
    with pytest.raises(ProtocolError) as err:
        Roots([]).resolve(str(root / "a.exr"), "x")
    assert err.value.code == "forbidden"
    with pytest.raises(SmiteError):
        Roots([tmp_path / "missing"])


def test_local_addresses_and_peers():
    for local in ("tcp://127.0.0.1:5", "tcp://127.3.2.1:*", "tcp://[::1]:9", "tcp://localhost:1", "ipc:///tmp/x"):
        assert is_local_address(local), local
    for remote in ("tcp://*:5", "tcp://0.0.0.0:5", "tcp://10.0.0.2:5", "tcp://eth0:5", "tcp://host.example:5",
                   "udp://127.0.0.1:5"):
        assert not is_local_address(remote), remote
    assert is_local_peer(None) and is_local_peer("127.0.0.1") and is_local_peer("::1")
    assert not is_local_peer("192.168.1.4")
    with pytest.raises(SmiteError, match="CURVE"):
        check_bind("tcp://0.0.0.0:7461", None)


def test_serve_refuses_a_public_address_without_keys(tmp_path):
    run = subprocess.run([sys.executable, "-m", "smite_server", "serve", "--address", "tcp://0.0.0.0:0",
                          "--model-store", str(tmp_path / "s"), "--state-dir", str(tmp_path / "d")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert "CURVE" in run.stderr and len(run.stderr.strip().splitlines()) == 1


def test_keys_layout(tmp_path):
    made = create_keys(tmp_path / "k", "nuke")
    assert (tmp_path / "k" / "authorized" / "nuke.key").is_file() and made["client_secret"].is_file()
    assert oct(os.stat(tmp_path / "k").st_mode & 0o777) == "0o700"
    keys = load_server_keys(tmp_path / "k")
    assert len(keys.public) == 40 and len(keys.secret) == 40
    with pytest.raises(SmiteError):
        create_keys(tmp_path / "k", "nuke")  # never overwrite a client's keys
    with pytest.raises(SmiteError):
        load_server_keys(tmp_path / "nothing")


@pytest.fixture()
def curve_daemon(tmp_path):
    create_keys(tmp_path / "keys", "alice")
    config = DaemonConfig(address="tcp://127.0.0.1:*", model_store=tmp_path / "store", state_dir=tmp_path / "state",
                          keys_dir=tmp_path / "keys")
    daemon = Daemon(config, engine=StubEngine())
    endpoint = daemon.start()
    thread = threading.Thread(target=daemon.serve, daemon=True)
    thread.start()
    yield endpoint, tmp_path / "keys"
    daemon.request_stop()
    thread.join(timeout=30)


def test_curve_admits_authorized_clients_only(curve_daemon, tmp_path):
    endpoint, keys = curve_daemon
    with Client(endpoint, timeout=10, server_key=keys / "server.key", client_keys=keys / "alice.key_secret") as c:
        info = c.hello()
        assert info["secure"] is True and info["backbone"] == "stub"
    with Client(endpoint, timeout=1.5, retries=0) as plain:  # no encryption: the handshake never completes
        with pytest.raises(DaemonTimeout):
            plain.hello()
    create_keys(tmp_path / "other", "mallory")  # a valid key pair the daemon does not know
    with Client(endpoint, timeout=1.5, retries=0, server_key=keys / "server.key",
                client_keys=tmp_path / "other" / "mallory.key_secret") as stranger:
        with pytest.raises(DaemonTimeout):
            stranger.hello()
    with pytest.raises(DaemonError):
        Client(endpoint, server_key=keys / "server.key")  # a server key without a client key pair


def test_path_requests_need_roots(tmp_path):
    config = DaemonConfig(address="tcp://127.0.0.1:*", model_store=tmp_path / "s", state_dir=tmp_path / "d")
    daemon = Daemon(config, engine=StubEngine())
    endpoint = daemon.start()
    thread = threading.Thread(target=daemon.serve, daemon=True)
    thread.start()
    try:
        with Client(endpoint, timeout=10) as client:
            with pytest.raises(DaemonError) as err:
                client.segment("m", [str(Path(tmp_path) / "a.png")])
            assert err.value.code == "forbidden" and "--root" in err.value.message
            client.shutdown()
        thread.join(timeout=30)
        assert not thread.is_alive()
    finally:
        daemon.request_stop()


def test_shutdown_is_accepted_on_an_ipc_socket(tmp_path):
    """ipc peers are on this machine (ZeroMQ reports no address for them): a farm session's onExit stops its
    ipc daemon at once, where it used to be refused and waited out (2 minutes) before a SIGTERM."""
    config = DaemonConfig(address=f"ipc://{tmp_path}/smite.ipc", model_store=tmp_path / "s", state_dir=tmp_path / "d")
    daemon = Daemon(config, engine=StubEngine())
    endpoint = daemon.start()
    thread = threading.Thread(target=daemon.serve, daemon=True)
    thread.start()
    try:
        with Client(endpoint, timeout=10) as client:
            client.shutdown()  # refused ("forbidden") before the fix
        thread.join(timeout=30)
        assert not thread.is_alive()
    finally:
        daemon.request_stop()
