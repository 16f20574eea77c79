"""The synthetic shot is the engine's acceptance test: check it is fair (visible, moving, deforming,
textured parts) and its ground truth exact."""

from functools import cache

import cv2
import numpy as np
import pytest

from smite.errors import SmiteError
from smite.synthetic.shots import SyntheticShot, make_shot, write_shot

CONFIGS = {
    "default": {},
    "touching": {"num_parts": 2, "touching": True},
    "wide": {"size": (192, 256), "seed": 4},
    "tall": {"size": (256, 192), "seed": 7},
    "four": {"num_parts": 4, "seed": 2},
}
KERNEL3 = np.ones((3, 3), np.uint8)


@cache
def shot(name: str) -> SyntheticShot:
    return make_shot(**CONFIGS[name])


def extent(mask: np.ndarray, axis: int) -> int:
    idx = np.nonzero(mask.any(axis=axis))[0]
    return int(idx[-1] - idx[0] + 1) if idx.size else 0


def centroid(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean(), ys.mean()])


def relative(s: SyntheticShot, k: int, i: int, j: int) -> np.ndarray:
    """The (2, 3) affine taking part k's pixels at frame i to frame j."""
    mi, mj = (np.vstack([s.part_transforms[t, k], [0, 0, 1]]) for t in (i, j))
    return (mj @ np.linalg.inv(mi))[:2]


def test_shapes_and_dtypes():
    s = shot("default")
    assert s.frames.shape == (24, 256, 256, 3) and s.frames.dtype == np.float32
    assert s.labels.shape == (24, 256, 256) and s.labels.dtype == np.uint8
    assert 0.0 <= s.frames.min() and s.frames.max() <= 1.0
    assert s.part_names == ["disc", "bar", "blob"] and s.num_labels == 4
    assert set(np.unique(s.labels)) == {0, 1, 2, 3}
    assert s.part_transforms.shape == (24, 3, 2, 3)
    assert shot("touching").part_names == ["face", "hair"]


@pytest.mark.parametrize("size", [(192, 256), (256, 192)])
def test_non_square_sizes(size):
    s = make_shot(num_frames=3, size=size, seed=4)
    assert s.frames.shape == (3, *size, 3) and s.labels.shape == (3, *size)


def test_deterministic_per_seed():
    a, b = make_shot(num_frames=4, seed=5), make_shot(num_frames=4, seed=5)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.labels, b.labels)
    c = make_shot(num_frames=4, seed=6)
    assert not np.array_equal(a.labels, c.labels)
    assert not np.array_equal(a.frames, c.frames)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_every_part_visible_large_and_inside(name):
    s = shot(name)
    _, h, w = s.labels.shape
    for t in range(len(s.labels)):
        for k in range(1, s.num_labels):
            mask = s.labels[t] == k
            assert extent(mask, 0) >= w / 8, (t, k)
            assert extent(mask, 1) >= h / 8, (t, k)
        border = np.concatenate([s.labels[t, 0], s.labels[t, -1], s.labels[t, :, 0], s.labels[t, :, -1]])
        assert not border.any(), f"a part leaves the frame at frame {t}"


@pytest.mark.parametrize("name", list(CONFIGS))
def test_parts_move_and_deform(name):
    s = shot(name)
    for k in range(1, s.num_labels):
        masks = s.labels == k
        moved = np.linalg.norm(centroid(masks[-1]) - centroid(masks[0]))
        assert moved > 8.0, f"part {k} moved only {moved:.1f} px"
        areas = masks.sum(axis=(1, 2))
        assert areas.max() / areas.min() > 1.08, f"part {k} barely changes area"


def test_parts_rotate():
    s = shot("default")
    for k in range(3):
        a0 = np.arctan2(s.part_transforms[0, k, 1, 0], s.part_transforms[0, k, 0, 0])
        a1 = np.arctan2(s.part_transforms[-1, k, 1, 0], s.part_transforms[-1, k, 0, 0])
        assert abs(np.angle(np.exp(1j * (a1 - a0)))) > np.deg2rad(10)


def test_background_pans():
    s = shot("default")
    grey = s.frames.mean(axis=-1)
    bg = (s.labels[0] == 0) & (s.labels[5] == 0)
    a, b = (np.where(bg, g, g[bg].mean()).astype(np.float32) for g in (grey[0], grey[5]))
    (dx, dy), _ = cv2.phaseCorrelate(a, b)
    assert np.hypot(dx, dy) > 3.0


@pytest.mark.parametrize("name", ["default", "touching", "wide"])
def test_texture_and_labels_follow_the_part_transform(name):
    s = shot(name)
    _, h, w = s.labels.shape
    grey = s.frames.mean(axis=-1)
    i, j = 0, 12
    for k in range(s.num_labels - 1):
        rel = relative(s, k, i, j)
        before = (s.labels[i] == k + 1).astype(np.uint8)
        moved_mask = cv2.warpAffine(before, rel, (w, h), flags=cv2.INTER_NEAREST)
        here = (s.labels[j] == k + 1).astype(np.uint8)
        iou = (moved_mask & here).sum() / (moved_mask | here).sum()  # < 1: the blob's outline wobbles
        assert iou > 0.65, f"part {k + 1}: transform does not describe the labels (IoU {iou:.2f})"
        region = cv2.erode(moved_mask & here, np.ones((5, 5), np.uint8)).astype(bool)
        compensated = np.corrcoef(grey[j][region], cv2.warpAffine(grey[i], rel, (w, h))[region])[0, 1]
        static = np.corrcoef(grey[j][region], grey[i][region])[0, 1]
        assert compensated > 0.95, f"part {k + 1}: texture does not move with the part"
        assert static < compensated - 0.3, f"part {k + 1}: texture is too uniform to show motion"


def test_symmetric_parts_centred_on_their_transform():
    s = shot("default")
    for t in range(0, 24, 5):
        for k in (0, 1):  # disc and bar are centrally symmetric: centroid = transform origin
            assert np.linalg.norm(centroid(s.labels[t] == k + 1) - s.part_transforms[t, k, :, 2]) < 1.0


@pytest.mark.parametrize("name", ["default", "four", "wide"])
def test_separate_parts_never_touch(name):
    s = shot(name)
    for t in range(len(s.labels)):
        for k in range(1, s.num_labels):
            grown = cv2.dilate((s.labels[t] == k).astype(np.uint8), KERNEL3).astype(bool)
            others = (s.labels[t] > 0) & (s.labels[t] != k)
            assert not (grown & others).any(), (t, k)


def test_touching_parts_share_a_boundary_every_frame():
    s = shot("touching")
    w = s.labels.shape[2]
    for t in range(len(s.labels)):
        grown_face = cv2.dilate((s.labels[t] == 1).astype(np.uint8), KERNEL3).astype(bool)
        shared = (grown_face & (s.labels[t] == 2)).sum()
        assert shared >= w / 8, f"frame {t}: face and hair share only {shared} px of boundary"


def test_noise_changes_plates_not_labels():
    clean, noisy = make_shot(num_frames=4, seed=3), make_shot(num_frames=4, seed=3, noise=0.05)
    np.testing.assert_array_equal(clean.labels, noisy.labels)
    diff = noisy.frames - clean.frames
    assert 0.035 < diff.std() < 0.055
    assert not np.allclose(diff[0], diff[1], atol=0.01), "noise must differ from frame to frame"
    assert noisy.frames.min() >= 0.0 and noisy.frames.max() <= 1.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_parts": 3, "touching": True},
        {"num_parts": 0},
        {"num_parts": 6},
        {"num_frames": 0},
        {"size": (16, 256)},
        {"size": (64, 64), "num_parts": 5},
        {"noise": -0.1},
        {"seed": -1},
    ],
)
def test_bad_arguments_raise_smite_error(kwargs):
    with pytest.raises(SmiteError):
        make_shot(**kwargs)


def test_write_shot_round_trips(tmp_path):
    s = make_shot(num_frames=3, size=(128, 160), num_parts=2, seed=1)
    paths = write_shot(s, tmp_path / "shot")
    assert paths["first_frame"] == 1 and paths["last_frame"] == 3 and paths["part_names"] == s.part_names
    for n in (1, 2, 3):
        plate = cv2.cvtColor(cv2.imread(paths["plates"] % n, cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)
        np.testing.assert_array_equal(plate, np.round(s.frames[n - 1] * 255).astype(np.uint8))
        for key in ("gt", "masks"):
            label = cv2.imread(paths[key] % n, cv2.IMREAD_UNCHANGED)
            assert label.dtype == np.uint8
            np.testing.assert_array_equal(label, s.labels[n - 1])
    names = sorted(p.name for p in (tmp_path / "shot").rglob("*") if p.is_file())
    assert len(names) == 9 and not any(n.startswith(".") for n in names), "temp files left behind"


def test_write_shot_into_a_file_path_fails(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SmiteError):
        write_shot(make_shot(num_frames=1, size=(128, 160), num_parts=2), blocker)
