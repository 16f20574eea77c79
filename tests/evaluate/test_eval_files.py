"""`smite eval` from files: prediction EXRs vs label maps, DAVIS palette PNGs, §8.1 part folders, part mattes."""

import argparse
import json

import cv2
import numpy as np
import pytest
from PIL import Image

from smite.errors import SmiteError
from smite.evaluate.files import add_eval_parser, default_json_path, evaluate_files, find_predictions
from smite.evaluate.scores import evaluate_shot
from smite.io.images import write_mattes_exr, write_png

SIZE, FRAMES, FIRST = 96, 6, 1001
NAMES = ["background", "disc", "box"]


def _plate_and_labels(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A textured uint8 plate panning 2 px/frame right-to-left and labels painted on it: (T, S, S, 3), (T, S, S)."""
    big = SIZE + 40
    noise = sum(cv2.GaussianBlur(rng.standard_normal((big, big, 3)).astype(np.float32), (0, 0), s) * s
                for s in (1.0, 2.5, 6.0))
    plate = np.clip(128 + 60 * noise / noise.std(), 0, 255).astype(np.uint8)
    paint = np.zeros((big, big), np.int32)
    cv2.circle(paint, (50, 60), 25, 1, -1)
    cv2.rectangle(paint, (80, 20), (120, 50), 2, -1)
    frames = [(plate[20 - t:20 - t + SIZE, 30 - 2 * t:30 - 2 * t + SIZE], paint[20 - t:20 - t + SIZE,
               30 - 2 * t:30 - 2 * t + SIZE]) for t in range(FRAMES)]
    return np.stack([f for f, _ in frames]), np.stack([lab for _, lab in frames]).astype(np.int64)


@pytest.fixture(scope="module")
def shot(tmp_path_factory):
    """Plates (PNG), predicted matte EXRs with errors and flicker, and the true labels, on disk."""
    root = tmp_path_factory.mktemp("shot")
    plates, truth = _plate_and_labels(np.random.default_rng(3))
    preds = truth.copy()
    preds[1::2][preds[1::2] == 1] = 2  # the disc flickers into the box on odd frames
    preds[2, :, :10] = 1  # a wrong strip on one frame
    (root / "mattes").mkdir()
    for t in range(FRAMES):
        write_png(root / f"plate.{FIRST + t:04d}.png", plates[t])
        alphas = np.stack([(preds[t] == c).astype(np.float32) for c in range(len(NAMES))])
        write_mattes_exr(root / "mattes" / f"shot.{FIRST + t:04d}.exr", alphas, preds[t], NAMES)
    return {"root": root, "plates": plates.astype(np.float32) / 255, "truth": truth, "preds": preds,
            "mattes": str(root / "mattes" / "shot.####.exr"), "plate_pattern": str(root / "plate.####.png")}


def _expected(shot, ts: list[int], gts: list[np.ndarray] | None = None) -> dict:
    gts = gts if gts is not None else [shot["truth"][t] for t in ts]
    preds = [np.where(g < 0, -1, shot["preds"][t]) for t, g in zip(ts, gts)]
    return evaluate_shot(preds, gts, NAMES)


def _write_label_maps(folder, ts, truth, name="gt.{:04d}.png", offset=FIRST, scale=1):
    folder.mkdir(exist_ok=True)
    for t in ts:
        labels = np.kron(truth[t], np.ones((scale, scale), np.int64)).astype(np.uint8)
        cv2.imwrite(str(folder / name.format(offset + t)), labels)


def _assert_metrics(result: dict, expected: dict) -> None:
    for key in ("frames", "parts", "iou", "miou", "boundary_f", "boundary_f_mean"):
        assert result[key] == pytest.approx(expected[key]), key


def test_label_maps_on_some_frames_and_flicker_over_all(shot):
    _write_label_maps(shot["root"] / "gt", [2, 4], shot["truth"])
    result = evaluate_files(shot["mattes"], gt=str(shot["root"] / "gt" / "gt.####.png"), plates=shot["plate_pattern"])
    _assert_metrics(result, _expected(shot, [2, 4]))
    assert result["miou"] < 100 and result["inputs"]["evaluated_frames"] == [FIRST + 2, FIRST + 4]
    # Flicker pools all 5 consecutive predicted pairs, not only the GT frames.
    whole = evaluate_shot(list(shot["preds"]), list(shot["preds"]), NAMES, frames=shot["plates"])
    assert result["inputs"]["flicker_pairs"] == FRAMES - 1
    assert result["flicker"] == pytest.approx(whole["flicker"]) and result["flicker"] > 0.02
    assert result["flicker_per_part"] == pytest.approx(whole["flicker_per_part"])
    # The same GT as a folder, with the predictions as a folder and a frame range.
    again = evaluate_files(shot["root"] / "mattes", gt=shot["root"] / "gt", frame_range=f"{FIRST + 3}-{FIRST + 5}")
    _assert_metrics(again, _expected(shot, [4]))
    assert "flicker" not in again and again["inputs"]["flicker_pairs"] == 0


def test_davis_palette_folder_with_void_and_offset(shot, tmp_path):
    palette = np.zeros((256, 3), np.uint8)
    palette[1], palette[2], palette[255] = (128, 0, 0), (0, 128, 0), (224, 224, 192)
    gts = {}
    for t in (1, 3):
        ids = shot["truth"][t].astype(np.uint8)
        ids[40:50, :] = 255  # a void band: ignored in both prediction and GT
        image = Image.frombytes("P", (SIZE, SIZE), ids.tobytes())
        image.putpalette(palette.ravel().tolist())
        image.save(tmp_path / f"{t:05d}.png")
        gts[t] = np.where(ids == 255, -1, ids.astype(np.int64))
    result = evaluate_files(shot["mattes"], gt=tmp_path, gt_offset=FIRST)
    expected = _expected(shot, [1, 3], [gts[1], gts[3]])
    _assert_metrics(result, expected)
    assert result["inputs"]["ground_truth_kind"] == "label maps" and result["inputs"]["void_label"] == 255
    # Ignoring the band matters: counted as background it would change the scores.
    counted = _expected(shot, [1, 3], [np.where(gts[t] < 0, 0, gts[t]) for t in (1, 3)])
    assert counted["iou"]["background"] != pytest.approx(result["iou"]["background"])


def test_part_folders_by_name_and_by_order(shot, tmp_path):
    truth = shot["truth"]
    by_name, by_order = tmp_path / "a", tmp_path / "b" / "nested"  # an empty level: its first sub-folder is used
    by_name.mkdir()
    by_order.mkdir(parents=True)
    for part in (1, 2):
        cv2.imwrite(str(by_name / f"{NAMES[part]}.png"), (truth[2] == part).astype(np.uint8) * 255)
        cv2.imwrite(str(by_order / f"mask_{part}.png"), (truth[5] == part).astype(np.uint8) * 255)
    (tmp_path / "frames_numbers.txt").write_text("[2, 5]\n")
    result = evaluate_files(shot["mattes"], gt=tmp_path, gt_offset=FIRST)
    _assert_metrics(result, _expected(shot, [2, 5]))
    assert result["inputs"]["ground_truth_kind"] == "part folders"


def test_gt_mattes_use_frames_every_part_has(shot, tmp_path):
    for part, ts in (("disc", [3, 4]), ("box", [3, 4, 5])):
        for t in ts:
            cv2.imwrite(str(tmp_path / f"{part}.{FIRST + t}.png"),
                        (shot["truth"][t] == NAMES.index(part)).astype(np.uint8) * 255)
    mattes = {p: str(tmp_path / f"{p}.####.png") for p in ("disc", "box")}
    result = evaluate_files(shot["mattes"], gt_mattes=mattes)
    _assert_metrics(result, _expected(shot, [3, 4]))
    with pytest.raises(SmiteError, match="unknown part"):
        evaluate_files(shot["mattes"], gt_mattes={"tail": mattes["disc"]})


def test_gt_of_another_size_with_the_same_aspect_is_resized(shot, tmp_path):
    _write_label_maps(tmp_path, [0, 3], shot["truth"], scale=2)
    result = evaluate_files(shot["mattes"], gt=str(tmp_path / "gt.####.png"))
    _assert_metrics(result, _expected(shot, [0, 3]))
    assert result["inputs"]["gt_resized_from"] == [2 * SIZE, 2 * SIZE]


def _raises(match: str, **kwargs) -> None:
    with pytest.raises(SmiteError, match=match) as info:
        evaluate_files(kwargs.pop("preds"), **kwargs)
    assert "\n" not in str(info.value)


def test_user_mistakes_are_one_line_errors(shot, tmp_path):
    _write_label_maps(tmp_path, [0], shot["truth"])
    gt = str(tmp_path / "gt.####.png")
    _raises(r"no ground-truth frame matches.*1001-1006.*--gt-offset", preds=shot["mattes"], gt=gt, gt_offset=100)
    cv2.imwrite(str(tmp_path / "wide.1001.png"), np.zeros((SIZE, SIZE + 20), np.uint8))
    _raises("another aspect ratio", preds=shot["mattes"], gt=str(tmp_path / "wide.####.png"))
    cv2.imwrite(str(tmp_path / "bad.1001.png"), np.full((SIZE, SIZE), 3, np.uint8))
    _raises(r"has label 3 but the predictions have 3 parts", preds=shot["mattes"], gt=str(tmp_path / "bad.####.png"))
    binary = (shot["truth"][0] > 0).astype(np.uint8) * 255  # a 0/255 matte passed as a label map
    cv2.imwrite(str(tmp_path / "bin.1001.png"), binary)
    _raises("only background and void", preds=shot["mattes"], gt=str(tmp_path / "bin.####.png"))
    _raises("has label 255.*--gt-matte", preds=shot["mattes"], gt=str(tmp_path / "bin.####.png"), void_label=None)
    _raises("several sequences", preds=shot["mattes"], gt=tmp_path)
    parts = tmp_path / "parts" / "f1001"
    parts.mkdir(parents=True)
    for name in ("a", "b", "c"):
        cv2.imwrite(str(parts / f"{name}.png"), np.zeros((SIZE, SIZE), np.uint8))
    _raises("has 3 part PNGs but the predictions have 2 parts", preds=shot["mattes"], gt=tmp_path / "parts")
    _raises("not both", preds=shot["mattes"], gt=gt, gt_mattes={"disc": gt})
    _raises("do not exist", preds=str(tmp_path / "missing.exr"), gt=gt)


def _run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="smite")
    add_eval_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_prints_the_table_and_writes_json(shot, tmp_path, capsys):
    _write_label_maps(tmp_path / "gt", [2, 4], shot["truth"])
    gt = str(tmp_path / "gt" / "gt.####.png")
    out = tmp_path / "report.json"
    assert _run_cli(["eval", shot["mattes"], "--gt", gt, "--frames", shot["plate_pattern"], "--json", str(out)]) == 0
    text = capsys.readouterr().out
    written = json.loads(out.read_text())
    assert written == json.loads(json.dumps(evaluate_files(shot["mattes"], gt=gt, plates=shot["plate_pattern"])))
    assert "flicker" in text and f"{written['iou']['disc']:.1f}" in text and f"wrote {out}" in text

    # No plates: '-' in the flicker column, a note, no flicker in the JSON (default path next to the mattes).
    assert _run_cli(["eval", shot["mattes"], "--gt", gt]) == 0
    text = capsys.readouterr().out
    default = default_json_path(find_predictions(shot["mattes"]))
    assert default == shot["root"] / "mattes" / "shot.metrics.json"
    assert "flicker" not in json.loads(default.read_text())
    mean_row = next(line for line in text.splitlines() if line.startswith("mean"))
    assert mean_row.split()[-1] == "-" and "needs the plates" in text
    with pytest.raises(SmiteError, match="PART=PATTERN"):
        _run_cli(["eval", shot["mattes"], "--gt-matte", "disc"])
