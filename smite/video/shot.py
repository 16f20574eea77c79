"""Shot segmentation: frames stream in, windows of frames are segmented together, mattes stream out.

Data flow per window (method.md §6, §7, with the decisions of §0):

1. **View**: the region of the plates the model looks at. Plates larger than the model frame get a coarse
   reference pass first; the window's foreground box (all its frames, +4 %, squared) is refined when the
   model would see it at least 1.25x larger (coarse-to-fine, §7). Otherwise the view is the whole plate.
2. **Reference pass** (§6.2a): one inflated-UNet call on the window at t ~ U{95..104} -> WAS maps
   ``ref`` (F, n, S, S); the first frames take the maps carried over from the previous window (§6.2d).
3. ``fast`` preset: ``ref`` is the result. ``quality`` preset (§6.2c): point tracks on the window, then
   DDIM steps at 104..101 with latent optimisation after the first three (``smite.video.guidance``); the maps
   of the last UNet call are the result.
4. The frames up to the next window's start are turned into soft mattes at plate resolution and yielded;
   the overlap frames' maps are carried to the next window.

Only the current window's plates and maps are held, so memory does not grow with the shot.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from smite.errors import Cancelled, SmiteError
from smite.model.backbone import Backbone
from smite.model.conditioning import conditioning, encode_text, part_prompt
from smite.model.framing import Framing, check_frame, fit_image
from smite.model.partmodel import PartModel
from smite.model.reader import AttentionReader
from smite.model.reference import MAP_MODES, add_noise, part_maps, prediction_type, reference_logits, to_latents
from smite.video.crops import CropBox, crop_frames, foreground_box, paste_logits, square_up, worth_refining
from smite.video.guidance import GuidanceSettings, LatentOptimizer, ddim_step
from smite.video.mattes import FrameMattes, maps_to_plate, mattes_from_logits, refine_frame
from smite.video.settings import SegmentSettings
from smite.video.tracking import Tracker, get_tracker
from smite.video.voting import grid_queries, tracks_for_voting
from smite.video.windows import Window, plan_windows, window_seed


@dataclass(frozen=True)
class ShotProgress:
    """Progress of a shot: ``done`` of ``total`` frames written, in window ``window`` of ``windows``."""

    done: int
    total: int
    window: int
    windows: int
    stage: str
    elapsed: float


@dataclass(frozen=True)
class View:
    """The plate region ``box`` the model sees, fitted into its square frame by ``framing``."""

    box: CropBox
    framing: Framing

    @classmethod
    def of(cls, box: CropBox, resolution: int) -> View:
        return cls(box, Framing((box.height, box.width), resolution))

    def images(self, plates: np.ndarray) -> np.ndarray:
        """Plates (F, H, W, 3) -> model-frame images (F, R, R, 3) of this view."""
        return np.stack([fit_image(p, self.framing) for p in crop_frames(plates, self.box)])

    def to_plate(self, maps: torch.Tensor) -> torch.Tensor:
        """Latent-grid maps (n, S, S) -> maps (n, h, w) over the view's box."""
        return maps_to_plate(maps, self.framing)


def reframe(maps: torch.Tensor, src: View, dst: View) -> torch.Tensor:
    """Latent-grid maps (F, n, S, S) seen through ``src`` resampled onto the latent grid of ``dst``.

    Both views map model-frame pixels to plate pixels affinely, so this is one bilinear ``grid_sample``
    (values outside ``src`` repeat its border).
    """
    if src == dst:
        return maps
    size, res = maps.shape[-1], dst.framing.resolution

    def origins(view: View, axis: int) -> tuple[float, float]:
        """(model-frame pixel, plate pixel) of the view's box corner along ``axis`` (0 = y, 1 = x)."""
        return view.framing.box[axis], (view.box.top, view.box.left)[axis]

    def src_from_dst(u: torch.Tensor, axis: int) -> torch.Tensor:
        (m_dst, p_dst), (m_src, p_src) = origins(dst, axis), origins(src, axis)
        plate = (u - m_dst) / dst.framing.scale + p_dst
        return (plate - p_src) * src.framing.scale + m_src

    centres = (torch.arange(size, dtype=torch.float64) + 0.5) * res / size  # model pixels of dst's cells
    ys, xs = (src_from_dst(centres, a) / res * 2 - 1 for a in (0, 1))
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).to(maps.dtype)  # (S, S, 2) as (x, y)
    grid = grid.expand(len(maps), size, size, 2)
    return F.grid_sample(maps, grid, mode="bilinear", padding_mode="border", align_corners=False)


@dataclass
class WindowMaps:
    """Result of one window: ``maps`` (F, n, S, S) seen through ``view``; with coarse-to-fine also the
    whole-plate ``coarse`` maps (F, n, S, S) through ``whole`` that the refined box is pasted into."""

    maps: torch.Tensor
    view: View
    coarse: torch.Tensor | None = None
    whole: View | None = None


@dataclass
class _Run:
    """Progress and cancel hooks of the shot being segmented."""

    total: int
    windows: int
    cancel: Callable[[], bool] | None = None
    progress: Callable[[ShotProgress], None] | None = None
    started: float = field(default_factory=time.time)
    window: int = 0
    done: int = 0

    def report(self, stage: str) -> None:
        if self.progress is not None:
            self.progress(ShotProgress(self.done, self.total, self.window, self.windows, stage,
                                       time.time() - self.started))

    def check_cancel(self) -> None:
        if self.cancel is not None and self.cancel():
            raise Cancelled("segmentation")


class _Plates:
    """Frames pulled lazily from an iterable, kept only while a window still needs them."""

    def __init__(self, frames: Iterable[np.ndarray]) -> None:
        self.source, self.held, self.read = iter(frames), {}, 0
        self.size: tuple[int, int] | None = None

    def window(self, start: int, end: int) -> np.ndarray:
        """Plates [start, end) as float32 (F, H, W, 3); frames before ``start`` are released."""
        for index in [i for i in self.held if i < start]:
            del self.held[index]
        while self.read < end:
            frame = next(self.source, None)
            if frame is None:
                raise SmiteError(f"the shot ended after {self.read} frames; expected {end}")
            self._check(frame, self.read)
            self.held[self.read] = np.asarray(frame, np.float32)
            self.read += 1
        return np.stack([self.held[i] for i in range(start, end)])

    def _check(self, frame: np.ndarray, index: int) -> None:
        check_frame(frame, index)
        if self.size is None:
            self.size = frame.shape[:2]
        elif frame.shape[:2] != self.size:
            raise SmiteError(f"frame {index} is {frame.shape[1]}x{frame.shape[0]} but the shot is "
                             f"{self.size[1]}x{self.size[0]}: all plates of a shot must have one size")


class ShotSegmenter:
    """Segments a shot window by window with a part model (presets ``fast`` and ``quality``)."""

    def __init__(
        self, backbone: Backbone, part_model: PartModel, settings: SegmentSettings | None = None,
        reader: AttentionReader | None = None, tracker: Tracker | None = None,
    ) -> None:
        self.backbone, self.part_model = backbone, part_model
        self.settings = settings or SegmentSettings()
        self.map_mode = self.settings.map_mode or part_model.map_mode
        if self.map_mode not in MAP_MODES:
            raise SmiteError(f"unknown map mode {self.map_mode!r}; use one of {', '.join(MAP_MODES)}")
        part_model.check_backbone(backbone)
        self.prediction = prediction_type(backbone)
        self.guidance = self.settings.guidance or GuidanceSettings.for_backbone(backbone)
        self.guided = self.settings.preset == "quality" and self.guidance.guided_steps > 0
        needs_tracks = self.guided and self.guidance.lambda_track > 0
        self.tracker = tracker or (self._make_tracker() if needs_tracks else None)
        self.reader = reader or AttentionReader(backbone)
        self.prompt = encode_text(backbone, part_prompt(part_model.part_names))
        self.num_parts = part_model.num_parts
        self.optimizer = LatentOptimizer(self._chunk_maps, self.guidance, backbone.scheduler.alphas_cumprod)

    def _make_tracker(self) -> Tracker:
        name = self.settings.tracker
        if name != "cotracker":
            return get_tracker(name)
        checkpoint = self.settings.tracker_checkpoint or os.environ.get("SMITE_COTRACKER_CHECKPOINT")
        return get_tracker(name, checkpoint=checkpoint, device=str(self.backbone.device))

    def windows(self, num_frames: int) -> list[Window]:
        """The windows this segmenter uses on a shot of ``num_frames`` frames."""
        window, overlap = self.settings.window_and_overlap()
        return plan_windows(num_frames, window, overlap)

    def segment(
        self, frames: Iterable[np.ndarray], num_frames: int | None = None,
        cancel: Callable[[], bool] | None = None, progress: Callable[[ShotProgress], None] | None = None,
    ) -> Iterator[FrameMattes]:
        """Yield ``FrameMattes`` for each plate (H, W, 3) float32 of the shot, in order.

        ``num_frames`` is needed when ``frames`` is a generator (windows are planned up front); plates are
        read as the windows reach them and released after.
        """
        if num_frames is None:
            frames = list(frames)
            num_frames = len(frames)
        windows = self.windows(num_frames)
        plates = _Plates(frames)
        self._run = run = _Run(num_frames, len(windows), cancel, progress)
        carried: tuple[torch.Tensor, View] | None = None
        for k, win in enumerate(windows):
            run.window = k
            run.check_cancel()
            window_plates = plates.window(win.start, win.end)
            seed = window_seed(self.settings.seed, self.settings.shot_offset + win.start)
            # The part model's K/V are in the shared backbone only while a window runs, never across a yield:
            # a generator left suspended (a failed consumer, a traceback kept alive) and closed later by the
            # garbage collector must not restore the base weights in the middle of another job.
            with self.part_model.applied(self.backbone) as tokens:
                self.cond = conditioning(self.prompt, tokens).detach()
                result = self._window(window_plates, carried, torch.Generator().manual_seed(seed))
            carried = (result.maps[win.write:], result.view) if win.carry else None
            for j in range(win.write):
                yield self._mattes(result, j, window_plates[j])
                run.done += 1
            run.report("written")

    # -- one window -------------------------------------------------------------------------------------------

    def _window(self, plates: np.ndarray, carried, generator: torch.Generator) -> WindowMaps:
        resolution = self.backbone.resolution
        whole = View.of(CropBox(0, 0, *plates.shape[1:3]), resolution)
        if not (self.settings.coarse_to_fine and max(plates.shape[1:3]) > resolution):
            return WindowMaps(self._maps(whole, plates, carried, generator), whole)
        self._run.report("coarse pass")
        coarse = self._reference(whole.images(plates), generator)
        labels = np.stack([whole.to_plate(m).argmax(0).cpu().numpy() for m in coarse])  # maps: model's device
        box = foreground_box(labels)
        if not worth_refining(box, plates.shape[1:3], resolution):
            refined = coarse if not self.guided else self._maps(whole, plates, carried, generator)
            return WindowMaps(refined, whole)
        view = View.of(square_up(box, plates.shape[1:3]), resolution)
        return WindowMaps(self._maps(view, plates, carried, generator), view, coarse, whole)

    def _maps(self, view: View, plates: np.ndarray, carried, generator: torch.Generator) -> torch.Tensor:
        """Final maps (F, n, S, S) of the window's plates seen through ``view``."""
        images = view.images(plates)
        self._run.report("reference pass")
        ref = self._reference(images, generator)
        if carried is not None:
            maps, src = carried
            ref[: len(maps)] = reframe(maps, src, view)
        if not self.guided:
            return ref
        return self._guided(images, ref, generator)

    def _reference(self, images: np.ndarray, generator: torch.Generator) -> torch.Tensor:
        return reference_logits(self.backbone, self.reader, images, self.cond, generator, self.num_parts,
                                self.map_mode, frames=len(images))

    def _guided(self, images: np.ndarray, ref: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """§6.2c: tracks, then DDIM steps over ``guidance.timesteps`` with latent optimisation between them."""
        g, bb = self.guidance, self.backbone
        tracks_xy, visible = self._tracks(images)
        frames = len(images)
        cond = self.cond.expand(frames, -1, -1)
        z = add_noise(bb, to_latents(bb, images, generator), g.timesteps[0], generator)
        for i, t in enumerate(g.timesteps):
            self._run.report(f"denoising t={t}")
            with torch.no_grad():
                eps = self.reader.run(z, t, cond, frames=frames)
                current = torch.stack([part_maps(self.reader, f, self.num_parts, self.map_mode) for f in range(frames)])
            if i == len(g.timesteps) - 1:
                break
            z = ddim_step(z, eps, bb.scheduler.alphas_cumprod, t, t - 1, self.prediction)
            if i < g.guided_steps and g.iterations:
                self._run.report(f"guidance {i + 1}/{g.guided_steps}")
                z = self.optimizer.optimise(z, t, i, current, ref, tracks_xy, visible, self._run.check_cancel)
        return current

    def _chunk_maps(self, z: torch.Tensor, t: int) -> torch.Tensor:
        """Differentiable maps (Fc, n, S, S) of a UNet call on the chunk ``z`` (Fc, 4, S, S) alone."""
        self.reader.run(z, t, self.cond.expand(len(z), -1, -1), frames=len(z))
        return torch.stack([part_maps(self.reader, f, self.num_parts, self.map_mode) for f in range(len(z))])

    def _tracks(self, images: np.ndarray) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Grid tracks (F, F, P, 2) and visibility (F, F, P) of every latent cell of every frame (§6.5)."""
        if self.tracker is None:
            return None, None
        self._run.report("tracking")
        size, grid = images.shape[1:3], (self.backbone.latent_size,) * 2
        tracks, visible = self.tracker.track(images.astype(np.float32), grid_queries(len(images), size, grid))
        return tracks_for_voting(tracks, visible, size, grid)

    # -- output -----------------------------------------------------------------------------------------------

    def _mattes(self, result: WindowMaps, j: int, plate: np.ndarray) -> FrameMattes:
        fine = result.view.to_plate(result.maps[j])
        if result.coarse is None:
            logits = fine
        else:
            coarse = result.whole.to_plate(result.coarse[j]).cpu().numpy()  # the paste runs on the host
            logits = torch.from_numpy(paste_logits(coarse, fine.cpu().numpy(), result.view.box))
        mattes = mattes_from_logits(logits, self.settings.matte_temperature)
        cell = max(result.view.box.height, result.view.box.width) / self.backbone.latent_size  # plate px per cell
        return refine_frame(mattes, plate, cell, self.settings.edges)
