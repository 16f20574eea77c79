"""Masks to reference mattes. Blender has no rasterise API, so each mask layer is rendered alone through a
temporary compositor Mask node (hosts.md) at the plate's resolution, as a float EXR: feathered edges stay
soft. A temporary scene keeps the user's scene and tree untouched."""

import bpy

from .plan import ReferenceRender
from .tree import compositor_tree, output_socket


def _raster_scene(mask, width: int, height: int):
    scene = bpy.data.scenes.new(".smite_raster")
    r = scene.render
    r.resolution_x, r.resolution_y, r.resolution_percentage = width, height, 100
    r.engine = "BLENDER_WORKBENCH"  # never EEVEE headless (hangs); nothing 3-D is rendered anyway
    r.use_compositing = True
    if hasattr(r, "compositor_device"):
        r.compositor_device = "CPU"  # 5.3 defaults to GPU and crashes headless
    scene.view_settings.view_transform = "Standard"
    fmt = r.image_settings
    if hasattr(fmt, "media_type"):
        fmt.media_type = "IMAGE"
    fmt.file_format, fmt.color_mode, fmt.color_depth, fmt.exr_codec = "OPEN_EXR", "BW", "32", "ZIP"
    tree = compositor_tree(scene)
    for node in list(tree.nodes):
        tree.nodes.remove(node)  # 4.x's default tree has Render Layers: it would render the 3-D scene
    node = tree.nodes.new("CompositorNodeMask")
    node.mask = mask  # its default size source is the scene's resolution (4.x property, 5.x input socket)
    tree.links.new(node.outputs[0], output_socket(tree))
    return scene, tree


def render_layers(mask, renders: list[ReferenceRender], width: int, height: int) -> None:
    """Write each ``ReferenceRender``: its mask layer alone, at its scene frame, as a one-channel float EXR."""
    hidden = {layer.name: layer.hide_render for layer in mask.layers}
    missing = [r.layer for r in renders if r.layer not in hidden]
    if missing:
        raise ValueError(f"mask {mask.name!r} has no layer {missing[0]!r}")
    scene, tree = _raster_scene(mask, width, height)
    try:
        for r in renders:
            for layer in mask.layers:
                layer.hide_render = layer.name != r.layer
            scene.frame_set(r.scene_frame)
            scene.render.filepath = r.path
            bpy.ops.render.render(write_still=True, scene=scene.name)
    finally:
        for layer in mask.layers:
            layer.hide_render = hidden[layer.name]
        is_group = getattr(scene, "compositing_node_group", None) is tree
        bpy.data.scenes.remove(scene)
        if is_group and tree is not None:
            bpy.data.node_groups.remove(tree)
