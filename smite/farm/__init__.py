"""Render-farm integration: chunked, overlapping, resumable matte renders (``smite render``), the worker-session
daemon of the OpenJD template (``smite farm daemon``) and the OpenCue job spec (``smite farm opencue``).

Plain Python on top of the engine and the daemon client; the farm tools themselves (openjd-cli,
opencue-pyoutline) are the optional extra ``smite-vfx[farm]`` and only ``smite.farm.opencue`` imports one.
"""
