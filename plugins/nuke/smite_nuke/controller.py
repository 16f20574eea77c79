"""The SMITE node's logic, independent of Nuke: buttons start a worker thread with its own daemon client;
the worker touches the host only through ``call_in_main`` / ``post`` (Nuke: ``executeInMainThread``).

Learn: render the reference frames of plate and roto to EXR (or send the plate's own files), submit
``learn``, follow its progress. Segment: send the plate's files (or render them in chunks), submit
``segment``, follow it, then wire the matte sequence into the node. The running job's id is kept in
hidden knobs, so a reopened script (or a new controller) picks it up again with ``resume``.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from collections.abc import Callable

from smite_nuke import transfer
from smite_nuke.client_module import client as smite_client
from smite_nuke.host import Host
from smite_nuke.settings import (
    NodeError,
    NodeSettings,
    format_frames,
    frame_path,
    model_name,
    output_folder,
)

RENDER_CHUNK = 8  # plate frames rendered per main-thread call: the UI gets control back between chunks
HELLO_TIMEOUT_S = 3.0  # a daemon that is up answers hello at once, even mid-job
STATUS_EVERY_S = 0.5
JOB_KNOBS = ("smite_job", "smite_job_op", "smite_job_output", "smite_job_range", "smite_job_mode")


def one_sentence(text: str) -> str:
    """Squeeze a message into one line ending with a full stop."""
    text = " ".join(str(text).split()).strip() or "Unknown error"
    return text if text.endswith((".", "!", "?")) else text + "."


def describe(exc: BaseException, address: str) -> str:
    """One sentence for the artist about what went wrong."""
    if isinstance(exc, NodeError):
        return one_sentence(str(exc)[:1].upper() + str(exc)[1:])
    if isinstance(exc, smite_client.DaemonTimeout):
        return one_sentence(f"The SMITE daemon at {address} did not answer: start it with `smite serve` "
                            "or check the daemon address")
    if isinstance(exc, smite_client.DaemonError):
        if exc.code == "cancelled":
            return "Cancelled."
        return one_sentence(f"The daemon refused: {exc.message} ({exc.code})")
    if isinstance(exc, OSError):
        return one_sentence(f"Cannot read or write {exc.filename or 'a file'}: {exc.strerror or exc}")
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return one_sentence(f"{type(exc).__name__}: {first}")


def connection_text(hello: dict) -> str:
    """``tiny on cpu`` / ``sd21 on cuda, 21.3 of 24.0 GiB free``, from a hello reply."""
    text = f"{hello.get('backbone', '?')} on {hello.get('device', '?')}"
    free, total = hello.get("vram_free"), hello.get("vram_total")
    if free is not None and total:
        text += f", {free / 2**30:.1f} of {total / 2**30:.1f} GiB free"
    return text + (", model loaded" if hello.get("loaded") else "")


def default_client(settings: NodeSettings):
    keys = {}
    if settings.server_key:
        keys = {"server_key": settings.server_key, "client_keys": settings.client_key or None}
    return smite_client.Client(settings.address, timeout=settings.timeout, retries=1, **keys)


class Controller:
    """One SMITE node's buttons and jobs. ``client_factory(settings)`` makes a client (one per worker)."""

    def __init__(self, host: Host, client_factory: Callable = default_client) -> None:
        self.host = host
        self.client_factory = client_factory
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()
        self.job: str | None = None  # the daemon job being followed (read by tests and Cancel)

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait_idle(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    # -- buttons (main thread) ----------------------------------------------------------------------------

    def connect(self) -> None:
        self._button("Connecting", self._connect)

    def learn(self) -> None:
        self._button("Learning", self._learn, self._prepare_learn)

    def segment(self) -> None:
        self._button("Segmenting", self._segment, self._prepare_segment)

    def free_vram(self) -> None:
        self._button("Freeing VRAM", self._free_vram)

    def cancel(self) -> None:
        """Stop what runs: the render between chunks, the daemon job before its next step."""
        if self.busy:
            self._cancel.set()
            self.host.set_knobs({"status": "Cancelling..."})

    def refresh_roto(self) -> None:
        """Fill parts and reference frames from the roto input (main thread; knob values only)."""
        try:
            parts, keys = self.host.roto_parts(), self.host.roto_key_frames()
        except Exception as exc:  # noqa: BLE001 - shown on the node, never as a dialog
            self._show_error(describe(exc, ""))
            return
        values = {"parts": " ".join(parts)} | ({"ref_frames": format_frames(keys)} if keys else {})
        self.host.set_knobs(values | {"status": f"Roto: {len(parts)} part(s), keys on {len(keys)} frame(s)."})

    def add_part(self, part: str) -> None:
        from smite_nuke.settings import check_part

        try:
            self.host.add_roto_part(check_part(part.strip()))
        except Exception as exc:  # noqa: BLE001
            self._show_error(describe(exc, ""))
            return
        self.refresh_roto()

    def resume(self) -> None:
        """Follow a job recorded in the node's hidden knobs (a reopened script); no-op without one."""
        job = self.host.knob_value("smite_job")
        if job and not self.busy:
            self._button("Waiting for the daemon", self._resume)

    # -- plumbing ----------------------------------------------------------------------------------------

    def _button(self, title: str, work: Callable, prepare: Callable | None = None) -> None:
        if self.busy:
            self.host.set_knobs({"status": "Busy: wait for the running job or press Cancel."})
            return
        try:
            settings = self.host.read_settings()
            extra = prepare(settings) if prepare else None
        except Exception as exc:  # noqa: BLE001
            self._show_error(describe(exc, ""))
            return
        self._cancel.clear()
        self.host.set_knobs({"status": f"{title}...", "error": ""})
        self._thread = threading.Thread(target=self._worker, args=(title, work, settings, extra),
                                        name=f"smite-{title.lower().replace(' ', '-')}", daemon=True)
        self._thread.start()

    def _worker(self, title: str, work: Callable, settings: NodeSettings, extra) -> None:
        task = self.host.progress(f"SMITE: {title}")
        try:
            with self.client_factory(settings) as client:
                message = work(client, settings, extra, task)
            self.host.post(self.host.set_knobs, {"status": message, "error": ""})
        except Exception as exc:  # noqa: BLE001 - every failure becomes one sentence on the node
            message = describe(exc, settings.address)
            details = "" if isinstance(exc, (NodeError, smite_client.DaemonError, OSError)) else \
                traceback.format_exc()
            if message == "Cancelled.":
                self.host.post(self._clear_job)
                self.host.post(self.host.set_knobs, {"status": "Cancelled.", "error": ""})
            else:
                self.host.post(self._show_error, message, details)
        finally:
            self.job = None
            task.close()

    def _show_error(self, message: str, details: str = "") -> None:
        self.host.set_knobs({"status": f"Failed: {message}", "error": message})
        self.host.log(f"SMITE: {message}", error=True)
        if details:
            self.host.log(details)

    def _clear_job(self) -> None:
        self.host.set_knobs({k: "" for k in JOB_KNOBS})

    def _hello(self, client) -> dict:
        hello = client.call("hello", timeout=HELLO_TIMEOUT_S, retries=0).body
        if hello.get("protocol_major") != smite_client.PROTOCOL_MAJOR:
            raise NodeError(f"the daemon speaks protocol {hello.get('protocol')}, this plug-in "
                            f"{smite_client.PROTOCOL_MAJOR}.x; install matching versions")
        self.host.post(self.host.set_knobs, {"connection": connection_text(hello)})
        return hello

    def _follow(self, client, job: str, task, label: str) -> dict:
        """Wait for a job, reporting progress; Cancel (button or progress bar) cancels it on the daemon."""
        self.job = job
        last = [0.0]

        def progress(event) -> None:
            body = event.body
            if event.event != "progress":
                return
            fraction = float(body.get("fraction") or 0.0)
            if "step" in body:
                detail = f"step {body['step']}/{body['total']}"
            else:
                detail = f"frame {body.get('done')}/{body.get('total')}"
            eta = body.get("eta_s")
            message = f"{label}: {detail}" + (f", {eta:.0f} s left" if eta is not None else "")
            task.update(fraction, message)
            if time.monotonic() - last[0] > STATUS_EVERY_S or fraction >= 1.0:
                last[0] = time.monotonic()
                self.host.post(self.host.set_knobs, {"status": message})

        return client.wait(job, progress=progress, cancel_if=lambda: self._cancel.is_set() or task.cancelled())

    def _check_cancel(self, task) -> None:
        if self._cancel.is_set() or task.cancelled():
            raise smite_client.DaemonError("cancelled", "cancelled")

    # -- work (worker threads) ---------------------------------------------------------------------------

    def _connect(self, client, settings: NodeSettings, extra, task) -> str:
        hello = self._hello(client)
        where = "shared storage" if transfer.roots(hello) else "inline transfer only"
        return f"Connected to {settings.address} ({connection_text(hello)}; {where})."

    def _free_vram(self, client, settings: NodeSettings, extra, task) -> str:
        self._hello(client)
        freed = client.unload()
        self._hello(client)
        return "Freed the daemon's VRAM." if freed else "The daemon's model was not loaded."

    def _prepare_learn(self, settings: NodeSettings) -> dict:
        if not settings.parts:
            settings.parts = self.host.roto_parts()
        if not settings.ref_frames:
            settings.ref_frames = self.host.roto_key_frames()
        if not settings.parts:
            raise NodeError("no parts: the roto input has no smite_<part> layers; use Add part")
        if not settings.ref_frames:
            raise NodeError("no reference frames: key the roto on some frames or type them in")
        missing = [p for p in settings.parts if p not in self.host.roto_parts()]
        if missing:
            raise NodeError(f"the roto input has no layer smite_{missing[0]}")
        return {"folder": output_folder(settings), "name": model_name(settings)}

    def _plates(self, frames: list[int], folder: str, task, label: str) -> list[str]:
        """The plate files of ``frames``: the plate's own files, or EXRs rendered in chunks into ``folder``."""
        files = self.host.call_in_main(self.host.plate_files, frames)
        if files is not None and all(transfer.sendable(files[f]) for f in frames):
            return [files[f] for f in frames]
        os.makedirs(folder, exist_ok=True)
        pattern = os.path.join(folder, "plate.####.exr")
        out: list[str] = []
        for start in range(0, len(frames), RENDER_CHUNK):
            self._check_cancel(task)
            chunk = frames[start:start + RENDER_CHUNK]
            task.update(start / len(frames), f"{label}: rendering plate frame {chunk[0]}")
            out += self.host.call_in_main(self.host.render, "plate", chunk, pattern)
        return out

    def _learn(self, client, settings: NodeSettings, extra: dict, task) -> str:
        hello = self._hello(client)
        folder, name, refs = extra["folder"], extra["name"], settings.ref_frames
        refs_folder = os.path.join(folder, "refs", settings.node)
        plates = self._plates(refs, refs_folder, task, "Learning")
        os.makedirs(refs_folder, exist_ok=True)
        self._check_cancel(task)
        rotos = self.host.call_in_main(self.host.render, "roto", refs,
                                       os.path.join(refs_folder, "roto.####.exr"))
        roots = transfer.roots(hello)
        options: dict = {"overwrite": True, "reference_ids": [f"{settings.node}:{f}" for f in refs]}
        learn: dict = {}
        if settings.learn_steps > 0:
            steps = settings.learn_steps
            learn = {"steps": steps, "token_steps": max(1, steps // 5), "eval_every": steps}
        learn |= settings.learn_options
        if learn:
            options["settings"] = learn
        if transfer.choose_mode(hello, folder) == "path":
            options["save_to"] = os.path.join(folder, "models", f"{name}.smite")
        job = client.learn([transfer.source(p, roots) for p in plates], [transfer.source(r, roots) for r in rotos],
                           settings.parts, name=name, **options)
        self.host.post(self.host.set_knobs, {"smite_job": job, "smite_job_op": "learn", "smite_job_output": name,
                                             "smite_job_range": "", "smite_job_mode": ""})
        record = self._follow(client, job, task, "Learning")
        return self._learned(record)

    def _learned(self, record: dict) -> str:
        result = record.get("result") or {}
        name = result.get("model", "")
        self.host.post(self._clear_job)
        self.host.post(self.host.set_knobs, {"model": name})
        miou = result.get("validation_miou")
        score = f", selection mIoU {miou:.2f}" if isinstance(miou, (int, float)) else ""
        parts = ", ".join(p for p in result.get("part_names", []) if p != "background")
        return f"Learned part model {name} ({parts}){score}."

    def _prepare_segment(self, settings: NodeSettings) -> dict:
        if not settings.model.strip():
            raise NodeError("no part model: press Learn first, or type a model name or a .smite file")
        if settings.last < settings.first:
            raise NodeError(f"the frame range {settings.first}-{settings.last} is empty")
        folder = output_folder(settings)
        name = model_name(settings)
        pattern = os.path.join(folder, "mattes", f"{settings.node}_{name}", f"{name}.####.exr")
        return {"folder": folder, "name": name, "pattern": pattern}

    def _segment(self, client, settings: NodeSettings, extra: dict, task) -> str:
        hello = self._hello(client)
        folder, pattern, frames = extra["folder"], extra["pattern"], settings.frames
        mode = transfer.choose_mode(hello, folder)
        plates = self._plates(frames, os.path.join(folder, "plates", settings.node), task, "Segmenting")
        roots = transfer.roots(hello)
        sources = [transfer.source(p, roots) for p in plates]
        limit = (hello.get("limits") or {}).get("max_message_bytes")
        if limit and transfer.inline_bytes(sources) > 0.9 * limit:
            raise NodeError(f"{len(frames)} frames are too much to send in one go ({limit // 2**20} MiB); "
                            "use shared storage with the daemon or a shorter frame range")
        blobs: list = []
        model = settings.model.strip()
        args: dict = {"model_path": model} if model.endswith(".smite") else {"model": model}
        args["frames"] = [transfer.image_ref(s, blobs) | {"frame": f} for f, s in zip(frames, sources)]
        seg: dict = {"preset": settings.preset, "tracker": settings.tracker, "edges": settings.edges}
        if settings.window > 0:
            seg |= {"window": settings.window, "overlap": 0 if settings.preset == "fast" else settings.window // 2}
        args |= {"settings": seg, "cryptomatte": settings.cryptomatte}
        if mode == "path":
            args["output"] = pattern
        else:
            args["stream_outputs"] = False  # fetched with `result` at the end (also after a resume)
        self._check_cancel(task)
        job = client.submit("segment", args, blobs)
        self.host.post(self.host.set_knobs, {
            "smite_job": job, "smite_job_op": "segment", "smite_job_output": pattern,
            "smite_job_range": f"{settings.first}-{settings.last}", "smite_job_mode": mode})
        record = self._follow(client, job, task, "Segmenting")
        return self._segmented(client, record, pattern, mode, settings.first, settings.last)

    def _segmented(self, client, record: dict, pattern: str, mode: str, first: int, last: int) -> str:
        """Fetch inline mattes into the output folder, then wire the sequence into the node."""
        job, result = record["id"], record.get("result") or {}
        if mode == "inline":
            for entry, data in client.result(job):
                transfer.write_atomic(frame_path(pattern, int(entry["frame"])), data)
        parts = list(result.get("part_names") or [])
        self.host.call_in_main(self.host.show_mattes, pattern, parts, first, last)
        self.host.post(self._clear_job)
        return f"Segmented frames {first}-{last} into {len(parts)} part mattes ({mode} transfer)."

    def _resume(self, client, settings: NodeSettings, extra, task) -> str:
        values = self.host.call_in_main(lambda: {k: self.host.knob_value(k) for k in JOB_KNOBS})
        self._hello(client)
        record = self._follow(client, values["smite_job"], task, "Resumed job")
        if values["smite_job_op"] == "learn":
            return self._learned(record)
        first, last = (int(x) for x in values["smite_job_range"].split("-", 1)) if \
            values["smite_job_range"].count("-") == 1 else (settings.first, settings.last)
        return self._segmented(client, record, values["smite_job_output"], values["smite_job_mode"], first, last)
