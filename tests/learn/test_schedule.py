"""Learning length scales with the references (§4.4) and flip augmentation can be turned off (issue 9 items 2, 5)."""

import numpy as np
import pytest

import smite.learn.learner as learner_module
from smite.cli import build_parser
from smite.learn.augment import AugmentSettings, mirrored_pairs
from smite.learn.learner import LearnSettings, PartLearner, flip_allowed


def _references(count: int, size: int = 32) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(0)
    frames = [rng.random((size, size, 3), dtype=np.float32) for _ in range(count)]
    mask = np.zeros((size, size), np.int64)
    mask[: size // 2, : size // 2], mask[size // 2 :, size // 2 :] = 1, 2
    return frames, [mask] * count


def test_method_schedule_counts_epochs_over_the_training_set():
    sd = LearnSettings()
    assert (sd.schedule(1).total, sd.schedule(1).token_steps) == (300, 51)
    assert (sd.schedule(2).total, sd.schedule(2).token_steps) == (600, 102)
    assert sd.schedule(3).total == 600 and sd.schedule(3).per_epoch == 2  # one of three is held out
    assert (sd.schedule(6).total, sd.schedule(6).token_steps, sd.schedule(6).eval_every) == (1200, 204, 100)


def test_tiny_defaults_stay_short_and_explicit(tiny_backbone):
    tiny = LearnSettings.for_backbone(tiny_backbone)
    assert (tiny.steps, tiny.token_steps) == (100, 20)
    assert (tiny.schedule(1).total, tiny.schedule(2).total, tiny.schedule(2).token_steps) == (100, 200, 40)


def test_learning_runs_epochs_over_every_reference(tiny_backbone, monkeypatch):
    """2 references x 7 epochs: 14 steps, each epoch visits both references once, phases and Fourier by epoch."""
    learner = PartLearner(tiny_backbone, LearnSettings.for_backbone(tiny_backbone, steps=7, token_steps=2,
                                                                     eval_every=3))
    visits, evaluations = [], []

    def fake_step(epoch, k, phase, *args):
        visits.append((epoch, k, phase))
        return 1.0

    def fake_evaluate(*args):
        evaluations.append(len(visits))
        return 0.5

    monkeypatch.setattr(learner, "_step", fake_step)
    monkeypatch.setattr(learner, "_evaluate", fake_evaluate)
    totals = []
    frames, masks = _references(2)
    learner.learn(frames, masks, ["a", "b"], progress=lambda p: totals.append(p.total))
    assert len(visits) == 14 and set(totals) == {14}
    for epoch in range(7):
        assert sorted(k for e, k, _ in visits if e == epoch) == [0, 1]
    assert [phase for _, _, phase in visits] == ["tokens"] * 4 + ["kv"] * 10
    assert evaluations == [4, 6, 12, 14]  # end of the token phase, every 3 epochs, the last step


@pytest.mark.parametrize(
    ("names", "pairs"),
    [(["left_eye", "right_eye", "nose"], [("left_eye", "right_eye")]), (["eye_l", "eye_r"], [("eye_l", "eye_r")]),
     (["l_hand", "r_hand", "lefthand"], [("l_hand", "r_hand")]), (["face", "hair", "eyes"], []),
     (["left_hand", "right_foot"], [])],
)
def test_mirrored_pairs(names, pairs):
    assert mirrored_pairs(names) == pairs


def test_flip_defaults_off_for_left_right_parts_and_obeys_the_setting(tiny_backbone, monkeypatch):
    seen = []

    class Stop(Exception):
        pass

    def spy(image, labels, target, rng, settings):
        seen.append(settings.flip)
        raise Stop

    monkeypatch.setattr(learner_module, "augment", spy)
    frames, masks = _references(1)
    for names, flip, expected in ((["left_eye", "right_eye"], None, False), (["face", "hair"], None, True),
                                  (["left_eye", "right_eye"], True, True), (["face", "hair"], False, False)):
        settings = LearnSettings.for_backbone(tiny_backbone, flip=flip, augment=AugmentSettings())
        with pytest.raises(Stop):
            PartLearner(tiny_backbone, settings).learn(frames, masks, names)
        assert seen.pop() is expected and flip_allowed(flip, names) is expected


def test_no_flip_from_the_cli_and_the_daemon():
    from smite_server.requests import parse_learn

    args = build_parser().parse_args(["learn", "--frames", "p.####.exr", "--refs", "1", "--names", "a", "-o", "x",
                                      "--no-flip"])
    assert args.flip is False
    assert build_parser().parse_args(["learn", "--frames", "p.exr", "--refs", "1", "-o", "x"]).flip is None
    request = parse_learn({"frames": [{"path": "/f.exr"}], "masks": [{"path": "/m.png"}], "parts": ["a"],
                           "name": "m", "settings": {"flip": False}}, 0)
    assert request.settings == {"flip": False}
    assert LearnSettings(**request.settings).flip is False
