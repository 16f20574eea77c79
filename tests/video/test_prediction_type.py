"""v-prediction backbones (SD 2.1 at 768 px): DDIM step and SD loss follow the scheduler config (issue 9 item 3)."""

import dataclasses

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler
from test_segment import _untrained_model

import smite.learn.learner as learner_module
from smite.errors import SmiteError
from smite.learn.learner import LearnSettings, PartLearner
from smite.learn.losses import learning_loss
from smite.model.reference import to_epsilon_x0
from smite.video.guidance import ddim_step
from smite.video.settings import SegmentSettings
from smite.video.shot import ShotSegmenter


def _flipped(backbone, kind: str):
    """The tiny backbone with its scheduler config's prediction_type set to ``kind``."""
    scheduler = DDIMScheduler.from_config(backbone.scheduler.config, prediction_type=kind)
    return dataclasses.replace(backbone, scheduler=scheduler)


@pytest.mark.parametrize("kind", ["epsilon", "v_prediction"])
def test_ddim_step_matches_diffusers_for_both_prediction_types(tiny_backbone, kind):
    scheduler = _flipped(tiny_backbone, kind).scheduler
    scheduler.set_timesteps(1000)  # consecutive timesteps: diffusers' step goes from t to t - 1 as ours does
    g = torch.Generator().manual_seed(0)
    z, output = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 4, 8, 8, generator=g)
    expected = scheduler.step(output, 104, z, eta=0.0).prev_sample
    ours = ddim_step(z, output, scheduler.alphas_cumprod, 104, 103, kind)
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)
    if kind == "v_prediction":  # reading a v output as epsilon (the old code) gives a wrong x0
        abar = scheduler.alphas_cumprod[104]
        _, x0 = to_epsilon_x0(z, output, abar, kind)
        _, wrong = to_epsilon_x0(z, output, abar, "epsilon")
        torch.testing.assert_close(x0, abar.sqrt() * z - (1 - abar).sqrt() * output)
        assert (wrong - x0).abs().max() > 0.2


def _sd_targets(backbone, monkeypatch) -> tuple[torch.Tensor, torch.Tensor, int]:
    """One learning step on the tiny backbone: (noisy latents fed to the UNet, SD-loss target, timestep)."""
    seen = {}

    def spy_loss(ca, was, target, pred, sd_target, *args):
        seen.setdefault("target", sd_target.detach().clone())
        return learning_loss(ca, was, target, pred, sd_target, *args)

    monkeypatch.setattr(learner_module, "learning_loss", spy_loss)
    learner = PartLearner(backbone, LearnSettings.for_backbone(backbone, steps=1, token_steps=1, eval_every=1))
    run = learner.reader.run

    def spy_run(latents, t, cond, frames=1):
        seen.setdefault("zt", latents[0].detach().clone())
        seen.setdefault("t", int(t))
        return run(latents, t, cond, frames)

    learner.reader.run = spy_run
    rng = np.random.default_rng(0)
    frame = rng.random((64, 64, 3), dtype=np.float32)
    mask = np.zeros((64, 64), np.int64)
    mask[16:48, 16:48] = 1
    learner.learn([frame], [mask], ["square"])
    return seen["zt"], seen["target"][0], seen["t"]


def test_sd_loss_target_follows_the_prediction_type(tiny_backbone, monkeypatch):
    zt_e, eps, t = _sd_targets(_flipped(tiny_backbone, "epsilon"), monkeypatch)
    zt_v, v, t_v = _sd_targets(_flipped(tiny_backbone, "v_prediction"), monkeypatch)
    assert t == t_v
    torch.testing.assert_close(zt_e, zt_v)  # same seed: same clean latents, noise and timestep
    abar = tiny_backbone.scheduler.alphas_cumprod[t]
    z0 = (zt_e - (1 - abar).sqrt() * eps) / abar.sqrt()
    torch.testing.assert_close(v, abar.sqrt() * eps - (1 - abar).sqrt() * z0, rtol=1e-4, atol=1e-4)
    assert (v - eps).abs().max() > 0.1


def test_unsupported_prediction_type_is_refused(tiny_backbone):
    sample = _flipped(tiny_backbone, "sample")
    with pytest.raises(SmiteError, match="predicts 'sample'"):
        PartLearner(sample)
    with pytest.raises(SmiteError, match="predicts 'sample'"):
        ShotSegmenter(sample, _untrained_model(tiny_backbone), SegmentSettings(preset="quality"))
