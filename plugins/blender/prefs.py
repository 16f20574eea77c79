"""Add-on preferences: where the daemon is and the CURVE key files of a remote daemon."""

import bpy

DEFAULT_ADDRESS = "tcp://127.0.0.1:7461"


class SmitePreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    address: bpy.props.StringProperty(
        name="Daemon address", default=DEFAULT_ADDRESS,
        description="ZeroMQ address of `smite serve` (tcp://host:port or ipc://path); $SMITE_ADDRESS when empty")
    server_key: bpy.props.StringProperty(
        name="Server public key", subtype="FILE_PATH", default="",
        description="The daemon's server.key (from `smite keys`); needed for a remote (CURVE) daemon")
    client_secret: bpy.props.StringProperty(
        name="Client secret key", subtype="FILE_PATH", default="",
        description="This machine's NAME.key_secret (from `smite keys DIR --client NAME`)")
    timeout: bpy.props.FloatProperty(name="Timeout (s)", default=30.0, min=1.0, max=600.0,
                                     description="Seconds to wait for each daemon reply")

    def draw(self, context):
        col = self.layout.column()
        col.prop(self, "address")
        col.prop(self, "server_key")
        col.prop(self, "client_secret")
        col.prop(self, "timeout")


def get(context=None) -> SmitePreferences | None:
    """The add-on's preferences (None when the add-on is not enabled as an add-on)."""
    addon = (context or bpy.context).preferences.addons.get(__package__)
    return addon.preferences if addon else None


def register() -> None:
    bpy.utils.register_class(SmitePreferences)


def unregister() -> None:
    bpy.utils.unregister_class(SmitePreferences)
