"""Operators (``bpy.ops.smite.*``), usable from the panel, scripts and headless pipelines. Each one gathers
Blender data on the main thread and hands the daemon work to the worker; nothing here waits on the daemon."""

import bpy

from . import client, runtime, sources
from .framemap import MAP_MODES
from .jobs import cancel_task, free_vram_task, hello_task, learn_task, one_line, segment_task
from .tree import load_mattes, part_sockets

_ERRORS = (ValueError, RuntimeError, OSError, client.DaemonError)


def _fail(op, scene, exc: BaseException) -> set:
    text = one_line(exc)
    scene.smite.last_error = text
    op.report({"ERROR"}, text)
    return {"CANCELLED"}


def _start(op, scene, task) -> set:
    try:
        runtime.start(scene, task)
    except _ERRORS as exc:
        return _fail(op, scene, exc)
    scene.smite.last_error = ""
    return {"FINISHED"}


class SMITE_OT_learn(bpy.types.Operator):
    """Render the mask layers at the reference frames and learn the parts on the daemon"""

    bl_idname = "smite.learn"
    bl_label = "Learn"
    bl_options = {"REGISTER"}

    name: bpy.props.StringProperty(name="Model", default="",
                                   description="Part model name on the daemon (default: the scene setting or mask)")
    steps: bpy.props.IntProperty(name="Steps", default=0, min=0,
                                 description="Learning steps (0: the daemon backbone's default)")

    def execute(self, context):
        scene = context.scene
        if runtime.RUNNER.busy:
            return _fail(self, scene, RuntimeError("a SMITE job is being followed; cancel it or wait"))
        try:
            plan = sources.make_learn_plan(scene, scene.smite, self.name, self.steps)
        except _ERRORS as exc:
            return _fail(self, scene, exc)
        scene.smite.model_name = plan.name
        return _start(self, scene, learn_task(plan, client.Inline))


class SMITE_OT_segment(bpy.types.Operator):
    """Segment the plate with the learned parts; the mattes come back into the compositor"""

    bl_idname = "smite.segment"
    bl_label = "Segment"
    bl_options = {"REGISTER"}

    model: bpy.props.StringProperty(name="Model", default="", description="Part model (default: the scene's)")
    frames: bpy.props.StringProperty(name="Frames", default="",
                                     description="Scene frames to segment, e.g. 1-50 (default: the scene range)")

    def execute(self, context):
        scene = context.scene
        if runtime.RUNNER.busy:
            return _fail(self, scene, RuntimeError("a SMITE job is being followed; cancel it or wait"))
        try:
            plan = sources.make_segment_plan(scene, scene.smite, self.model, self.frames)
        except _ERRORS as exc:
            return _fail(self, scene, exc)
        return _start(self, scene, segment_task(plan, client.Inline))


class SMITE_OT_cancel(bpy.types.Operator):
    """Cancel the running SMITE job on the daemon"""

    bl_idname = "smite.cancel"
    bl_label = "Cancel"

    def execute(self, context):
        scene, s = context.scene, context.scene.smite
        if runtime.RUNNER.busy:
            runtime.RUNNER.cancel()
            return {"FINISHED"}
        if not s.job_id:
            self.report({"INFO"}, "no SMITE job to cancel")
            return {"CANCELLED"}
        return _start(self, scene, cancel_task(s.job_id))


class SMITE_OT_free_vram(bpy.types.Operator):
    """Unload the daemon's backbone until its next job"""

    bl_idname = "smite.free_vram"
    bl_label = "Free VRAM"

    def execute(self, context):
        return _start(self, context.scene, free_vram_task)


class SMITE_OT_status(bpy.types.Operator):
    """Ask the daemon for its backbone, device and free VRAM"""

    bl_idname = "smite.status"
    bl_label = "Check Daemon"

    def execute(self, context):
        return _start(self, context.scene, hello_task)


class SMITE_OT_parts_from_mask(bpy.types.Operator):
    """Parts from the mask's layers and reference frames from its keys"""

    bl_idname = "smite.parts_from_mask"
    bl_label = "Parts from Mask"

    def execute(self, context):
        s = context.scene.smite
        if s.mask is None:
            return _fail(self, context.scene, ValueError("choose a Mask first"))
        sources.fill_parts(s, context.scene)
        return {"FINISHED"}


class SMITE_OT_load_mattes(bpy.types.Operator):
    """Load a SMITE matte EXR sequence into the compositor: one socket per part"""

    bl_idname = "smite.load_mattes"
    bl_label = "Load Mattes"
    bl_options = {"REGISTER", "UNDO"}

    filepath: bpy.props.StringProperty(name="Mattes", subtype="FILE_PATH",
                                       description="Matte sequence: name.####.exr or one of its files")
    mapping: bpy.props.EnumProperty(
        name="Frame mapping", default="AUTO",
        items=[(m, m.replace("_", " ").title(), d) for m, d in zip(MAP_MODES, (
            "Same numbers when the matte and scene ranges overlap, else the first matte at the scene start",
            "Scene frame N shows matte N", "The first matte at the scene's first frame"))])
    cryptomatte: bpy.props.BoolProperty(name="Cryptomatte node", default=False)

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        try:
            node = load_mattes(context.scene, self.filepath, self.mapping, self.cryptomatte)
        except _ERRORS as exc:
            return _fail(self, context.scene, exc)
        self.report({"INFO"}, f"{len(part_sockets(node))} parts: {', '.join(part_sockets(node))}")
        return {"FINISHED"}


CLASSES = (SMITE_OT_learn, SMITE_OT_segment, SMITE_OT_cancel, SMITE_OT_free_vram, SMITE_OT_status,
           SMITE_OT_parts_from_mask, SMITE_OT_load_mattes)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister() -> None:
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
