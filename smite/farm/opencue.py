"""``smite farm opencue``: the shot's matte job for OpenCue, built with opencue-pyoutline.

Two layers: ``learn`` (one frame: ``smite learn`` writes the part model) and ``segment`` (the shot's range,
chunked by ``chunk_size``: each chunk runs ``smite render --chunk #FRAME_START#-#FRAME_END#``), with a
layer-on-layer dependency, so every chunk waits for the whole learn layer. With an existing part model the
learn layer is left out. The job spec XML is written with ``serialize_simple`` (raw commands: render nodes
need SMITE, not PyOutline); ``--submit`` launches it on the configured Cuebot.

PyOutline is the optional extra ``smite-vfx[farm]``; it is imported here only, when the command runs.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from smite.errors import SmiteError
from smite.io.images import atomic_path
from smite.io.sequences import parse_frame_range

CHUNK_TOKENS = "#FRAME_START#-#FRAME_END#"  # OpenCue replaces these with the chunk's first and last frame


@dataclass(frozen=True)
class ShotJob:
    """The job's parameters (the OpenJD template's, by the same names)."""

    name: str
    plates: str
    frames: str
    part_model: str
    output: str
    ref_frames: str | None = None
    masks: str | None = None
    parts: str | None = None
    chunk_size: int = 16
    context: int = 8
    window: int = 0  # 0: the preset's
    preset: str = "quality"
    backbone: str | None = None
    device: str | None = None
    smite: str = "smite"
    show: str | None = None
    shot: str | None = None
    user: str | None = None

    @property
    def learns(self) -> bool:
        """Whether the job learns the part model (else it segments with an existing one)."""
        return self.ref_frames is not None

    def check(self) -> None:
        """One-line errors for parameters that cannot make a job."""
        parse_frame_range(self.frames)
        if self.chunk_size < 1 or self.context < 0 or self.window < 0:
            raise SmiteError(f"ChunkSize must be >= 1, Context and Window >= 0, got {self.chunk_size}, "
                             f"{self.context} and {self.window}")
        if self.learns and not (self.masks and self.parts):
            raise SmiteError("a job that learns needs RefFrames, Masks and Parts")
        if not self.learns and not Path(self.part_model).is_file():
            raise SmiteError(f"no RefFrames and no part model at {self.part_model}: give RefFrames/Masks/Parts "
                             "to learn one, or an existing .smite file")


def _command(words: Sequence[str], raw: str = "") -> str:
    """A shell command line (RQD runs it through a shell) with ``raw`` appended unquoted (OpenCue tokens)."""
    return " ".join([shlex.join(words)] + ([raw] if raw else []))


def _backbone_words(job: ShotJob) -> list[str]:
    return [w for flag, value in (("--backbone", job.backbone), ("--device", job.device)) if value
            for w in (flag, value)]


def learn_command(job: ShotJob) -> str:
    """The learn layer's command: reference frames + masks -> the part model."""
    return _command([job.smite, "learn", "--frames", job.plates, "--refs", job.ref_frames, "--masks", job.masks,
                     "--names", job.parts, "-o", job.part_model, *_backbone_words(job)])


def render_command(job: ShotJob) -> str:
    """The segment layer's command; OpenCue fills in each chunk's frames."""
    words = [job.smite, "render", job.part_model, "--frames", job.plates, "--range", job.frames,
             "--context", str(job.context), "-o", job.output, "--preset", job.preset,
             *(["--window", str(job.window)] if job.window else []), *_backbone_words(job)]
    return _command(words, f"--chunk {CHUNK_TOKENS}")


def build_outline(job: ShotJob):
    """The PyOutline ``Outline`` of the job: learn layer (if learning), segment layer, layer-on-layer depend."""
    job.check()
    try:
        from outline import Outline
        from outline.depend import DependType
        from outline.modules.shell import Shell
    except ImportError as exc:
        raise SmiteError(f"OpenCue jobs need PyOutline: pip install 'smite-vfx[farm]' ({exc})") from exc
    frames = parse_frame_range(job.frames)
    outline = Outline(job.name, frame_range=job.frames, show=job.show, shot=job.shot, user=job.user)
    segment = Shell("segment", command=render_command(job), range=job.frames, chunk=job.chunk_size)
    if job.learns:
        learn = Shell("learn", command=learn_command(job), range=str(frames[0]), chunk=1)
        outline.add_layer(learn)
        segment.depend_on(learn, DependType.LayerOnLayer)
    outline.add_layer(segment)
    return outline


def job_spec(job: ShotJob) -> str:
    """The OpenCue job spec XML (raw commands), built without a Cuebot."""
    from outline.backend import cue
    from outline.cuerun import OutlineLauncher

    return cue.serialize_simple(OutlineLauncher(build_outline(job), range=job.frames))


def write_spec(job: ShotJob, path: Path) -> Path:
    """Write the job spec XML atomically."""
    spec = job_spec(job)
    with atomic_path(path) as tmp:
        tmp.write_text(spec)
    return path


def submit(job: ShotJob) -> list[str]:
    """Launch the job on the Cuebot named by ``CUEBOT_HOSTS`` or the OpenCue config; returns the job names."""
    if not (os.environ.get("CUEBOT_HOSTS") or os.environ.get("OPENCUE_CONFIG_FILE")):
        raise SmiteError("no Cuebot configured: set CUEBOT_HOSTS (or OPENCUE_CONFIG_FILE) to submit; "
                         "without --submit the job spec is only written")
    from outline.cuerun import launch

    launched = launch(build_outline(job), use_pycuerun=False, range=job.frames)
    return [j.name() if callable(getattr(j, "name", None)) else str(j) for j in (launched or [])]
