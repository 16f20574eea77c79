"""Learning on the production path: phases touch only their own parameters; augmented learning runs (issue 9 item 7)."""

import numpy as np
import torch

import smite.learn.learner as learner_module
from smite.learn.augment import AugmentSettings
from smite.learn.learner import LearnSettings, PartLearner


def _reference(size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    frame = rng.random((size, size, 3), dtype=np.float32)
    mask = np.zeros((size, size), np.int64)
    mask[size // 4 : size // 2, size // 4 : 3 * size // 4] = 1
    mask[size // 2 : 7 * size // 8, size // 8 : size // 2] = 2
    return frame, mask


def test_token_phase_keeps_kv_and_kv_phase_keeps_tokens(tiny_backbone, monkeypatch):
    tokens_seen = []
    conditioning = learner_module.conditioning

    def spy(prompt, tokens):
        if isinstance(tokens, torch.nn.Parameter) and not tokens_seen:
            tokens_seen.append(tokens)  # the learned token parameter itself
        return conditioning(prompt, tokens)

    monkeypatch.setattr(learner_module, "conditioning", spy)
    learner = PartLearner(tiny_backbone, LearnSettings.for_backbone(tiny_backbone, steps=4, token_steps=2,
                                                                     eval_every=100))
    base = {n: p.detach().clone() for n, p in learner.kv_params.items()}
    states = []

    def snapshot(progress):
        kv = {n: p.detach().clone() for n, p in learner.kv_params.items()}
        states.append((progress.phase, tokens_seen[0].detach().clone(), kv))

    frame, mask = _reference()
    learner.learn([frame], [mask], ["a", "b"], progress=snapshot)
    assert [phase for phase, _, _ in states] == ["tokens", "tokens", "kv", "kv"]
    (_, tok1, kv1), (_, tok2, kv2), (_, tok3, kv3), (_, tok4, kv4) = states
    for kv in (kv1, kv2):  # token phase: every K/V weight is the base weight, bit for bit
        assert all(torch.equal(kv[n], base[n]) for n in base)
    assert not torch.equal(tok1, tok2)  # ... while the tokens move
    torch.testing.assert_close(tok3, tok2, rtol=0, atol=0)  # K/V phase: tokens frozen
    torch.testing.assert_close(tok4, tok2, rtol=0, atol=0)
    assert any(not torch.equal(kv3[n], base[n]) for n in base)  # ... while the K/V move
    assert any(not torch.equal(kv4[n], kv3[n]) for n in base)
    assert all(torch.equal(p, base[n]) for n, p in learner.kv_params.items())  # backbone restored after


def test_augmented_learning_runs(tiny_backbone, monkeypatch):
    """The SD default path: §4.1 augmentation on, a few steps, finite losses, every step augmented."""
    calls = []
    augment = learner_module.augment

    def spy(image, labels, target, rng, settings):
        out = augment(image, labels, target, rng, settings)
        calls.append((settings.enabled, not np.array_equal(out[0], image)))
        return out

    monkeypatch.setattr(learner_module, "augment", spy)
    settings = LearnSettings.for_backbone(tiny_backbone, steps=4, token_steps=2, eval_every=2,
                                          augment=AugmentSettings())
    losses = []
    frame, mask = _reference()
    model = PartLearner(tiny_backbone, settings).learn([frame], [mask], ["a", "b"],
                                                       progress=lambda p: losses.append(p.loss))
    assert len(calls) == 4 and all(enabled for enabled, _ in calls)
    assert sum(changed for _, changed in calls) >= 3  # crops/flips/blur changed the frame on most steps
    assert len(losses) == 4 and np.isfinite(losses).all()
    assert model.training["augment"]["enabled"] and model.validation_miou is not None
