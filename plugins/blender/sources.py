"""Blender data -> plans: the plate sequence and its frame mapping, the reference frames, the parts."""

import os

import bpy

from . import raster
from .framemap import FrameMap, Sequence, SequenceError, map_sequence, parse_frames, parse_sequence
from .naming import sanitize_part_names
from .plan import LearnPlan, SegmentPlan, learn_plan, matte_pattern, model_name, reference_renders


def plate(settings) -> tuple[Sequence, dict[int, str]]:
    """The plate sequence and its files by frame number."""
    block = settings.plate_image if settings.plate_source == "IMAGE" else settings.plate_clip
    if block is None:
        raise SequenceError("choose a plate: an Image or a Movie Clip holding an image sequence")
    seq = parse_sequence(bpy.path.abspath(block.filepath, library=block.library))
    files = {f: seq.path(f) for f in seq.frames()}
    if not files:
        raise SequenceError(f"no plate files match {seq.pattern}")
    return seq, files


def plate_map(scene, settings, files: dict[int, str]) -> FrameMap:
    """How scene frames show plate files: the plate's own Image node in the compositor when there is one,
    else the automatic mapping (same numbers when the ranges overlap, else the first file at the scene start)."""
    from .tree import compositor_tree

    tree = compositor_tree(scene, create=False)
    if settings.plate_source == "IMAGE" and tree is not None:
        for node in tree.nodes:
            if node.bl_idname == "CompositorNodeImage" and node.image == settings.plate_image \
                    and node.frame_duration > 1:
                return FrameMap(node.frame_start, node.frame_offset, node.frame_duration)
    return map_sequence(min(files), max(files), scene.frame_start, scene.frame_end)


def plate_size(settings, first_file: str) -> tuple[int, int]:
    """The plate's resolution (a sequence image not yet displayed has none: its first file is read)."""
    block = settings.plate_image if settings.plate_source == "IMAGE" else settings.plate_clip
    width, height = block.size[:]
    if width <= 0 or height <= 0:
        probe = bpy.data.images.load(first_file, check_existing=False)
        try:
            width, height = probe.size[:]
        finally:
            bpy.data.images.remove(probe)
    if width <= 0 or height <= 0:
        raise SequenceError(f"cannot read the size of plate {block.name!r} ({first_file})")
    return width, height


def _fcurves(action):
    if hasattr(action, "layers"):  # 4.4+ layered actions (5.x: the only kind)
        for layer in action.layers:
            for strip in layer.strips:
                for bag in getattr(strip, "channelbags", ()):
                    yield from bag.fcurves
    if hasattr(action, "fcurves"):
        yield from action.fcurves


def keyed_frames(mask) -> list[int]:
    """Frames where the mask is keyed (its animation's keyframes)."""
    data = mask.animation_data
    if data is None or data.action is None:
        return []
    return sorted({int(round(k.co.x)) for fc in _fcurves(data.action) for k in fc.keyframe_points})


def fill_parts(settings, scene) -> None:
    """Parts from the mask layers (layer name = part name) and reference frames from its keys."""
    settings.parts.clear()
    for layer in settings.mask.layers:
        item = settings.parts.add()
        item.name, item.layer = layer.name, layer.name
    settings.ref_frames = ",".join(str(f) for f in keyed_frames(settings.mask)) or str(scene.frame_current)


def reference_frames(scene, settings) -> list[int]:
    return parse_frames(settings.ref_frames) or [scene.frame_current]


def output_folder(settings) -> str:
    return os.path.abspath(bpy.path.abspath(settings.output_dir or "//smite/"))


def current_model(scene, settings, name: str = "") -> str:
    source = name or settings.model_name or (settings.mask.name if settings.mask else "") or scene.name
    return model_name(source)


def learn_settings(steps: int) -> dict:
    """Daemon learn settings: empty keeps the backbone's defaults."""
    if steps <= 0:
        return {}
    return {"steps": steps, "token_steps": max(1, steps // 5), "eval_every": max(1, steps // 2)}


def make_learn_plan(scene, settings, name: str = "", steps: int = 0) -> LearnPlan:
    """Rasterise the mask layers (or read label maps) at the reference frames; the learn request."""
    _, files = plate(settings)
    fmap = plate_map(scene, settings, files)
    frames = reference_frames(scene, settings)
    plates = {f: files[fmap.file_frame(f)] for f in frames if fmap.file_frame(f) in files}
    missing = [f for f in frames if f not in plates]
    if missing:
        raise SequenceError(f"reference frame {missing[0]} shows plate frame {fmap.file_frame(missing[0])}, "
                            "which has no file")
    model = current_model(scene, settings, name)
    if settings.reference_source == "LABELS":
        labels = parse_sequence(bpy.path.abspath(settings.label_maps))
        parts = sanitize_part_names([p.name for p in settings.parts if p.use])
        masks = [labels.path(fmap.file_frame(f)) for f in frames]
        return LearnPlan(model, parts, [plates[f] for f in frames], list(masks),
                         [os.path.basename(plates[f]) for f in frames], learn_settings(steps))
    if settings.mask is None:
        raise SequenceError("choose a Mask (one layer per part) or use label maps")
    if not len(settings.parts):
        fill_parts(settings, scene)
    used = [p for p in settings.parts if p.use]
    renders = reference_renders([p.layer or p.name for p in used], [p.name for p in used], frames,
                                os.path.join(output_folder(settings), model))
    width, height = plate_size(settings, files[min(files)])
    raster.render_layers(settings.mask, renders, width, height)
    return learn_plan(model, renders, plates, learn_settings(steps))


def make_segment_plan(scene, settings, model: str = "", frames_text: str = "") -> SegmentPlan:
    """Plate files of the scene range (or ``frames_text``) and where the mattes go."""
    _, files = plate(settings)
    fmap = plate_map(scene, settings, files)
    scene_frames = parse_frames(frames_text) or list(range(scene.frame_start, scene.frame_end + 1))
    wanted = sorted({fmap.file_frame(f) for f in scene_frames} & set(files))
    if not wanted:
        raise SequenceError("no plate file is shown in the frames to segment")
    name = current_model(scene, settings, model)
    return SegmentPlan(name, {f: files[f] for f in wanted}, matte_pattern(output_folder(settings), name),
                       settings.cryptomatte, settings.preset, settings.edges)
