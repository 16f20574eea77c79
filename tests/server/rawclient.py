"""A raw DEALER for hostile tests: sends arbitrary frames, returns the decoded reply header."""

from __future__ import annotations

import msgpack
import zmq


class RawClient:
    def __init__(self, address: str, timeout_s: float = 60.0) -> None:
        self.context = zmq.Context.instance()
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(address)
        self.timeout_ms = int(timeout_s * 1000)

    def send(self, frames: list[bytes]) -> None:
        self.socket.send_multipart(frames)

    def recv(self) -> tuple[dict, list[bytes]]:
        if not self.socket.poll(self.timeout_ms):
            raise TimeoutError("no reply from the daemon")
        frames = self.socket.recv_multipart()
        return msgpack.unpackb(frames[0], raw=False), frames[1:]

    def exchange(self, frames: list[bytes]) -> dict:
        self.send(frames)
        return self.recv()[0]

    def request(self, op: object, args: object = None, rid: object = "r1", v: object = 1, blobs=(), **extra) -> dict:
        header = {"v": v, "id": rid, "op": op} | ({"args": args} if args is not None else {}) | extra
        return self.exchange([msgpack.packb(header, use_bin_type=True), *blobs])

    def close(self) -> None:
        self.socket.close(linger=0)

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
