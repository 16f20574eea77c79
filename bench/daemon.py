"""Daemon overhead benchmark: inline round trip per 1920x1080 half RGBA frame versus its floor.

Round trip: the client sends the plate's EXR bytes, the daemon decodes them, runs the engine, encodes a
matte EXR and sends it back. To time the daemon (not the model) the daemon here runs the real ``Engine`` with
its model swapped for fixed mattes (``StubEngine``: only ``segment`` and the backbone are replaced, and
``segment`` passes every argument through, so the engine's interface cannot drift from it). The floor,
measured in the same run: a bare ZeroMQ echo of the same bytes (ROUTER in another process, like the daemon)
plus OpenImageIO decode of the plate and encode of the mattes alone.

    python bench/daemon.py [--frames 20] [--parts 4] [--smoke]

``--smoke``: a 320x180 plate, one repeat (checks that the bench runs; its figures mean little).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import zmq

from smite.client import Client, Inline

SIZES = {"full": (1920, 1080), "smoke": (320, 180)}
WIDTH, HEIGHT = SIZES["full"]


# -------------------------------------------------------------------------------------------------------
# Inputs


def plate_exr_bytes(folder: Path) -> bytes:
    """A 1920x1080 half RGBA EXR (ZIP) of a synthetic shot frame."""
    import OpenImageIO as oiio

    from smite.synthetic.shots import make_shot

    rgb = make_shot(num_frames=1, size=(HEIGHT, WIDTH), num_parts=3, seed=1).frames[0]
    rgba = np.concatenate([rgb, np.ones((HEIGHT, WIDTH, 1), np.float32)], axis=2).astype(np.float16)
    spec = oiio.ImageSpec(WIDTH, HEIGHT, 4, oiio.HALF)
    spec.attribute("compression", "zip")
    path = folder / "plate.exr"
    out = oiio.ImageOutput.create(str(path))
    out.open(str(path), spec)
    out.write_image(rgba)
    out.close()
    return path.read_bytes()


def fixed_mattes(parts: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Soft mattes (parts, H, W) float32 summing to 1, labels uint16 (H, W), names."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    logits = np.stack([np.sin(x / (60 + 17 * k) + k) + np.cos(y / (45 + 11 * k)) for k in range(parts)])
    alphas = np.exp(3 * logits)
    alphas /= alphas.sum(0)
    names = ["background"] + [f"part{k}" for k in range(1, parts)]
    return alphas.astype(np.float32), alphas.argmax(0).astype(np.uint16), names


# -------------------------------------------------------------------------------------------------------
# Servers (separate processes, as in production)


def stub_engine(parts: int):
    """The real ``Engine`` (so the daemon calls what it always calls) with the model replaced by fixed mattes."""
    from smite.engine import Engine
    from smite.video.mattes import FrameMattes

    class StubEngine(Engine):
        def __init__(self) -> None:
            super().__init__("stub", device="cpu")
            alphas, labels, _ = fixed_mattes(parts)
            self.mattes = FrameMattes(alphas, labels)
            self._backbone = SimpleNamespace(fingerprint="stub", model_id="stub", resolution=256, precision="fp32",
                                             base_kv={})

        def backbone_for(self, part_model=None):
            return self._backbone

        def unload(self) -> None:  # nothing to free, and the stub backbone must stay
            pass

        def segment(self, part_model, frames, *args, **kwargs):
            for frame in frames:  # consuming the generator decodes the plate, as with the real engine
                assert frame.shape[:2] == self.mattes.labels.shape
                yield self.mattes

    return StubEngine()


def serve_daemon(home: str, parts: int, size: tuple[int, int], ready) -> None:
    import torch
    from smite_server.config import DaemonConfig
    from smite_server.daemon import Daemon

    from smite.model.partmodel import PartModel

    global WIDTH, HEIGHT
    WIDTH, HEIGHT = size  # a spawned process starts from the module's defaults
    torch.set_num_threads(1)
    config = DaemonConfig(address="tcp://127.0.0.1:*", model_store=Path(home) / "store",
                          state_dir=Path(home) / "state")
    daemon = Daemon(config, engine=stub_engine(parts))
    _, _, names = fixed_mattes(parts)
    PartModel(part_names=names, tokens=torch.zeros(parts - 1, 4), kv={}, base_model="stub",
              base_fingerprint="stub", resolution=256).save(Path(home) / "store" / "stub.smite")
    ready.send(daemon.start())
    daemon.serve()


def serve_echo(ready) -> None:
    context = zmq.Context()
    sock = context.socket(zmq.ROUTER)
    sock.bind("tcp://127.0.0.1:*")
    ready.send(sock.getsockopt_string(zmq.LAST_ENDPOINT))
    while True:
        frames = sock.recv_multipart(copy=False)
        if frames[1].bytes == b"stop":
            return
        sock.send_multipart(frames, copy=False)


def start(target, *args) -> tuple[mp.Process, str]:
    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(target=target, args=(*args, child), daemon=True)
    proc.start()
    return proc, parent.recv()


# -------------------------------------------------------------------------------------------------------
# Measurements (seconds per frame)


def echo_round_trip(address: str, data: bytes, repeats: int) -> list[float]:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.connect(address)
    times = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        sock.send_multipart([b"h", data], copy=False)
        sock.recv_multipart(copy=False)
        times.append(time.perf_counter() - started)
    sock.send_multipart([b"stop"])
    sock.close(linger=100)
    return times[1:]


def codec_alone(data: bytes, parts: int, repeats: int) -> tuple[list[float], list[float]]:
    """(decode times, encode times): the daemon's own reader and matte writer, without the daemon."""
    from smite.io.images import encode_mattes_exr, read_image_bytes

    alphas, labels, names = fixed_mattes(parts)
    decode, encode = [], []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        read_image_bytes(data, "plate.exr")
        decoded = time.perf_counter()
        encode_mattes_exr(alphas, labels, names, {"frame": 1})
        decode.append(decoded - started)
        encode.append(time.perf_counter() - decoded)
    return decode[1:], encode[1:]


def daemon_per_frame(client: Client, data: bytes, repeats: int) -> list[float]:
    """One job per frame: submit, wait for the streamed matte EXR (what an interactive plugin does)."""
    times = []
    for i in range(repeats + 1):
        started = time.perf_counter()
        job = client.segment("stub", [(i, Inline("plate.exr", data))])
        outputs = [e for e in client.events(job, timeout=600) if e.event == "output"]
        assert outputs and len(outputs[0].blobs[0]) > 1000
        times.append(time.perf_counter() - started)
    return times[1:]


def daemon_batch(client: Client, data: bytes, frames: int) -> float:
    """One job of ``frames`` frames, outputs streamed back: seconds per frame."""
    started = time.perf_counter()
    job = client.segment("stub", [(i, Inline("plate.exr", data)) for i in range(frames)])
    outputs = [e for e in client.events(job, timeout=600) if e.event == "output"]
    assert len(outputs) == frames
    return (time.perf_counter() - started) / frames


def main() -> int:
    global WIDTH, HEIGHT
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=20, help="frames per measurement")
    parser.add_argument("--parts", type=int, default=4, help="parts in the mattes (background included)")
    parser.add_argument("--smoke", action="store_true", help="smallest plate, one repeat")
    args = parser.parse_args()
    if args.smoke:
        WIDTH, HEIGHT = SIZES["smoke"]
        args.frames = 1
    with tempfile.TemporaryDirectory(prefix="smite-bench-") as folder:
        data = plate_exr_bytes(Path(folder))
        echo_proc, echo_address = start(serve_echo)
        echo = statistics.median(echo_round_trip(echo_address, data, args.frames))
        echo_proc.join(timeout=10)
        decode, encode = (statistics.median(t) for t in codec_alone(data, args.parts, args.frames))
        floor = echo + decode + encode
        daemon_proc, address = start(serve_daemon, folder, args.parts, (WIDTH, HEIGHT))
        with Client(address, timeout=120) as client:
            per_frame = statistics.median(daemon_per_frame(client, data, args.frames))
            batch = daemon_batch(client, data, args.frames)
            client.shutdown()
        daemon_proc.join(timeout=30)
        print(f"plate: {WIDTH}x{HEIGHT} half RGBA EXR, {len(data) / 1e6:.1f} MB; mattes: {args.parts} parts")
        print(f"floor   : {1000 * floor:7.1f} ms/frame  (zmq echo {1000 * echo:.1f} + OIIO decode {1000 * decode:.1f}"
              f" + encode {1000 * encode:.1f})")
        print(f"daemon  : {1000 * per_frame:7.1f} ms/frame  one job per frame   ratio {per_frame / floor:.2f}")
        print(f"daemon  : {1000 * batch:7.1f} ms/frame  {args.frames}-frame job        ratio {batch / floor:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
