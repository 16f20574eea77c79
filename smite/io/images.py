"""Image I/O through OpenImageIO: plates and reference masks in, per-part matte EXRs out.

Plates come back display-referred (what the model saw in training): integer files are normalised to [0, 1];
float files (EXR, float TIFF, HDR) are scene-linear and go through OIIO's built-in OCIO config to sRGB.
Mattes go out as one half-float layer ``smite_<part>.A`` per part plus ``smite_label.A`` (hosts.md).
Channels are always addressed by name (OIIO reorders them) and arrays handed to OIIO are always (H, W, C).
"""

import contextlib
import json
import os
import secrets
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import OpenImageIO as oiio

from smite import __version__
from smite.errors import SmiteError
from smite.io import colour, plate_header

LABEL_CHANNEL = "smite_label.A"
META_PREFIX = "smite:"
# Parts + the label layer stay within 1024 channels: OIIO's default read limit ("limits:channels") and
# Nuke's channel budget. (The half-float label ids would be exact up to 2048.)
MAX_PARTS = 1023
LINEAR_SPACES = ("lin_rec709", "scene_linear")  # default source space of float files, first one known wins
_FLOAT_TYPES = (oiio.BASETYPE.HALF, oiio.BASETYPE.FLOAT, oiio.BASETYPE.DOUBLE)
_INTEGRAL_TOLERANCE = 1e-3


@dataclass
class MatteFile:
    """A matte EXR read back: ``alphas`` float32 (n, H, W), ``labels`` int64 (H, W), one name per part
    (``part_names[0] == "background"``), and the ``smite:`` attributes without prefix, JSON-decoded."""

    alphas: np.ndarray
    labels: np.ndarray
    part_names: list[str]
    metadata: dict


def matte_channel(part: str) -> str:
    """EXR channel name of a part's matte: ``smite_<part>.A`` (Nuke layer ``smite_<part>``, see hosts.md)."""
    return f"smite_{part}.A"


# ---------------------------------------------------------------------------------------------------------
# Atomic writes


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a fresh temp path next to ``path`` with the same extension; replace ``path`` with it on success.

    On any error the temp file is deleted; ``OSError`` (full disk, read-only or missing folder...) becomes
    ``SmiteError("could not write <path>: <reason>")``. Writers inside may raise ``OSError(reason)`` too.
    """
    target = Path(path)
    if not target.parent.is_dir():
        raise SmiteError(f"could not write {target}: folder {target.parent} does not exist")
    tmp = target.with_name(f".{target.stem}.{secrets.token_hex(4)}.tmp{target.suffix}")
    try:
        # Reserve the name (O_EXCL) with the usual umask-based permissions; the writer then overwrites it.
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as exc:
        raise SmiteError(f"could not write {target}: {exc.strerror or exc}") from exc
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            reason = (exc.strerror or str(exc)).replace(str(tmp), str(target))
            raise SmiteError(f"could not write {target}: {reason}") from exc
        raise


def _first_line(message: str, default: str = "unknown error") -> str:
    """OIIO error texts repeat and span lines: keep the first non-empty line."""
    return next((line.strip() for line in message.splitlines() if line.strip()), default)


def _write_pixels(path: Path, spec: oiio.ImageSpec, pixels: np.ndarray) -> None:
    """Write ``pixels`` (H, W, C), never (H, W): hosts.md) with ``spec``; raise OSError on failure."""
    out = oiio.ImageOutput.create(str(path))
    if out is None:
        raise OSError(_first_line(oiio.geterror()))
    try:
        ok = out.open(str(path), spec) and out.write_image(np.ascontiguousarray(pixels))
    finally:
        closed = out.close()
    if not (ok and closed):
        raise OSError(_first_line(out.geterror()))


# ---------------------------------------------------------------------------------------------------------
# Reading files


@dataclass(frozen=True)
class PixelLimits:
    """Largest image a reader decodes, checked on the headers before any pixel is read (a few-KB PNG or EXR
    can declare 20000x20000 pixels). Defaults fit 8K plates (8192x8192 RGBA in float32 is 1 GiB)."""

    max_pixels: int = 8192 * 8192  # width x height of the display window and of the data window
    max_channels: int = 1024  # OIIO's own default limit, parts + label of a matte EXR
    max_samples: int = 8192 * 8192 * 4  # pixels x channels: the float32 buffer a read allocates

    def as_dict(self) -> dict:
        return {"max_image_pixels": self.max_pixels, "max_image_channels": self.max_channels,
                "max_image_samples": self.max_samples}


MAX_SUBIMAGES = 256
_limits = PixelLimits()


def set_pixel_limits(limits: PixelLimits) -> None:
    """Set the limits every image reader of this process checks (the daemon sets its own at start)."""
    global _limits
    _limits = limits


def pixel_limits() -> PixelLimits:
    return _limits


def _check_size(spec: oiio.ImageSpec, label: str) -> None:
    """Refuse an image whose header asks for more pixels, channels or samples than the limits allow."""
    lim = _limits
    data = spec.width * spec.height * max(spec.depth, 1)
    full = spec.full_width * spec.full_height * max(spec.full_depth, 1)
    pixels = max(data, full)
    size = f"{spec.full_width}x{spec.full_height} (data window {spec.width}x{spec.height}), {spec.nchannels} channels"
    if pixels > lim.max_pixels or spec.nchannels > lim.max_channels or pixels * spec.nchannels > lim.max_samples:
        raise SmiteError(f"{label} is {size}: over the limits of {lim.max_pixels} pixels, {lim.max_channels} "
                         f"channels and {lim.max_samples} samples (pixels x channels); send a smaller image")


def _open_specs(path: Path, label: str) -> list[oiio.ImageSpec]:
    """Headers of all subimages of ``path``, each within the pixel limits; ``label`` names the file in errors."""
    try:
        if not path.exists():
            raise SmiteError(f"{label} does not exist", code="not_found")
        if not path.is_file():
            raise SmiteError(f"{label} is not a file")
    except OSError as exc:  # a 300-character file name, a permission problem...
        raise SmiteError(f"could not read {label[:300]}: {exc.strerror or exc}") from None
    inp = oiio.ImageInput.open(str(path))
    if inp is None:
        raise _read_error(label, path, oiio.geterror())
    specs = []
    try:
        while len(specs) <= MAX_SUBIMAGES and inp.seek_subimage(len(specs), 0):
            specs.append(inp.spec().copy())
            _check_size(specs[-1], label)
    finally:
        inp.close()
    if len(specs) > MAX_SUBIMAGES:
        raise SmiteError(f"{label} has more than {MAX_SUBIMAGES} subimages (parts); not a plate or mask")
    return specs


def _read_error(label: str, path: Path, message: str) -> SmiteError:
    reason = _first_line(message).replace(str(path), label)
    return SmiteError(f"could not read {label}: {reason} (is the file truncated or not an image?)")


def _read_pixels(path: Path, label: str, subimage: int, fmt: oiio.TypeDesc = oiio.FLOAT) -> np.ndarray:
    """Pixels (H, W, C) of one subimage over the display window (a smaller data window is zero-padded)."""
    config = oiio.ImageSpec()
    config.attribute("oiio:UnassociatedAlpha", 1)  # keep straight-alpha colour (PNG) as stored
    buf = oiio.ImageBuf(str(path), subimage, 0, config)
    if not buf.read(subimage, 0, True, fmt):
        raise _read_error(label, path, buf.geterror())
    if buf.roi != buf.roi_full:
        buf = oiio.ImageBufAlgo.crop(buf, buf.roi_full)
    pixels = buf.get_pixels(fmt)
    if buf.has_error:
        raise _read_error(label, path, buf.geterror())
    return pixels.reshape(buf.spec().height, buf.spec().width, -1)


def _is_float(spec: oiio.ImageSpec) -> bool:
    return spec.format.basetype in _FLOAT_TYPES


def _rgb_channels(names: tuple[str, ...]) -> list[int] | None:
    """Indices of ``R, G, B`` or, failing that, of the first layer's ``<layer>.R/.G/.B``."""
    index = {name: i for i, name in enumerate(names)}
    prefixes = [""] + list(dict.fromkeys(n.rpartition(".")[0] + "." for n in names if "." in n))
    for prefix in prefixes:
        if all(prefix + c in index for c in "RGB"):
            return [index[prefix + c] for c in "RGB"]
    return None


def _grey_channel(names: tuple[str, ...]) -> int | None:
    """Index of a grey channel: ``Y`` (or ``<layer>.Y``), else the only channel that is not an alpha."""
    for i, name in enumerate(names):
        if name == "Y" or name.endswith(".Y"):
            return i
    colour = [i for i, n in enumerate(names) if n not in ("A", "alpha") and not n.endswith(".A")]
    return colour[0] if len(colour) == 1 else None


def _pick_colour(specs: list[oiio.ImageSpec], label: str) -> tuple[int, list[int]]:
    """(subimage, 3 channel indices): the first subimage with RGB, else the first with a grey channel."""
    for sub, spec in enumerate(specs):
        rgb = _rgb_channels(tuple(spec.channelnames))
        if rgb is not None:
            return sub, rgb
    for sub, spec in enumerate(specs):
        grey = _grey_channel(tuple(spec.channelnames))
        if grey is not None:
            return sub, [grey] * 3
    channels = ", ".join(list(specs[0].channelnames)[:12]) if specs else "none"
    raise SmiteError(f"{label} has no RGB or grey channels (channels: {channels})")


def _check_finite(pixels: np.ndarray, label: str) -> None:
    """Raise if any pixel (H, W, C) has a NaN or Inf channel: they would poison the model's input."""
    bad = int(np.count_nonzero(~np.isfinite(pixels).all(axis=-1)))
    if bad:
        raise SmiteError(f"{label} has {bad} NaN/Inf pixels; fix the render or clamp it")


# ---------------------------------------------------------------------------------------------------------
# Plates


@lru_cache(maxsize=1)
def default_linear_space() -> str:
    """Source colour space of float files: the first of ``LINEAR_SPACES`` the built-in OCIO config knows."""
    config = oiio.ColorConfig()
    return next((s for s in LINEAR_SPACES if config.getColorSpaceIndex(s) >= 0), LINEAR_SPACES[0])


def _read_plate(path: Path, label: str, colorspace: str | None) -> np.ndarray:
    specs = _open_specs(path, label)
    sub, channels = _pick_colour(specs, label)
    rgb = _read_pixels(path, label, sub)[..., channels]
    _check_finite(rgb, label)
    declared = colour.file_space(specs[sub], path)  # Cineon/log DPX scans
    source = colorspace or declared or (default_linear_space() if _is_float(specs[sub]) else None)
    if source:  # display/view transform for scene-referred plates: highlights roll off, no clip at 1.0
        rgb = colour.to_model_input(rgb, source, label, default_linear_space())
    return np.ascontiguousarray(np.clip(rgb, 0.0, 1.0), dtype=np.float32)


def read_image(path: str | Path, colorspace: str | None = None) -> np.ndarray:
    """Read a plate as display-referred float32 (H, W, 3) in [0, 1].

    Integer files (PNG, JPEG, TIFF 8/16-bit, video DPX) are normalised; float files (EXR...) are taken as
    scene-linear (``colorspace``, default ``lin_rec709``) and Cineon/log DPX scans as Cineon log; a given
    ``colorspace`` always applies. Scene-referred sources go through the OCIO display/view transform
    (``smite.io.colour``), so highlights roll off instead of clipping at 1.0.
    Grey becomes 3 channels, alpha is dropped; a multi-part EXR gives its first subimage with R, G, B.
    """
    return _read_plate(Path(path), str(path), colorspace)


@contextlib.contextmanager
def _bytes_as_file(data: bytes, name: str) -> Iterator[Path]:
    """A temp file holding ``data`` with the extension of ``name`` (OIIO picks the format by extension)."""
    suffix = Path(name).suffix
    if not suffix:
        raise SmiteError(f"image name {name!r} has no file extension; cannot tell its format")
    with tempfile.TemporaryDirectory(prefix="smite-") as folder:
        path = Path(folder) / f"image{suffix}"
        path.write_bytes(data)
        yield path


def read_image_bytes(data: bytes, name: str, colorspace: str | None = None) -> np.ndarray:
    """:func:`read_image` of an encoded file in memory; ``name`` gives the extension, names it in errors."""
    with _bytes_as_file(data, name) as path:
        return _read_plate(path, name, colorspace)


# ---------------------------------------------------------------------------------------------------------
# Label maps and reference masks


def _label_channels(spec: oiio.ImageSpec, label: str) -> list[int]:
    """Channels holding labels: ``smite_label.A`` of a matte file, else the grey or RGB channels."""
    names = tuple(spec.channelnames)
    if LABEL_CHANNEL in names:
        return [names.index(LABEL_CHANNEL)]
    return sorted(set(_pick_colour([spec], label)[1]))


def read_label_map(path: str | Path) -> np.ndarray:
    """Read a label-map image as int64 (H, W): 0 = background, k = k-th part.

    Integer files give their stored values (not normalised); float files give round(value) and must be
    integral. A colour file must have equal R, G and B.
    """
    path, label = Path(path), str(path)
    spec = _open_specs(path, label)[0]
    channels = _label_channels(spec, label)
    values = _read_pixels(path, label, 0, oiio.FLOAT if _is_float(spec) else spec.format)[..., channels]
    if _is_float(spec):
        _check_finite(values, label)
        if np.abs(values - np.rint(values)).max(initial=0.0) > _INTEGRAL_TOLERANCE:
            raise SmiteError(
                f"{label} is not a label map: it has non-integer values (0 = background, k = part k)"
            )
        values = np.rint(values)
    if values.shape[-1] > 1 and not (values == values[..., :1]).all():
        raise SmiteError(f"{label} is a colour image; a label map must be grey (0 = background, k = part k)")
    return values[..., 0].astype(np.int64)


def _check_part_names(part_names: list[str]) -> list[str]:
    names = list(part_names)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise SmiteError(f"part names must be a non-empty list of non-empty strings, got {part_names!r}")
    if len(set(names)) != len(names):
        raise SmiteError(f"part names {names!r} contain duplicates")
    return names


def _validate_labels(labels: np.ndarray, part_names: list[str], label: str) -> np.ndarray:
    """Raise unless every label of ``labels`` (H, W) is in 0..len(part_names)."""
    values = np.unique(labels)
    bad = values[(values < 0) | (values > len(part_names))]
    if bad.size:
        worst = int(bad.max() if bad.max() > len(part_names) else bad.min())
        hint = "; for one black/white matte per part pass {part: file}" if worst == 255 else ""
        parts = ", ".join(part_names)
        raise SmiteError(f"{label} has label {worst} but only {len(part_names)} parts: {parts}{hint}")
    return labels


def _combine_masks(masks: dict[int, np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """Label map int64 (H, W) from boolean masks {label: (H, W)}; an overlapping pixel goes to the mask
    with the smallest area (method.md §8.1), on equal areas to the smaller label."""
    labels = np.zeros(shape, np.int64)
    # Paint the largest first so smaller masks overwrite it.
    for k in sorted(masks, key=lambda k: (-int(masks[k].sum()), -k)):
        labels[masks[k]] = k
    return labels


def _read_matte(path: Path) -> np.ndarray:
    """Boolean (H, W) of a single matte file: its alpha (unless fully opaque) or first channel, > 0.5."""
    label = str(path)
    spec = _open_specs(path, label)[0]
    pixels = _read_pixels(path, label, 0)
    alpha = pixels[..., spec.alpha_channel] if spec.alpha_channel >= 0 else None
    # A fully opaque alpha carries no matte (e.g. an RGBA export of a black/white image): use the colour.
    matte = alpha if alpha is not None and alpha.min() < 1.0 else pixels[..., 0]
    return matte > 0.5


def _mask_from_mattes(mattes: Mapping, part_names: list[str]) -> np.ndarray:
    unknown = [str(p) for p in mattes if p not in part_names]
    if unknown:
        raise SmiteError(
            f"unknown part(s) {', '.join(unknown)} in reference mattes; parts are: {', '.join(part_names)}"
        )
    if not mattes:
        raise SmiteError("no reference mattes given; pass {part: matte file}")
    masks, first = {}, None
    for part, file in mattes.items():
        mask = _read_matte(Path(file))
        first = first or (file, mask.shape)
        if mask.shape != first[1]:
            raise SmiteError(
                f"matte {file} is {mask.shape[1]}x{mask.shape[0]} but {first[0]} is "
                f"{first[1][1]}x{first[1][0]}; all part mattes of a reference must have the same size"
            )
        masks[part_names.index(part) + 1] = mask
    return _combine_masks(masks, first[1])


def _is_matte_channel(name: str) -> bool:
    return name.startswith("smite_") and name.endswith(".A") and name != LABEL_CHANNEL


def _has_matte_layers(spec: oiio.ImageSpec) -> bool:
    return any(_is_matte_channel(n) for n in spec.channelnames)


def _mask_from_matte_exr(path: Path, spec: oiio.ImageSpec, part_names: list[str]) -> np.ndarray:
    """Label map from the ``smite_<part>.A`` layers of a matte EXR, thresholded at 0.5."""
    names = tuple(spec.channelnames)
    missing = [p for p in part_names if matte_channel(p) not in names]
    if missing:
        layers = ", ".join(n[len("smite_") : -2] for n in names if _is_matte_channel(n))
        raise SmiteError(f"{path} has no layer for part(s) {', '.join(missing)}; its layers are: {layers}")
    pixels = _read_pixels(path, str(path), 0)
    masks = {k: pixels[..., names.index(matte_channel(p))] > 0.5 for k, p in enumerate(part_names, start=1)}
    return _combine_masks(masks, pixels.shape[:2])


def read_reference_mask(source: str | Path | Mapping[str, str | Path], part_names: list[str]) -> np.ndarray:
    """Read a reference mask as an int64 (H, W) label map: 0 = background, k = ``part_names[k-1]``.

    ``source`` is a label-map image path, a dict {part name: single matte file} (alpha or first channel,
    > 0.5; overlaps go to the smaller part), or a matte EXR with ``smite_<part>.A`` layers (> 0.5).
    """
    names = _check_part_names(part_names)
    if isinstance(source, Mapping):
        return _mask_from_mattes(source, names)
    path = Path(source)
    spec = _open_specs(path, str(path))[0]
    if _has_matte_layers(spec):
        return _mask_from_matte_exr(path, spec, names)
    return _validate_labels(read_label_map(path), names, str(path))


# ---------------------------------------------------------------------------------------------------------
# Matte EXRs


def _check_matte_arrays(alphas: np.ndarray, labels: np.ndarray, part_names: list[str]) -> None:
    """Raise a clear SmiteError unless alphas (n, H, W), labels (H, W) in 0..n-1 and n names agree."""
    if alphas.ndim != 3 or 0 in alphas.shape:
        raise SmiteError(f"mattes must be a non-empty (parts, height, width) array, got shape {alphas.shape}")
    n, h, w = alphas.shape
    if labels.shape != (h, w):
        raise SmiteError(f"label map shape {labels.shape} does not match the mattes' {(h, w)}")
    if len(part_names) != n:
        raise SmiteError(f"{len(part_names)} part names for {n} mattes")
    if n > MAX_PARTS:
        raise SmiteError(f"{n} parts: at most {MAX_PARTS} parts fit one EXR (1024 channels with the labels)")
    if part_names[0] != "background" or len(set(part_names)) != n:
        raise SmiteError(f"part names must be unique and start with 'background', got {part_names!r}")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= n:
        raise SmiteError(f"label map must be integers in 0..{n - 1}")
    if not np.isfinite(alphas).all():
        raise SmiteError("mattes contain NaN/Inf values")


@dataclass(frozen=True)
class ExtraChannels:
    """Float32 channels written after the matte and label layers (e.g. Cryptomatte ranks).

    ``names`` k channel names; ``pixels`` float32 (H, W, k); ``attributes`` header entries written as given
    (no ``smite:`` prefix).
    """

    names: tuple[str, ...]
    pixels: np.ndarray
    attributes: Mapping[str, str]


def _matte_spec(
    w: int, h: int, part_names: list[str], metadata: dict | None, extra: ExtraChannels | None = None,
    plate: Iterable[tuple[str, str, object]] = (),
) -> oiio.ImageSpec:
    mattes = tuple(matte_channel(p) for p in part_names) + (LABEL_CHANNEL,)
    extra_names = tuple(extra.names) if extra else ()
    spec = oiio.ImageSpec(w, h, len(mattes) + len(extra_names), oiio.HALF)
    spec.channelnames = mattes + extra_names
    if extra_names:  # mattes stay half; extra channels (ids) need float32 bits
        spec.channelformats = (oiio.TypeDesc(oiio.HALF),) * len(mattes) + (oiio.TypeDesc(oiio.FLOAT),) * len(
            extra_names
        )
    spec.alpha_channel = -1  # every channel is a matte: no premultiplication semantics
    spec.attribute("compression", "zip")
    attributes = {"parts": json.dumps(part_names), "version": __version__}
    for key, value in (metadata or {}).items():
        if key in attributes:
            raise SmiteError(f"metadata key {key!r} is reserved")
        try:
            attributes[str(key)] = value if isinstance(value, str) else json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise SmiteError(f"metadata {key!r} cannot be stored as JSON: {exc}") from exc
    for key, value in attributes.items():
        spec.attribute(META_PREFIX + key, value)
    for key, value in (extra.attributes if extra else {}).items():
        spec.attribute(key, value)
    plate_header.apply(spec, plate)  # pixel aspect, timecode, fps, camera of the plate
    return spec


def write_mattes_exr(
    path: str | Path,
    alphas: np.ndarray,
    labels: np.ndarray,
    part_names: list[str],
    metadata: dict | None = None,
    extra: ExtraChannels | None = None,
    plate: Iterable[tuple[str, str, object]] = (),
) -> Path:
    """Write mattes atomically as a ZIP EXR, data window = display window; returns ``path``.

    ``alphas`` float (n, H, W) in [0, 1] with the background as part 0; ``labels`` integer (H, W) in 0..n-1;
    ``part_names`` n sanitised names, ``[0] == "background"``. Layers ``smite_<part>.A`` and ``smite_label.A``
    (half); attributes ``smite:parts`` (JSON), ``smite:version`` and ``smite:<key>`` per metadata key
    (non-strings JSON-encoded). ``extra`` channels (float32) and header entries follow. ``plate``: the
    plate's carried header attributes (``smite.io.plate_header.plate_attributes``).
    """
    alphas, labels, part_names = np.asarray(alphas), np.asarray(labels), list(part_names)
    _check_matte_arrays(alphas, labels, part_names)
    n, h, w = alphas.shape
    k = len(extra.names) if extra else 0
    if extra and extra.pixels.shape != (h, w, k):
        raise SmiteError(f"extra channels {extra.pixels.shape} do not match the mattes' {(h, w, k)}")
    spec = _matte_spec(w, h, part_names, metadata, extra, plate)
    pixels = np.empty((h, w, n + 1 + k), np.float32 if k else np.float16)
    pixels[..., :n] = alphas.transpose(1, 2, 0)
    pixels[..., n] = labels
    if k:
        pixels[..., n + 1 :] = extra.pixels
    target = Path(path)
    with atomic_path(target) as tmp:
        _write_pixels(tmp, spec, pixels)
    return target


def encode_mattes_exr(
    alphas: np.ndarray, labels: np.ndarray, part_names: list[str], metadata: dict | None = None
) -> bytes:
    """The bytes of the EXR :func:`write_mattes_exr` would write (for the daemon's inline mode)."""
    with tempfile.TemporaryDirectory(prefix="smite-") as folder:
        return write_mattes_exr(
            Path(folder) / "mattes.exr", alphas, labels, part_names, metadata
        ).read_bytes()


def _decode(value: object) -> object:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _smite_metadata(spec: oiio.ImageSpec) -> dict:
    """The ``smite:`` attributes of ``spec``, prefix removed, JSON-decoded where possible."""
    return {
        a.name[len(META_PREFIX) :]: _decode(a.value)
        for a in spec.extra_attribs
        if a.name.startswith(META_PREFIX)
    }


def read_mattes_exr(path: str | Path) -> MatteFile:
    """Read a matte EXR written by :func:`write_mattes_exr` (parts in ``smite:parts`` order)."""
    path, label = Path(path), str(path)
    spec = _open_specs(path, label)[0]
    metadata = _smite_metadata(spec)
    names = tuple(spec.channelnames)
    parts = metadata.get("parts")
    if not isinstance(parts, list) or LABEL_CHANNEL not in names:
        raise SmiteError(
            f"{label} is not a SMITE matte file (no smite:parts attribute or smite_label.A layer)"
        )
    missing = [p for p in parts if matte_channel(p) not in names]
    if missing:
        raise SmiteError(f"{label} lacks the layer(s) {', '.join(matte_channel(p) for p in missing)}")
    pixels = _read_pixels(path, label, 0)
    alphas = np.stack([pixels[..., names.index(matte_channel(p))] for p in parts]).astype(np.float32)
    labels = np.rint(pixels[..., names.index(LABEL_CHANNEL)]).astype(np.int64)
    return MatteFile(alphas=alphas, labels=labels, part_names=[str(p) for p in parts], metadata=metadata)


# ---------------------------------------------------------------------------------------------------------
# Plates and pictures out


def _check_rgb(rgb: np.ndarray, what: str) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or 0 in rgb.shape:
        raise SmiteError(f"{what} must be an (height, width, 3) array, got shape {rgb.shape}")
    return rgb


def write_png(path: str | Path, rgb: np.ndarray) -> Path:
    """Write uint8 or float [0, 1] (H, W, 3) as an 8-bit PNG, atomically; returns ``path``."""
    rgb = _check_rgb(rgb, "a PNG image")
    if rgb.dtype != np.uint8 and not np.issubdtype(rgb.dtype, np.floating):
        raise SmiteError(f"a PNG image must be uint8 or float in [0, 1], got {rgb.dtype}")
    if rgb.dtype != np.uint8:
        rgb = np.rint(np.clip(np.nan_to_num(rgb.astype(np.float32)), 0.0, 1.0) * 255.0).astype(np.uint8)
    h, w, _ = rgb.shape
    target = Path(path)
    with atomic_path(target) as tmp:
        _write_pixels(tmp, oiio.ImageSpec(w, h, 3, oiio.UINT8), rgb)
    return target


def write_image(path: str | Path, rgb: np.ndarray) -> Path:
    """Write a float (H, W, 3) plate atomically: ``.exr`` as half RGB with no colour conversion (the values
    are taken as scene-linear), ``.png`` as 8-bit of values in [0, 1]. Returns ``path``."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix == ".png":
        return write_png(target, rgb)
    if suffix != ".exr":
        raise SmiteError(f"cannot write {target}: use a .exr or .png file name")
    rgb = _check_rgb(rgb, "a plate")
    h, w, _ = rgb.shape
    spec = oiio.ImageSpec(w, h, 3, oiio.HALF)
    spec.attribute("compression", "zip")
    with atomic_path(target) as tmp:
        _write_pixels(tmp, spec, rgb.astype(np.float16))
    return target
