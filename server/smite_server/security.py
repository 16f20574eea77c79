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
NAME_MAX = 255  # bytes per path component on Linux, macOS and Windows file systems
AUTHORIZED = "authorized"


class Roots:
    """The folders requests may read from and write to (real paths, symlinks resolved), minus the daemon's own
    folders (model store, state, keys) even where a root contains them: a request must not overwrite stored
    models or other clients' results, nor read keys."""

    def __init__(self, folders: Sequence[str | Path], excluded: Sequence[str | Path] = ()) -> None:
        self.folders = []
        for folder in folders:
            real = Path(os.path.realpath(Path(folder).expanduser()))
            if not real.is_dir():
                raise SmiteError(f"root folder {folder} does not exist; create it or fix --root")
            self.folders.append(real)
        self.excluded = [Path(os.path.realpath(Path(f).expanduser())) for f in excluded]

    def as_list(self) -> list[str]:
        return [str(f) for f in self.folders]

    def _refusal(self, real: Path) -> str | None:
        """Why a real path may not be used, or None."""
        if any(real == folder or real.is_relative_to(folder) for folder in self.excluded):
            return "is inside the daemon's own folders (model store, state or keys)"
        if not any(real == root or real.is_relative_to(root) for root in self.folders):
            return "is outside the daemon's root folders"
        return None

    def resolve(self, path: str, what: str) -> Path:
        """The real path of ``path`` if it lies inside a root (and not in the daemon's own folders), else
        ``ProtocolError('forbidden')``.

        The file need not exist (outputs); symlinks in the existing part of the path are followed, so a
        link inside a root pointing outside is refused.
        """
        if not self.folders:
            raise ProtocolError("forbidden", f"{what}: this daemon has no root folders, so paths are refused; "
                                             "send the data inline or start it with --root")
        given = Path(path)
        if not given.is_absolute():
            raise ProtocolError("bad_request", f"{what} {path[:200]!r} must be an absolute path")
        _check_components(given, what)
        real = Path(os.path.realpath(given))
        refusal = self._refusal(real)
        if refusal:
            raise ProtocolError("forbidden", f"{what} {path[:200]!r} {refusal}")
        return real

    def resolve_pattern(self, pattern: str, what: str) -> Path:
        """A frame pattern or output file (``/out/mattes.####.exr``): its folder must resolve inside a root."""
        given = Path(pattern)
        if not given.is_absolute():
            raise ProtocolError("bad_request", f"{what} {pattern[:200]!r} must be an absolute path")
        if pattern.endswith(("/", os.sep)) or given.name in ("", ".", ".."):
            raise ProtocolError("bad_request", f"{what} {pattern[:200]!r} must end in a file name, not a folder")
        _check_components(given, what)
        return self.resolve(str(given.parent), what) / given.name

    def confine(self, path: Path, what: str) -> Path:
        """Check ``path`` again when a job opens or writes it: it must still resolve inside a root (a folder
        swapped for a symlink to elsewhere after submission is refused, not followed). Returns the real path
        to open, so what is opened is what was checked; ``SmiteError`` with code ``forbidden`` otherwise."""
        real = Path(os.path.realpath(path))
        refusal = self._refusal(real)
        if refusal:
            shown = str(path)[:200] if real == path else f"{str(path)[:200]} (now {str(real)[:200]})"
            raise SmiteError(f"{what} {shown} {refusal}; refusing to follow it", code="forbidden")
        return real


def _check_components(path: Path, what: str) -> None:
    """Refuse a path with a component longer than file systems allow (it would fail later as an OSError)."""
    longest = max((len(part.encode("utf-8", "surrogateescape")) for part in path.parts), default=0)
    if longest > NAME_MAX:
        raise ProtocolError("bad_input", f"{what} {str(path)[:120]!r}... has a path component of {longest} bytes; "
                                         f"file names are limited to {NAME_MAX}")


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
