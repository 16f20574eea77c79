"""The scene's compositor tree across versions (4.2-4.5: ``scene.node_tree``; 5.x:
``scene.compositing_node_group``) and the matte Image node it gets."""

import bpy

from .framemap import SequenceError, map_sequence, parse_sequence
from .naming import socket_name

MATTE_NODE = "SMITE Mattes"
CRYPTO_NODE = "SMITE Cryptomatte"


def compositor_tree(scene, create: bool = True):
    """The scene's compositor node tree, created when missing (5.x: a CompositorNodeTree node group)."""
    if hasattr(scene, "node_tree") and not hasattr(scene, "compositing_node_group"):  # 4.x
        if scene.node_tree is None and create:
            scene.use_nodes = True
        return scene.node_tree
    tree = scene.compositing_node_group
    if tree is None and create:
        tree = bpy.data.node_groups.new(f"{scene.name} Compositing", "CompositorNodeTree")
        scene.compositing_node_group = tree
    return tree


def output_socket(tree):
    """The input that the compositor renders: Composite's Image (4.x) or the group output's Image (5.x)."""
    if hasattr(bpy.types, "CompositorNodeComposite"):
        node = next((n for n in tree.nodes if n.bl_idname == "CompositorNodeComposite"), None)
        node = node or tree.nodes.new("CompositorNodeComposite")
        return node.inputs["Image"]
    if not any(i.item_type == "SOCKET" and i.in_out == "OUTPUT" for i in tree.interface.items_tree):
        tree.interface.new_socket("Image", in_out="OUTPUT", socket_type="NodeSocketColor")
    node = next((n for n in tree.nodes if n.bl_idname == "NodeGroupOutput"), None)
    node = node or tree.nodes.new("NodeGroupOutput")
    return node.inputs[0]


def _free_location(tree, y: float = 0.0) -> tuple[float, float]:
    xs = [n.location.x for n in tree.nodes]
    return ((min(xs) - 400.0) if xs else 0.0, y)


def load_mattes(scene, pattern: str, mapping: str = "AUTO", cryptomatte: bool = False, fmap=None):
    """Load a matte EXR sequence (``####``) as a multilayer image sequence into the scene's compositor: one
    VALUE socket ``smite_<part>`` per part; re-running updates the same node. ``fmap`` (a ``FrameMap``)
    overrides the ``mapping`` mode (AUTO, SAME, SCENE_START). Returns the Image node."""
    seq = parse_sequence(bpy.path.abspath(pattern))
    frames = seq.frames()
    if not frames:
        raise SequenceError(f"no matte files match {seq.pattern}")
    tree = compositor_tree(scene)
    node = tree.nodes.get(MATTE_NODE)
    if node is None:
        node = tree.nodes.new("CompositorNodeImage")
        node.name, node.label = MATTE_NODE, "SMITE mattes"
        node.location = _free_location(tree)
    first = seq.path(frames[0])
    image = node.image
    if image is None or bpy.path.abspath(image.filepath) != first:
        image = bpy.data.images.load(first, check_existing=True)
    image.source = "SEQUENCE"
    image.reload()  # new parts or frames after a re-run
    node.image = image
    fmap = fmap or map_sequence(frames[0], frames[-1], scene.frame_start, scene.frame_end, mapping)
    node.frame_start, node.frame_offset, node.frame_duration = fmap.frame_start, fmap.frame_offset, fmap.frame_duration
    if cryptomatte:
        _cryptomatte_node(tree, node, image)
    return node


def part_sockets(node) -> list[str]:
    """The ``smite_<part>`` outputs of a matte node (``smite_label`` excluded)."""
    return [s.name for s in node.outputs if s.name.startswith("smite_") and s.name != socket_name("label")]


def _cryptomatte_node(tree, image_node, image) -> None:
    node = tree.nodes.get(CRYPTO_NODE)
    if node is None:
        node = tree.nodes.new("CompositorNodeCryptomatteV2")
        node.name, node.label = CRYPTO_NODE, "SMITE Cryptomatte"
        node.location = (image_node.location.x, image_node.location.y - 400.0)
    node.source = "IMAGE"
    node.image = image
    node.frame_start, node.frame_offset = image_node.frame_start, image_node.frame_offset
    node.frame_duration = image_node.frame_duration
