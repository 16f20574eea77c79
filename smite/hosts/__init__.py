"""Host integrations (Blender, Nuke): torch-free helpers that build and install the plugins."""
