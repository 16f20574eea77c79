"""Maps, WAS, DCT energies and losses stay fp32 under bf16 autocast (method.md §0.2; issue 9 item 1)."""

import dataclasses

import numpy as np
import torch

from smite.learn.losses import learning_loss
from smite.model.maps import was_predict_attention, was_train
from smite.model.reader import AttentionReader
from smite.video.dct import lowpass_dct_energy
from smite.video.guidance import GuidanceSettings, guidance_energy

BF16 = torch.autocast("cpu", dtype=torch.bfloat16)


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double().flatten(), b.double().flatten()
    return float(a @ b / (a.norm() * b.norm()))


def _logit_maps(seed: int, frames: int = 4, parts: int = 3, side: int = 64) -> torch.Tensor:
    """Smooth random logit maps (frames, parts, side, side) fp32, in the range the reference pass gives."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.randn(frames, parts, side // 8, side // 8, generator=gen) * 4
    return torch.nn.functional.interpolate(coarse, size=(side, side), mode="bilinear")


def test_reader_maps_are_fp32_under_bf16_autocast(tiny_backbone):
    backbone = dataclasses.replace(tiny_backbone, autocast_dtype=torch.bfloat16)  # the CUDA default, on CPU
    reader = AttentionReader(backbone)
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(2, 4, 16, 16, generator=gen)  # small latents: bf16 matmuls are slow on CPU
    cond = torch.randn(2, 77, backbone.text_encoder.config.hidden_size, generator=gen)
    with BF16, torch.no_grad():
        reader.run(z, 100, cond, frames=2)
        assert reader.store.captured[reader.layers.cross[0]].batch_item(0).q.dtype == torch.bfloat16
        ca, sa = reader.cross_maps(0, 3), reader.self_maps(1)
        # WAS from the layers' bf16 q/k (the reader's was_maps needs full-size latents: ca is read at 64x64)
        small = torch.nn.functional.interpolate(ca[None], size=(16, 16), mode="bilinear")[0]
        was = was_predict_attention(small, reader.self_qk(0), 16)
    assert ca.dtype == sa.dtype == was.dtype == torch.float32
    torch.testing.assert_close(sa.sum(-1), torch.ones(sa.shape[0]), atol=1e-5, rtol=0)


def test_regulariser_gradient_under_bf16_autocast_matches_fp64():
    """The E_reg gradient the guidance follows: cosine to the fp64 one was 0.25-0.48 when computed in bf16."""
    for seed, threshold in ((0, 0.999), (1, 0.4)):
        ref = _logit_maps(seed)
        noise = torch.randn(ref.shape, generator=torch.Generator().manual_seed(seed + 10))
        pred = ref + 0.1 * noise  # another UNet call's maps differ from the reference at every frequency
        exact = pred.double().requires_grad_(True)
        lowpass_dct_energy(exact, ref.double(), threshold).backward()
        mixed = pred.clone().requires_grad_(True)
        with BF16:
            energy = lowpass_dct_energy(mixed, ref, threshold)
        energy.backward()
        assert energy.dtype == torch.float32
        assert _cosine(mixed.grad, exact.grad) > 0.999
        assert abs(float(energy.detach()) / float(lowpass_dct_energy(exact, ref.double(), threshold)) - 1) < 1e-4


def test_guidance_energy_through_was_under_bf16_autocast_matches_fp64():
    """Queries -> WAS (propagate) -> E = 8 E_reg + 0.1 E_track: gradient on q under bf16 autocast vs fp64."""
    gen = torch.Generator().manual_seed(3)
    heads, side, d, parts = 2, 16, 8, 3
    q = torch.randn(heads, side * side, d, generator=gen)
    k = torch.randn(heads, side * side, d, generator=gen)
    ca = _logit_maps(4, frames=1, parts=parts, side=side)[0]
    reference = _logit_maps(5, frames=1, parts=parts, side=side)
    target = reference.argmax(1)
    settings = GuidanceSettings()
    grads, energies = [], []
    for dtype, context in ((torch.float64, torch.autocast("cpu", enabled=False)), (torch.float32, BF16)):
        qq = q.to(dtype).requires_grad_(True)
        with context:
            maps = was_predict_attention(ca.to(dtype), [(qq, k.to(dtype), d**-0.5)], side)[None]
            energy = guidance_energy(maps, reference.to(dtype), target, 0.999, settings)
        assert maps.dtype == energy.dtype == dtype
        energy.backward()
        grads.append(qq.grad)
        energies.append(float(energy))
    assert _cosine(grads[0], grads[1]) > 0.999
    assert np.isclose(energies[0], energies[1], rtol=1e-4)


def test_learning_loss_under_bf16_autocast_is_fp32():
    ca = _logit_maps(6, frames=1)[0]
    sa = torch.softmax(torch.randn(64 * 64, 64 * 64, generator=torch.Generator().manual_seed(7)) * 3, -1)
    target = ca.argmax(0)
    exact = learning_loss(ca.double(), was_train(ca.double(), sa.double()), target, None, None, 0.001).total
    with BF16:
        was = was_train(ca, sa)
        terms = learning_loss(ca, was, target, None, None, 0.001)
    assert was.dtype == terms.total.dtype == torch.float32
    torch.testing.assert_close(was.double(), was_train(ca.double(), sa.double()), atol=1e-5, rtol=0)
    assert np.isclose(float(terms.total), float(exact), rtol=1e-4)
