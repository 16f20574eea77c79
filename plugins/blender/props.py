"""The SMITE settings of a scene (``scene.smite``): sources, parts, job state. Saved in the .blend, so a
reopened file finds its running job again."""

import bpy

PRESETS = [("fast", "Fast", "One pass per window"), ("quality", "Quality", "Temporal guidance along point tracks")]
EDGES = [("refined", "Refined", "Mattes re-solved on the plate along the part edges"),
         ("bilinear", "Bilinear", "The model's maps resized: softer edges, cheaper")]


class SmitePart(bpy.types.PropertyGroup):
    name: bpy.props.StringProperty(name="Part", description="Part name (sanitised into the EXR layer smite_<part>)")
    layer: bpy.props.StringProperty(name="Mask layer", description="The mask layer drawn for this part")
    use: bpy.props.BoolProperty(name="Use", default=True)


class SmiteSettings(bpy.types.PropertyGroup):
    plate_source: bpy.props.EnumProperty(
        name="Plate", items=[("IMAGE", "Image", "An image (sequence) datablock"),
                             ("CLIP", "Movie Clip", "A movie clip datablock holding an image sequence")])
    plate_image: bpy.props.PointerProperty(type=bpy.types.Image, name="Plate image")
    plate_clip: bpy.props.PointerProperty(type=bpy.types.MovieClip, name="Plate clip")
    reference_source: bpy.props.EnumProperty(
        name="References", items=[("MASK", "Mask", "A Mask datablock: one layer per part, layer name = part"),
                                  ("LABELS", "Label maps", "An image sequence of label maps: 0 background, k part k")])
    mask: bpy.props.PointerProperty(type=bpy.types.Mask, name="Mask")
    label_maps: bpy.props.StringProperty(name="Label maps", subtype="FILE_PATH",
                                         description="Label map sequence (name.####.png) numbered like the plate")
    parts: bpy.props.CollectionProperty(type=SmitePart)
    parts_index: bpy.props.IntProperty()
    ref_frames: bpy.props.StringProperty(name="Reference frames", default="",
                                         description="Scene frames of the references, e.g. 1,40 or 1-3")
    preset: bpy.props.EnumProperty(name="Preset", items=PRESETS, default="fast")
    edges: bpy.props.EnumProperty(name="Edges", items=EDGES, default="refined")
    cryptomatte: bpy.props.BoolProperty(name="Cryptomatte", default=False,
                                        description="Also write Cryptomatte layers and add a Cryptomatte node")
    output_dir: bpy.props.StringProperty(name="Output folder", subtype="DIR_PATH", default="//smite/")
    model_name: bpy.props.StringProperty(name="Model", default="",
                                         description="Part model name on the daemon (default: the mask's name)")
    status: bpy.props.StringProperty(name="Daemon", default="not checked")
    job_id: bpy.props.StringProperty(name="Job")
    job_op: bpy.props.StringProperty()
    job_state: bpy.props.StringProperty(default="idle")
    job_output: bpy.props.StringProperty(description="Matte pattern of the last segment job")
    job_inline: bpy.props.BoolProperty(description="The last segment job sends its mattes back inline")
    progress: bpy.props.FloatProperty(name="Progress", min=0.0, max=1.0, subtype="FACTOR")
    eta_s: bpy.props.FloatProperty(default=-1.0)
    last_error: bpy.props.StringProperty(name="Last error")


CLASSES = (SmitePart, SmiteSettings)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.smite = bpy.props.PointerProperty(type=SmiteSettings)


def unregister() -> None:
    del bpy.types.Scene.smite
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
