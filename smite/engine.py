"""The engine facade used by the CLI, the daemon and the farm: files in, part models and matte EXRs out.

``Engine`` keeps one backbone warm (loaded on first use, freed by ``unload``) and runs the data flow
frames + reference masks -> part model -> maps -> mattes, reporting progress and honouring a cancel hook.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from smite import __version__
from smite.errors import SmiteError
from smite.io.images import read_image, read_reference_mask


class Engine:
    """A warm backbone plus the operations on it. Not thread-safe: one job at a time (the daemon queues)."""

    def __init__(self, model: str | None = None, device: str | None = None, precision: str | None = None) -> None:
        """``model`` pins the backbone; without it the backbone follows the part model in use (its recorded
        base model when that loads here), else ``$SMITE_BACKBONE`` / the config file / the default.
        ``device`` and ``precision`` default the same way (``$SMITE_DEVICE``, ``$SMITE_PRECISION``)."""
        from smite import config

        self.model = model
        self.device = config.value("device", device)
        self.precision = config.value("precision", precision)
        self._spec = model  # the spec loaded (or to load); None: the configured default
        self._backbone = None
        self._reader = None

    @property
    def pinned(self) -> bool:
        """Whether the backbone was named explicitly (then a part model of another one is an error)."""
        return self.model is not None

    @property
    def spec(self) -> str:
        """The backbone spec that is (or will be) loaded."""
        from smite import config

        return self._spec or config.value("backbone")

    @property
    def backbone(self):
        """The loaded backbone (loads it on first use)."""
        if self._backbone is None:
            from smite.model.backbone import load_backbone
            from smite.model.reader import AttentionReader

            self._backbone = load_backbone(self.spec, self.device, self.precision)
            self._reader = AttentionReader(self._backbone)
        return self._backbone

    def backbone_for(self, part_model=None):
        """The backbone to use with ``part_model`` (None: to learn a new one), switching an unpinned engine to
        the backbone the part model names when that loads here, else to the configured default."""
        if self.pinned:
            return self.backbone
        if part_model is not None and self.loaded and self._backbone.fingerprint == part_model.base_fingerprint:
            return self._backbone
        from smite import config
        from smite.model.backbone import backbone_spec_of

        named = backbone_spec_of(part_model.base_model) if part_model is not None else None
        target = named or config.value("backbone")
        if self.loaded and target != self.spec:
            self.unload()
        self._spec = target
        return self.backbone

    @property
    def loaded(self) -> bool:
        return self._backbone is not None

    def unload(self) -> None:
        """Free the backbone (and its GPU memory); the next operation loads it again."""
        self._backbone = self._reader = None
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def info(self) -> dict:
        """Versions, device and backbone facts (loads nothing that is not loaded yet)."""
        import diffusers
        import torch

        from smite.model.backbone import resolve_device

        info = {
            "smite": __version__,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "diffusers": diffusers.__version__,
            "device": str(resolve_device(self.device)),
            "cuda": torch.cuda.is_available(),
            "backbone": self.spec,
            "loaded": self.loaded,
        }
        if self.loaded:
            bb = self._backbone
            info |= {"backbone_id": bb.model_id, "fingerprint": bb.fingerprint, "resolution": bb.resolution,
                     "precision": bb.precision}
        if torch.cuda.is_available():
            free, total = torch.cuda.mem_get_info()
            info |= {"vram_free": free, "vram_total": total}
        return info

    def learn(
        self, frames: Sequence[np.ndarray], masks: Sequence[np.ndarray], part_names: Sequence[str],
        reference_ids: Sequence[str] | None = None, settings=None, progress: Callable | None = None,
        cancel: Callable[[], bool] | None = None, start_from=None,
    ):
        """Learn a ``PartModel`` from frames (H, W, 3) float32 and label masks (H, W) int (0 = background).
        ``start_from``: a part model to continue from (warm re-learning, ``smite.learn.warm``)."""
        from smite.learn.learner import LearnSettings, PartLearner

        if start_from is not None:
            from smite.learn.warm import relearn

            return relearn(self.backbone_for(start_from), start_from, frames, masks, part_names, reference_ids,
                           settings, progress, cancel, reader=self._reader)
        bb = self.backbone_for(None)
        settings = settings or LearnSettings.for_backbone(bb)
        learner = PartLearner(bb, settings, reader=self._reader)
        return learner.learn(frames, masks, part_names, reference_ids, progress, cancel)

    def learn_files(
        self, frame_paths: Sequence[Path], mask_sources: Sequence, part_names: Sequence[str],
        colorspace: str | None = None, **kwargs,
    ):
        """``learn`` from files: plates and masks in any form ``read_reference_mask`` accepts."""
        frames = [read_image(p, colorspace) for p in frame_paths]
        masks = [read_reference_mask(m, list(part_names)) for m in mask_sources]
        ids = kwargs.pop("reference_ids", None) or [Path(p).name for p in frame_paths]
        return self.learn(frames, masks, part_names, reference_ids=ids, **kwargs)

    def segment(
        self, part_model, frames: Iterable[np.ndarray], settings=None, cancel: Callable[[], bool] | None = None,
        num_frames: int | None = None, progress: Callable | None = None,
    ) -> Iterator:
        """Yield ``FrameMattes`` for each plate (H, W, 3) float32 of a shot, in order (see ``smite.video.shot``).

        Pass ``num_frames`` with a generator of plates so they stream; ``progress`` gets ``ShotProgress``.
        """
        from smite.video.shot import ShotSegmenter

        segmenter = ShotSegmenter(self.backbone_for(part_model), part_model, settings, reader=self._reader)
        yield from segmenter.segment(frames, num_frames, cancel, progress)

    def segment_files(
        self, part_model, frames: Sequence[tuple[int, Path]], output_pattern: str, settings=None,
        colorspace: str | None = None, progress: Callable | None = None,
        cancel: Callable[[], bool] | None = None, name: str | None = None, cryptomatte_ranks: int | None = None,
    ) -> list[Path]:
        """Segment numbered plates and write one matte EXR per frame to ``output_pattern`` (``%04d``/``####``).

        ``progress`` receives ``smite.video.shot.ShotProgress`` as windows advance. Each EXR carries its plate's
        pixel aspect, timecode, frame rate and camera attributes and the ``smite:`` provenance of
        ``smite.provenance`` (``name``: the part model's name, e.g. its file stem); with ``cryptomatte_ranks``
        also that many Cryptomatte ranks (``smite.io.cryptomatte``)."""
        from smite.io.cryptomatte import matte_writer
        from smite.io.plate_header import plate_attributes
        from smite.io.sequences import expand_frames
        from smite.provenance import matte_metadata

        numbers = [n for n, _ in frames]
        outputs = [p for _, p in expand_frames(output_pattern, ",".join(map(str, numbers)))]
        if len(set(outputs)) != len(outputs):
            raise SmiteError(f"output {output_pattern!r} needs a frame placeholder (%04d or ####) for several frames")
        plates = (read_image(p, colorspace) for _, p in frames)
        written, write = [], matte_writer(cryptomatte_ranks)
        meta = matte_metadata(part_model, settings, colorspace, name)
        mattes_of_shot = self.segment(part_model, plates, settings, cancel, len(frames), progress)
        for (number, plate), out, mattes in zip(frames, outputs, mattes_of_shot):
            out.parent.mkdir(parents=True, exist_ok=True)
            written.append(write(out, mattes.alphas, mattes.labels, part_model.part_names, meta | {"frame": number},
                                 plate=plate_attributes(plate)))
        return written
