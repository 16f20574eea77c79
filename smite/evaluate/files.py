"""``smite eval``: score predicted matte EXRs against ground truth on disk (no torch).

Predictions are the matte EXRs of ``smite segment`` (a pattern ``mattes/shot.####.exr`` or a folder holding one
such sequence); their ``smite_label.A`` layer is the predicted label map and their ``smite:parts`` the part order.

Ground truth, label k always meaning the k-th part of the predictions (0 = background):

* ``label maps`` (``--gt``): a pattern ``gt.####.png``, one file, or a folder of numbered images, e.g. a DAVIS
  2017 ``Annotations/480p/<seq>`` folder (``00000.png`` ...). Grey or palette PNGs (the palette index is the
  label, read with Pillow), integer TIFFs, EXRs with a ``smite_label.A`` layer. The void label (DAVIS: 255,
  ``void_label``) is ignored: those pixels count for neither prediction nor GT, as in the DAVIS evaluation.
* ``part folders`` (``--gt``, method.md §8.1): one sub-folder per annotated frame, one binary PNG per part
  (> 50 %, overlaps to the smaller part). The PNGs map to parts by name when every file stem is a part name,
  else by natural sort order. Frame numbers come from ``frames_numbers.txt`` (first line ``[0, 10, ...]``, one
  per sub-folder in natural order) or else from the number at the end of each sub-folder's name.
* ``part mattes`` (``--gt-matte part=pattern``, repeatable): one matte sequence per part; a frame is
  evaluated where every given part has a file.

GT frame f is compared with predicted frame f + ``gt_offset``; frames present on one side only are skipped.
A GT of another size is nearest-resized to the predictions' size when the aspect ratios agree (within a
pixel), else it is an error. Flicker (evaluation.py) needs the plates: it is measured over every pair of
consecutive predicted frames (frame step = the smallest gap in the sequence; wider gaps are not pairs),
not only over GT frames; without plates it is left out.
"""

import argparse
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from smite.errors import SmiteError
from smite.evaluate.scores import evaluate_shot, flicker_counts, format_table
from smite.io.images import atomic_path, read_image, read_label_map, read_mattes_exr, read_reference_mask
from smite.io.sequences import expand_frames, parse_frame_range

DAVIS_VOID = 255
VOID = -1  # label of ignored pixels in the arrays handed to evaluate_shot: matches no part
GT_IMAGE_SUFFIXES = (".png", ".exr", ".tif", ".tiff")
FLICKER_NOTE = "flicker: not measured (it needs the plates: add --frames plate.####.exr)"
_PLACEHOLDER = re.compile(r"%0?\d*d|#+")
_NUMBERED = re.compile(r"^(.*?)(\d+)$")


@dataclass
class GroundTruth:
    """GT found on disk: ``frames`` maps a prediction frame number to its source (a label-map path, a list of
    per-part PNGs of a §8.1 sub-folder, or a {part: matte path} dict)."""

    kind: str
    source: str
    frames: dict[int, object] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------------
# Finding files


def _natural_key(name: str) -> list:
    """Sort key: digit runs compare as numbers (``part2`` < ``part10``)."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def _span(frames: list[int]) -> str:
    """``1001-1100 (100 frames)`` for error messages and notes."""
    if not frames:
        return "no frames"
    lo, hi = min(frames), max(frames)
    count = f"{len(frames)} frame{'s' if len(frames) != 1 else ''}"
    return f"{lo} ({count})" if lo == hi else f"{lo}-{hi} ({count})"


def _folder_sequence(folder: Path, suffixes: tuple[str, ...], what: str) -> list[tuple[int, Path]]:
    """The one numbered image sequence in ``folder`` (``name.0001.exr`` or ``00001.png``) as (frame, path)."""
    groups: dict[tuple[str, str], list[tuple[int, Path]]] = {}
    for entry in folder.iterdir():
        match = _NUMBERED.match(entry.stem)
        if match and entry.suffix.lower() in suffixes and entry.is_file():
            groups.setdefault((match.group(1), entry.suffix.lower()), []).append((int(match.group(2)), entry))
    if len(groups) > 1:
        names = ", ".join(sorted(f"{p}<n>{s}" for p, s in groups))
        raise SmiteError(f"{what} folder {folder} holds several sequences ({names}); pass a pattern instead")
    pairs = sorted(next(iter(groups.values()), []))
    if len({f for f, _ in pairs}) != len(pairs):
        raise SmiteError(f"{what} folder {folder} has two files for one frame number; pass a pattern instead")
    return pairs


def find_predictions(source: str | Path, frame_range: str | None = None) -> list[tuple[int, Path]]:
    """Predicted matte EXRs as sorted (frame, path): a pattern (``mattes/shot.####.exr``), one file, or a
    folder holding one numbered EXR sequence; ``frame_range`` (``1001-1100``) keeps only those frames."""
    path = Path(source).expanduser()
    if path.is_dir():
        pairs = _folder_sequence(path, (".exr",), "predictions")
        if not pairs:
            raise SmiteError(f"predictions folder {path} holds no numbered .exr files (e.g. shot.0001.exr)")
    else:
        if not _PLACEHOLDER.search(path.name) and not path.is_file():
            raise SmiteError(f"predictions {source} do not exist; give a pattern (mattes/shot.####.exr) or folder")
        pairs = expand_frames(str(source))
    if frame_range is not None:
        wanted = set(parse_frame_range(frame_range))
        kept = [(f, p) for f, p in pairs if f in wanted]
        if not kept:
            covered = _span([f for f, _ in pairs])
            raise SmiteError(f"no predicted frame in range {frame_range}: predictions cover {covered}")
        pairs = kept
    return pairs


def _pngs(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.suffix.lower() == ".png" and p.is_file()),
                  key=lambda p: _natural_key(p.name))


def _subfolders(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_dir()), key=lambda p: _natural_key(p.name))


def _frame_numbers_file(folder: Path, count: int) -> list[int] | None:
    """Frame numbers from ``frames_numbers.txt`` (first line ``[0, 10, 20]``), one per sub-folder; or None."""
    path = folder / "frames_numbers.txt"
    if not path.is_file():
        return None
    first = (path.read_text(errors="replace").splitlines() or [""])[0]
    numbers = [int(n) for n in re.findall(r"-?\d+", first)]
    if len(numbers) != count:
        raise SmiteError(f"{path} lists {len(numbers)} frame numbers but {folder} has {count} frame sub-folders")
    return numbers


def _part_folders(folder: Path) -> GroundTruth:
    """§8.1 layout: one sub-folder per annotated frame with one binary PNG per part."""
    subs = _subfolders(folder)
    numbers = _frame_numbers_file(folder, len(subs))
    if numbers is None:
        unnumbered = [s.name for s in subs if not _NUMBERED.match(s.name)]
        if unnumbered:
            raise SmiteError(f"ground-truth sub-folder {folder / unnumbered[0]} has no frame number at the end of its "
                             f"name and {folder} has no frames_numbers.txt")
        numbers = [int(_NUMBERED.match(s.name).group(2)) for s in subs]
    gt = GroundTruth("part folders", str(folder))
    for number, sub in zip(numbers, subs, strict=True):
        pngs = _pngs(sub) or next((_pngs(s) for s in _subfolders(sub)[:1]), [])
        if not pngs:
            raise SmiteError(f"ground-truth frame folder {sub} holds no PNG part mattes")
        if number in gt.frames:
            raise SmiteError(f"ground truth {folder} has two sub-folders for frame {number}")
        gt.frames[number] = pngs
    return gt


def _label_map_folder(folder: Path) -> GroundTruth:
    pairs = _folder_sequence(folder, GT_IMAGE_SUFFIXES, "ground-truth")
    if pairs:
        return GroundTruth("label maps", str(folder), dict(pairs))
    if _subfolders(folder):
        return _part_folders(folder)
    raise SmiteError(f"ground-truth folder {folder} holds neither numbered label maps (00000.png, gt.0001.png) nor "
                     f"one sub-folder per frame")


def parse_gt_mattes(specs: list[str]) -> dict[str, str]:
    """``["face=gt/face.####.png", ...]`` -> {part: pattern}."""
    mattes: dict[str, str] = {}
    for spec in specs:
        part, sep, pattern = spec.partition("=")
        if not sep or not part or not pattern:
            raise SmiteError(f"--gt-matte takes PART=PATTERN, e.g. --gt-matte face=gt/face.####.png, got {spec!r}")
        if part in mattes:
            raise SmiteError(f"--gt-matte gives part {part!r} twice")
        mattes[part] = pattern
    return mattes


def find_ground_truth(gt: str | Path | None = None, gt_mattes: dict[str, str] | None = None,
                      gt_offset: int = 0) -> GroundTruth:
    """Locate GT files (see the module doc); frames are shifted by ``gt_offset`` to prediction numbering."""
    if (gt is None) == (not gt_mattes):
        raise SmiteError("give the ground truth with --gt PATH or with --gt-matte PART=PATTERN (not both)")
    if gt_mattes:
        per_part = {part: dict(expand_frames(pattern)) for part, pattern in gt_mattes.items()}
        common = set.intersection(*(set(frames) for frames in per_part.values()))
        if not common:
            raise SmiteError(f"the --gt-matte sequences share no frame number ({', '.join(gt_mattes)})")
        found = GroundTruth("part mattes", ", ".join(f"{p}={s}" for p, s in gt_mattes.items()),
                            {f: {part: frames[f] for part, frames in per_part.items()} for f in sorted(common)})
    else:
        path = Path(gt).expanduser()
        if path.is_dir():
            found = _label_map_folder(path)
        else:
            if not _PLACEHOLDER.search(path.name) and not path.is_file():
                raise SmiteError(f"ground truth {gt} does not exist")
            found = GroundTruth("label maps", str(gt), dict(expand_frames(str(gt))))
    if not found.frames:
        raise SmiteError(f"no ground-truth frames found in {found.source}")
    found.frames = {f + gt_offset: src for f, src in sorted(found.frames.items())}
    return found


# ---------------------------------------------------------------------------------------------------------
# Reading frames


def _is_palette_png(path: Path) -> bool:
    """PNG colour type 3 (indexed): OIIO and OpenCV would expand it to RGB and lose the indices."""
    try:
        with open(path, "rb") as f:
            head = f.read(26)
    except OSError:
        return False
    return head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR" and head[25] == 3


def _read_palette_indices(path: Path) -> np.ndarray:
    try:
        from PIL import Image  # a diffusers dependency; only palette PNGs need it
    except ImportError as exc:
        raise SmiteError(f"{path} is a palette PNG; reading its indices needs Pillow (pip install pillow)") from exc
    try:
        with Image.open(path) as image:
            return np.asarray(image, dtype=np.int64)
    except OSError as exc:
        raise SmiteError(f"could not read {path}: {exc}") from exc


def _read_label_image(path: Path, names: list[str], void_label: int | None) -> np.ndarray:
    """Label map int16 (H, W) of a GT image; void pixels -> VOID; raise on labels outside the parts."""
    labels = _read_palette_indices(path) if _is_palette_png(path) else read_label_map(path)
    values = np.unique(labels)
    outside = (values < 0) | (values >= len(names))
    bad = values[outside & (values != void_label)] if void_label is not None else values[outside]
    if bad.size:
        worst = int(bad.max())
        void = f"; {void_label} = void" if void_label is not None else ""
        hint = "; for 0/255 masks (one per part) use --gt-matte PART=PATTERN" if worst == 255 else ""
        raise SmiteError(f"ground truth {path} has label {worst} but the predictions have {len(names)} parts "
                         f"(0 = {names[0]} .. {len(names) - 1} = {names[-1]}{void}){hint}")
    out = labels.astype(np.int16)
    if void_label is not None:
        out[labels == void_label] = VOID
    return out


def _read_part_pngs(pngs: list[Path], names: list[str]) -> np.ndarray:
    """§8.1 frame: PNGs mapped to parts by stem when all stems are part names, else by natural order."""
    parts = names[1:]
    stems = [p.stem for p in pngs]
    if len(set(stems)) == len(stems) and set(stems) <= set(parts):
        mapping = dict(zip(stems, pngs, strict=True))
    elif len(pngs) > len(parts):
        raise SmiteError(f"ground-truth folder {pngs[0].parent} has {len(pngs)} part PNGs but the predictions have "
                         f"{len(parts)} parts ({', '.join(parts)})")
    else:
        mapping = dict(zip(parts, pngs, strict=False))
    return read_reference_mask(mapping, parts).astype(np.int16)


def read_gt_frame(source: object, names: list[str], void_label: int | None = DAVIS_VOID) -> np.ndarray:
    """One GT frame as int16 (H, W): 0..n-1 = ``names`` (the predictions' parts), ``VOID`` (-1) = ignored."""
    if isinstance(source, dict):
        return read_reference_mask(source, names[1:]).astype(np.int16)
    if isinstance(source, list):
        return _read_part_pngs(source, names)
    return _read_label_image(Path(source), names, void_label)


def _same_aspect(size: tuple[int, int], target: tuple[int, int]) -> bool:
    """(H, W) sizes whose aspect agrees within a pixel."""
    (h, w), (th, tw) = size, target
    return abs(h * tw / w - th) <= 1 and abs(w * th / h - tw) <= 1


def _fit_labels(labels: np.ndarray, shape: tuple[int, int], what: str) -> np.ndarray:
    """Nearest-resize labels (H, W) to ``shape`` when the aspect matches; else raise."""
    if labels.shape == shape:
        return labels
    if not _same_aspect(labels.shape, shape):
        raise SmiteError(f"{what} is {labels.shape[1]}x{labels.shape[0]} but the predictions are {shape[1]}x{shape[0]} "
                         f"(another aspect ratio); resize or crop it to {shape[1]}x{shape[0]}")
    rows = ((np.arange(shape[0]) + 0.5) * labels.shape[0] / shape[0]).astype(np.int64)
    cols = ((np.arange(shape[1]) + 0.5) * labels.shape[1] / shape[1]).astype(np.int64)
    return labels[rows[:, None], cols[None, :]]


def _fit_plate(rgb: np.ndarray, shape: tuple[int, int], what: str) -> np.ndarray:
    if rgb.shape[:2] == shape:
        return rgb
    if not _same_aspect(rgb.shape[:2], shape):
        raise SmiteError(f"plate {what} is {rgb.shape[1]}x{rgb.shape[0]} but the predictions are "
                         f"{shape[1]}x{shape[0]}; give the plates the mattes were made from")
    return cv2.resize(rgb, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)


def _read_prediction(path: Path, names: list[str] | None, shape: tuple[int, int] | None) -> tuple:
    """(labels int16 (H, W), part names) of a matte EXR, checked against the first frame's names and size."""
    matte = read_mattes_exr(path)
    if names is not None and matte.part_names != names:
        raise SmiteError(f"{path} has parts {', '.join(matte.part_names)} but the first matte has {', '.join(names)}")
    if shape is not None and matte.labels.shape != shape:
        raise SmiteError(f"{path} is {matte.labels.shape[1]}x{matte.labels.shape[0]} but the first matte is "
                         f"{shape[1]}x{shape[0]}")
    n = len(matte.part_names)
    if matte.labels.min() < 0 or matte.labels.max() >= n:
        raise SmiteError(f"{path} has labels outside 0..{n - 1} in smite_label.A; is it a SMITE matte file?")
    return matte.labels.astype(np.int16), matte.part_names


# ---------------------------------------------------------------------------------------------------------
# Evaluating


def _flicker_result(counts: np.ndarray, names: list[str]) -> dict:
    """evaluate_shot's flicker keys from pooled counts (n + 1, 2); None where nothing was compared."""
    def ratio(changed, total):
        return float(changed / total) if total else None

    return {"flicker": ratio(*counts[-1]),
            "flicker_per_part": {name: ratio(*counts[c]) for c, name in enumerate(names)}}


def evaluate_files(predictions: str | Path, gt: str | Path | None = None, gt_mattes: dict[str, str] | None = None,
                   plates: str | None = None, frame_range: str | None = None, gt_offset: int = 0,
                   void_label: int | None = DAVIS_VOID, colorspace: str | None = None) -> dict:
    """Score a shot's matte EXRs against GT files (see the module doc for the accepted layouts).

    Returns :func:`smite.evaluate.scores.evaluate_shot`'s dict over the frames in both (``iou`` in percent,
    ``miou``, ``boundary_f``, ``boundary_f_mean``), plus ``flicker`` / ``flicker_per_part`` when ``plates``
    (a pattern over the predicted frames) are given and there is a consecutive pair, plus ``inputs``.
    Frames stream one at a time: memory holds the GT-matched label maps only.
    """
    preds = find_predictions(predictions, frame_range)
    truth = find_ground_truth(gt, gt_mattes, gt_offset)
    pred_numbers = [f for f, _ in preds]
    matched = sorted(set(pred_numbers) & set(truth.frames))
    if not matched:
        hint = "; use --gt-offset to shift the GT frame numbers" if truth.frames else ""
        raise SmiteError(f"no ground-truth frame matches a predicted frame: predictions cover {_span(pred_numbers)}, "
                         f"ground truth ({truth.source}) covers {_span(list(truth.frames))}{hint}")
    plate_paths = dict(expand_frames(plates, ",".join(map(str, pred_numbers)))) if plates else {}
    step = min((b - a for a, b in zip(pred_numbers, pred_numbers[1:])), default=0)

    names, shape = None, None
    kept_preds, kept_gts, resized, has_void = [], [], None, False
    counts, pairs, previous = None, 0, None
    for frame, path in preds:
        labels, names = _read_prediction(path, names, shape)
        shape = labels.shape
        if plates:
            rgb = _fit_plate(read_image(plate_paths[frame], colorspace), shape, str(plate_paths[frame]))
            if previous is not None and frame - previous[0] == step:
                pair = flicker_counts(np.stack([previous[1], labels]), np.stack([previous[2], rgb]), len(names))
                counts, pairs = pair if counts is None else counts + pair, pairs + 1
            previous = (frame, labels, rgb)
        if frame in truth.frames:
            raw = read_gt_frame(truth.frames[frame], names, void_label if truth.kind == "label maps" else None)
            resized = resized or (None if raw.shape == shape else [raw.shape[1], raw.shape[0]])
            gt_labels = _fit_labels(raw, shape, f"ground truth for frame {frame}")
            void = gt_labels == VOID
            has_void = has_void or bool(void.any())
            kept_gts.append(gt_labels)
            kept_preds.append(np.where(void, VOID, labels).astype(np.int16) if void.any() else labels)

    if has_void and not any((g > 0).any() for g in kept_gts):
        raise SmiteError(f"ground truth {truth.source} has only background and void ({void_label}) pixels: for "
                         f"0/255 masks (one per part) use --gt-matte PART=PATTERN, or change --void")
    result = evaluate_shot(kept_preds, kept_gts, names)
    if pairs:
        result.update(_flicker_result(counts, names))
    result["inputs"] = {
        "predictions": str(predictions),
        "predicted_frames": {"first": pred_numbers[0], "last": pred_numbers[-1], "count": len(pred_numbers)},
        "ground_truth": truth.source,
        "ground_truth_kind": truth.kind,
        "gt_offset": gt_offset,
        "void_label": void_label if truth.kind == "label maps" else None,
        "gt_resized_from": resized,
        "evaluated_frames": matched,
        "plates": plates,
        "flicker_pairs": pairs,
    }
    return result


def write_json(path: str | Path, results: dict) -> Path:
    """Write ``results`` as indented JSON, atomically; returns ``path``."""
    target = Path(path)
    text = json.dumps(results, indent=2, allow_nan=False) + "\n"
    with atomic_path(target) as tmp:
        tmp.write_text(text)
    return target


def default_json_path(predictions: list[tuple[int, Path]]) -> Path:
    """``mattes/shot.0001.exr`` -> ``mattes/shot.metrics.json`` (``metrics.json`` for ``0001.exr``)."""
    first = predictions[0][1]
    stem = _NUMBERED.match(first.stem).group(1) if _NUMBERED.match(first.stem) else first.stem
    stem = stem.rstrip("._- ")
    return first.with_name(f"{stem}.metrics.json" if stem else "metrics.json")


def results_table(results: dict) -> str:
    """:func:`format_table` of the results, with '-' in the flicker column when it was not measured."""
    if "flicker" in results:
        return format_table(results)
    return format_table({**results, "flicker": None, "flicker_per_part": dict.fromkeys(results["parts"])})


# ---------------------------------------------------------------------------------------------------------
# Command line

EVAL_EPILOG = """examples:
  smite eval mattes/shot.####.exr --gt roto/shot_labels.####.png --frames plate.####.exr
  smite eval mattes/ --gt DAVIS/Annotations/480p/bike-packing --frames DAVIS/JPEGImages/480p/bike-packing/#####.jpg
  smite eval mattes/shot.####.exr --gt-matte face=gt/face.####.png --gt-matte hair=gt/hair.####.png
  smite eval mattes/shot.####.exr --gt gt_folder --gt-offset 1001 --json reports/shot.json
"""


def add_eval_parser(sub) -> argparse.ArgumentParser:
    """Register ``smite eval`` on an argparse sub-parsers object; returns the new parser."""
    p = sub.add_parser(
        "eval", help="score predicted mattes against ground truth: IoU, mIoU, boundary F, flicker",
        description="Per-part IoU and mIoU, DAVIS boundary F and flow-warped flicker of a shot's matte EXRs; "
                    "prints a table and writes JSON. GT label k = the k-th part of the mattes (0 = background).",
        epilog=EVAL_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("predictions", help="matte EXRs from `smite segment`: pattern (mattes/shot.####.exr) or folder")
    p.add_argument("--gt", default=None,
                   help="label maps (0 = background, k = k-th part, 255 = void): pattern (gt.####.png), one file, a "
                        "DAVIS Annotations/<seq> folder, or a folder with one sub-folder of part PNGs per frame")
    p.add_argument("--gt-matte", action="append", default=[], metavar="PART=PATTERN",
                   help="one binary matte sequence per part (alpha or first channel), repeatable")
    p.add_argument("--frames", default=None,
                   help="plate pattern of the predicted frames; needed for the flicker measure")
    p.add_argument("--colorspace", default=None, help="colour space of float/EXR plates (default lin_rec709)")
    p.add_argument("--range", default=None, help="evaluate only these predicted frames, e.g. 1001-1100")
    p.add_argument("--gt-offset", type=int, default=0,
                   help="added to GT frame numbers to get prediction frame numbers (e.g. 1001 for 0-based GT)")
    p.add_argument("--void", default=str(DAVIS_VOID),
                   help="label of ignored GT pixels in label maps (default 255, as DAVIS), or 'none'")
    p.add_argument("--json", default=None,
                   help="metrics file to write (default: <predictions folder>/<shot>.metrics.json)")
    p.set_defaults(func=cmd_eval)
    return p


def _parse_void(text: str) -> int | None:
    if text.strip().lower() == "none":
        return None
    try:
        return int(text)
    except ValueError:
        raise SmiteError(f"--void takes a label number or 'none', got {text!r}") from None


def cmd_eval(args) -> int:
    """Run ``smite eval``: print the table (and notes), write the JSON metrics."""
    results = evaluate_files(args.predictions, gt=args.gt, gt_mattes=parse_gt_mattes(args.gt_matte),
                             plates=args.frames, frame_range=args.range, gt_offset=args.gt_offset,
                             void_label=_parse_void(args.void), colorspace=args.colorspace)
    print(results_table(results))
    inputs = results["inputs"]
    if not args.frames:
        print(FLICKER_NOTE)
    elif not inputs["flicker_pairs"]:
        print("flicker: not measured (fewer than two consecutive predicted frames)")
    if inputs["gt_resized_from"]:
        w, h = inputs["gt_resized_from"]
        print(f"note: ground truth resized (nearest) from {w}x{h} to the predictions' size")
    path = args.json or default_json_path(find_predictions(args.predictions, args.range))
    print(f"wrote {write_json(path, results)}")
    return 0
