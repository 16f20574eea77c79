"""The "SMITE" sidebar panel of the compositor (Node editor, compositor trees only)."""

import bpy

from . import prefs


class SMITE_UL_parts(bpy.types.UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_prop, index=0):
        row = layout.row(align=True)
        row.prop(item, "use", text="")
        row.prop(item, "name", text="", emboss=False)
        row.label(text=item.layer)


class SMITE_PT_panel(bpy.types.Panel):
    bl_label = "SMITE"
    bl_space_type = "NODE_EDITOR"
    bl_region_type = "UI"
    bl_category = "SMITE"

    @classmethod
    def poll(cls, context):
        space = context.space_data
        return space is not None and getattr(space, "tree_type", "") == "CompositorNodeTree"

    def draw(self, context):
        s, layout = context.scene.smite, self.layout
        p = prefs.get(context)
        box = layout.box()
        box.label(text=f"Daemon: {(p.address if p else '') or 'default'}")
        row = box.row(align=True)
        row.label(text=s.status)
        row.operator("smite.status", text="", icon="FILE_REFRESH")
        col = layout.column()
        col.prop(s, "plate_source", expand=True)
        col.prop(s, "plate_image" if s.plate_source == "IMAGE" else "plate_clip")
        col.prop(s, "reference_source", expand=True)
        if s.reference_source == "MASK":
            row = col.row(align=True)
            row.prop(s, "mask")
            row.operator("smite.parts_from_mask", text="", icon="FILE_REFRESH")
        else:
            col.prop(s, "label_maps")
        col.template_list("SMITE_UL_parts", "", s, "parts", s, "parts_index", rows=3)
        col.prop(s, "ref_frames")
        col.prop(s, "preset")
        col.prop(s, "edges")
        col.prop(s, "cryptomatte")
        col.prop(s, "output_dir")
        col.prop(s, "model_name")
        row = layout.row(align=True)
        row.operator("smite.learn")
        row.operator("smite.segment")
        row = layout.row(align=True)
        row.operator("smite.cancel")
        row.operator("smite.free_vram")
        if s.job_id:
            eta = f", {s.eta_s:.0f} s left" if s.eta_s >= 0 else ""
            layout.label(text=f"{s.job_op} {s.job_state}{eta}")
            layout.prop(s, "progress", text="", slider=True)
        if s.last_error:
            layout.label(text=s.last_error, icon="ERROR")


CLASSES = (SMITE_UL_parts, SMITE_PT_panel)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister() -> None:
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
