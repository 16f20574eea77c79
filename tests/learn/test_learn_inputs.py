"""Learning: bad references give one-line errors; progress, cancel and seeding behave."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from smite.errors import Cancelled, SmiteError
from smite.learn.learner import LearnSettings, PartLearner, prepare_references


def _frame(h=64, w=64):
    return np.random.default_rng(0).random((h, w, 3), dtype=np.float32)


def _mask(h=64, w=64):
    mask = np.zeros((h, w), np.int64)
    mask[10:30, 10:30], mask[35:60, 35:60] = 1, 2
    return mask


@pytest.mark.parametrize(
    ("frames", "masks", "names", "message"),
    [
        ([], [], ["a"], "no reference frames"),
        ([_frame()], [], ["a", "b"], "1 reference frames but 0 masks"),
        ([_frame()], [_mask(32, 64)], ["a", "b"], "is 64x32 but its frame is 64x64"),
        ([_frame()], [_mask()], ["a"], "has label 2 but there are only 1 parts"),
        ([_frame()], [_mask()], ["a", "b", "c"], "c have no pixels in any reference"),
        ([_frame()], [_mask()], ["Left Eye", "left-eye"], "both become 'left_eye'"),
        ([np.full((64, 64, 3), np.nan, np.float32)], [_mask()], ["a", "b"], "NaN/Inf"),
    ],
)
def test_bad_references_are_rejected_with_one_line(frames, masks, names, message):
    with pytest.raises(SmiteError) as err:
        prepare_references(frames, masks, names, 256)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_references_are_fitted_without_stretching():
    names, refs = prepare_references([_frame(64, 128)], [_mask(64, 128)], ["background", "a", "b"], 256)
    assert names == ["background", "a", "b"]
    assert refs.images.shape == (1, 256, 256, 3) and refs.labels.shape == (1, 256, 256)
    # 128 wide -> 256 wide; 64 tall -> 128 rows in the middle, reflect-padded above and below
    assert (refs.labels[0, 64:192] == np.kron(_mask(64, 128), np.ones((2, 2), np.int64))).mean() > 0.95


def _settings(**kw):
    return LearnSettings(**({"steps": 3, "token_steps": 2, "eval_every": 1, "lr_kv": 1e-3} | kw))


def test_progress_is_reported_every_step_and_backbone_is_restored(tiny_backbone):
    reports = []
    base = {n: v.clone() for n, v in tiny_backbone.base_kv.items()}
    model = PartLearner(tiny_backbone, _settings()).learn([_frame()], [_mask()], ["a", "b"], progress=reports.append)
    assert [r.step for r in reports] == [1, 2, 3] and [r.phase for r in reports] == ["tokens", "tokens", "kv"]
    assert all(r.miou is not None and np.isfinite(r.loss) for r in reports)
    assert model.part_names == ["background", "a", "b"] and model.tokens.shape[0] == 2
    params = dict(tiny_backbone.unet.named_parameters())
    for name, value in base.items():
        torch.testing.assert_close(params[name].detach(), value)
        assert not params[name].requires_grad


def test_cancel_stops_within_one_step(tiny_backbone):
    reports = []
    learner = PartLearner(tiny_backbone, _settings(steps=10))
    with pytest.raises(Cancelled):
        learner.learn([_frame()], [_mask()], ["a", "b"], progress=reports.append, cancel=lambda: len(reports) >= 2)
    assert len(reports) == 2


def test_learning_is_reproducible_with_a_seed(tiny_backbone):
    a = PartLearner(tiny_backbone, _settings(seed=3)).learn([_frame()], [_mask()], ["a", "b"])
    b = PartLearner(tiny_backbone, _settings(seed=3)).learn([_frame()], [_mask()], ["a", "b"])
    c = PartLearner(tiny_backbone, _settings(seed=4)).learn([_frame()], [_mask()], ["a", "b"])
    torch.testing.assert_close(a.tokens, b.tokens)
    assert not torch.allclose(a.tokens, c.tokens)


def test_without_augmentation_each_reference_is_encoded_once_and_learns_the_same(tiny_backbone, monkeypatch):
    import smite.learn.learner as learner_module
    from smite.learn.augment import AugmentSettings

    calls = []

    def counted(backbone, images):
        calls.append(images.shape[0])
        return encode_posterior(backbone, images)

    encode_posterior = learner_module.encode_posterior
    monkeypatch.setattr(learner_module, "encode_posterior", counted)
    plain = _settings(steps=4, augment=AugmentSettings(enabled=False))
    cached = PartLearner(tiny_backbone, plain).learn([_frame()], [_mask()], ["a", "b"])
    assert len(calls) == 1  # one training reference, four steps
    calls.clear()
    PartLearner(tiny_backbone, replace(plain, augment=AugmentSettings())).learn([_frame()], [_mask()], ["a", "b"])
    assert len(calls) == 4  # augmented: a new image every step
    # each step still draws its own posterior sample: the cache changes no number
    monkeypatch.setattr(PartLearner, "_posterior", lambda self, k, image: encode_posterior(self.backbone, image[None]))
    fresh = PartLearner(tiny_backbone, plain).learn([_frame()], [_mask()], ["a", "b"])
    torch.testing.assert_close(cached.tokens, fresh.tokens, rtol=0, atol=0)
    for name, value in cached.kv.items():
        torch.testing.assert_close(value, fresh.kv[name], rtol=0, atol=0)
