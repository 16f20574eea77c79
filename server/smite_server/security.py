"""What the daemon lets in: path roots, loopback-only binding without keys, CURVE keys and authentication.

* Paths in requests must be absolute and resolve (symlinks and ``..`` followed) inside a configured root.
* A daemon bound to anything but loopback / ipc requires CURVE: the server secret key plus a folder of
  authorized client public keys (``smite keys`` creates both); it refuses to start otherwise.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth

from smite.errors import SmiteError
from smite_server.protocol import ProtocolError

SERVER_KEY = "server"
AUTHORIZED = "authorized"


class Roots:
    """The folders requests may read from and write to (real paths, symlinks resolved)."""

    def __init__(self, folders: Sequence[str | Path]) -> None:
        self.folders = []
        for folder in folders:
            real = Path(os.path.realpath(Path(folder).expanduser()))
            if not real.is_dir():
                raise SmiteError(f"root folder {folder} does not exist; create it or fix --root")
            self.folders.append(real)

    def as_list(self) -> list[str]:
        return [str(f) for f in self.folders]

    def resolve(self, path: str, what: str) -> Path:
        """The real path of ``path`` if it lies inside a root, else ``ProtocolError('forbidden')``.

        The file need not exist (outputs); symlinks in the existing part of the path are followed, so a
        link inside a root pointing outside is refused.
        """
        if not self.folders:
            raise ProtocolError("forbidden", f"{what}: this daemon has no root folders, so paths are refused; "
                                             "send the data inline or start it with --root")
        given = Path(path)
        if not given.is_absolute():
            raise ProtocolError("bad_request", f"{what} {path[:200]!r} must be an absolute path")
        real = Path(os.path.realpath(given))
        if not any(real == root or real.is_relative_to(root) for root in self.folders):
            raise ProtocolError("forbidden", f"{what} {path[:200]!r} is outside the daemon's root folders")
        return real

    def resolve_pattern(self, pattern: str, what: str) -> Path:
        """A frame pattern (``/out/mattes.####.exr``): its folder must resolve inside a root."""
        given = Path(pattern)
        if not given.is_absolute():
            raise ProtocolError("bad_request", f"{what} {pattern[:200]!r} must be an absolute path")
        if given.name in ("", ".", ".."):
            raise ProtocolError("bad_request", f"{what} {pattern[:200]!r} must end in a file name")
        return self.resolve(str(given.parent), what) / given.name


def is_local_address(address: str) -> bool:
    """True for ipc://, inproc:// and tcp:// on a loopback host (127.0.0.0/8, ::1, localhost)."""
    scheme, _, rest = address.partition("://")
    if scheme in ("ipc", "inproc"):
        return True
    if scheme != "tcp":
        return False
    host = rest.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # '*', interface names and host names may reach other machines


def is_local_peer(peer_address: str | None) -> bool:
    """Whether a connected peer (ZeroMQ ``Peer-Address``; None for ipc/inproc) is on this machine."""
    if not peer_address:
        return True
    try:
        return ipaddress.ip_address(peer_address.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class CurveKeys:
    """The daemon's CURVE key pair and the folder of client public keys it accepts."""

    public: bytes
    secret: bytes
    authorized: Path


def load_server_keys(folder: str | Path) -> CurveKeys:
    """Read ``<folder>/server.key_secret`` and ``<folder>/authorized/`` (as written by :func:`create_keys`)."""
    folder = Path(folder).expanduser()
    secret_file, authorized = folder / f"{SERVER_KEY}.key_secret", folder / AUTHORIZED
    if not secret_file.is_file():
        raise SmiteError(f"no server key {secret_file}; create keys with `smite keys {folder}`")
    if not authorized.is_dir() or not any(authorized.glob("*.key")):
        raise SmiteError(f"no authorized client keys in {authorized}; create one with `smite keys {folder}`")
    try:
        public, secret = zmq.auth.load_certificate(str(secret_file))
    except (OSError, ValueError) as exc:
        raise SmiteError(f"cannot read server key {secret_file}: {exc}") from exc
    if not secret:
        raise SmiteError(f"{secret_file} holds no secret key")
    return CurveKeys(public, secret, authorized)


def create_keys(folder: str | Path, client: str = "client") -> dict[str, Path]:
    """Create the server key pair (once) and a client key pair named ``client``; authorize the client.

    Layout: ``server.key`` (public, give to clients), ``server.key_secret`` (daemon only),
    ``<client>.key`` / ``<client>.key_secret`` (give to that client), ``authorized/<client>.key``.
    """
    if not zmq.has("curve"):
        raise SmiteError("this pyzmq/libzmq has no CURVE support; install a pyzmq wheel with libsodium")
    folder = Path(folder).expanduser()
    if not client or client == SERVER_KEY or not all(c.isalnum() or c in "_-" for c in client):
        raise SmiteError(f"client name {client!r} must be letters, digits, '_' or '-' and not 'server'")
    authorized = folder / AUTHORIZED
    authorized.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)  # secret keys inside
    if not (folder / f"{SERVER_KEY}.key_secret").exists():
        zmq.auth.create_certificates(str(folder), SERVER_KEY)
    if (folder / f"{client}.key_secret").exists():
        raise SmiteError(f"client key {folder / client}.key_secret exists already; pick another --client name")
    public, secret = zmq.auth.create_certificates(str(folder), client)
    shutil.copy(public, authorized / f"{client}.key")
    return {"server_public": folder / f"{SERVER_KEY}.key", "server_secret": folder / f"{SERVER_KEY}.key_secret",
            "client_public": Path(public), "client_secret": Path(secret)}


def check_bind(address: str, keys: CurveKeys | None) -> None:
    """Refuse a non-local bind address without CURVE keys."""
    if not is_local_address(address) and keys is None:
        raise SmiteError(
            f"refusing to listen on {address} without encryption: a non-loopback address needs CURVE keys "
            "(create them with `smite keys DIR` and pass --keys DIR), or bind tcp://127.0.0.1"
        )


def apply_curve(socket: zmq.Socket, keys: CurveKeys) -> None:
    """Make ``socket`` a CURVE server with ``keys`` (call before bind)."""
    socket.curve_secretkey = keys.secret
    socket.curve_publickey = keys.public
    socket.curve_server = True
