"""Guided denoising pieces (method.md §6.3): step size, DDIM step, Adam-like update, energy descent."""

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler
from test_segment import _untrained_model

from smite.model.reference import add_noise, to_latents
from smite.video.guidance import AdamState, GuidanceSettings, LatentOptimizer, ddim_step, step_size
from smite.video.settings import SegmentSettings
from smite.video.shot import ShotSegmenter


def _sd_alphas() -> torch.Tensor:
    sched = DDIMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
    return sched.alphas_cumprod


def test_step_sizes_match_the_published_values():
    alphas = _sd_alphas()
    for t, eta in ((104, 0.01410), (103, 0.01404), (102, 0.01398)):
        assert step_size(alphas, t, 10.0) == pytest.approx(eta, abs=5e-5)


def test_ddim_step_moves_along_the_noise_prediction():
    alphas = _sd_alphas()
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 4, 8, 8, generator=g)
    z = alphas[104].sqrt() * x0 + (1 - alphas[104]).sqrt() * eps
    expected = alphas[103].sqrt() * x0 + (1 - alphas[103]).sqrt() * eps
    torch.testing.assert_close(ddim_step(z, eps, alphas, 104, 103), expected, rtol=1e-5, atol=1e-5)


def test_adam_update_is_torch_adam():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(3, 4, generator=g)
    param = torch.nn.Parameter(z.clone())
    adam = torch.optim.Adam([param], lr=0.014, betas=(0.9, 0.999), eps=1e-5)
    state, ours = AdamState.zeros_like(z), z.clone()
    for _ in range(6):
        grad = torch.randn(3, 4, generator=g)
        param.grad = grad.clone()
        adam.step()
        ours -= state.update(grad, 0.014, (0.9, 0.999), 1e-5)
    torch.testing.assert_close(ours, param.detach(), rtol=1e-6, atol=1e-7)


def test_settings_are_checked():
    with pytest.raises(ValueError):
        GuidanceSettings(timesteps=(1000,))
    with pytest.raises(ValueError):
        GuidanceSettings(guided_steps=5)
    assert GuidanceSettings().dct_threshold(0) == 0.999 and GuidanceSettings().dct_threshold(2) == 0.4


def test_latent_update_lowers_the_energy(tiny_backbone):
    """On a fixed two-frame example the summed chunk energy falls over the iterations of one guided step."""
    settings = SegmentSettings(preset="quality", guidance=GuidanceSettings(iterations=3, chunk=2))
    seg = ShotSegmenter(tiny_backbone, _untrained_model(tiny_backbone), settings)
    rng = np.random.default_rng(0)
    size = tiny_backbone.resolution
    images = rng.random((2, size, size, 3), dtype=np.float32)
    g = torch.Generator().manual_seed(0)
    with seg.part_model.applied(tiny_backbone) as tokens:
        from smite.model.conditioning import conditioning

        seg.cond = conditioning(seg.prompt, tokens).detach()
        z = add_noise(tiny_backbone, to_latents(tiny_backbone, images, g), 104, g)
        with torch.no_grad():
            current = seg._chunk_maps(z, 104)
            reference = seg._chunk_maps(add_noise(tiny_backbone, to_latents(tiny_backbone, images[::-1].copy(), g),
                                                  104, g), 104)
        optimizer = LatentOptimizer(seg._chunk_maps, settings.guidance, tiny_backbone.scheduler.alphas_cumprod)
        moved = optimizer.optimise(z, 104, 1, current, reference, None, None)
    energies = optimizer.energies
    assert len(energies) == 3 and energies[-1] < energies[0]
    assert moved.dtype == torch.float32 and (moved - z).abs().max() > 0
