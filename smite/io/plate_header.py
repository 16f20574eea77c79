"""Plate header attributes that matte EXRs carry over: pixel aspect, timecode, frame rate, camera and lens.

A matte must line up with its plate in any host: the same pixel grid (see ``read_image``: the display window),
the same ``PixelAspectRatio`` (anamorphic plates stay anamorphic), and the plate's ``smpte:TimeCode``,
``FramesPerSecond``, key code and camera/lens metadata (OpenEXR's standard attributes, ``worldToCamera``...), so
conform, editorial and tracking tools see the mattes as the plate's. Other attributes (a host's private ones,
colour, compression, data windows) are not copied.

Attributes are returned as ``(name, type, value)`` with the type as OpenImageIO's string (``"timecode"``,
``"rational"``, ``"matrix"``...): plain data that a daemon job can hold and :func:`apply` writes back exactly.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import OpenImageIO as oiio

Attribute = tuple[str, str, object]
CARRIED = frozenset({
    "PixelAspectRatio", "smpte:TimeCode", "smpte:KeyCode", "FramesPerSecond", "captureRate",
    "worldToCamera", "worldToNDC", "Make", "Model",
    "isoSpeed", "expTime", "shutterAngle", "aperture", "tStop", "focus", "interocularDistance",
    "nominalFocalLength", "pinholeFocalLength", "effectiveFocalLength", "entrancePupilOffset",
    "sensorCenterOffset", "sensorOverallDimensions", "sensorPhotositePitch", "sensorAcquisitionRectangle",
})
CARRIED_PREFIXES = ("camera", "lens")  # cameraMake, cameraModel, cameraSerialNumber, lensModel, ...


def is_carried(name: str) -> bool:
    """Whether a plate attribute goes to the mattes."""
    return name in CARRIED or name.startswith(CARRIED_PREFIXES)


def plate_attributes(path: str | Path) -> list[Attribute]:
    """The carried attributes of a plate file's first subimage (none for a file OpenImageIO cannot open:
    reading the pixels reports that error)."""
    inp = oiio.ImageInput.open(str(path))
    if inp is None:
        oiio.geterror()  # clear it: the plate read names the problem
        return []
    try:
        spec = inp.spec()
        found = [(p.name, str(p.type), p.value) for p in spec.extra_attribs if is_carried(p.name)]
    finally:
        inp.close()
    return sorted(found, key=lambda a: a[0])


def apply(spec: oiio.ImageSpec, attributes: Iterable[Attribute]) -> None:
    """Set carried attributes on an output spec, with their original types."""
    for name, type_name, value in attributes:
        if is_carried(name):
            spec.attribute(name, oiio.TypeDesc(type_name), value)
