"""The tiny backbone: a Stable-Diffusion-architecture model small enough for CPU tests, CI and the demo.

Same classes and on-disk layout as SD 2.1 (``AutoencoderKL``, ``UNet2DConditionModel`` with linear
projections and cross-attention, ``CLIPTextModel``, ``CLIPTokenizer``, ``DDIMScheduler``), so it is loaded
by the same loader as the real model. It differs only in size:

* 256-px frames, VAE factor 4 -> 64x64 latents, so the decoder's hooked layers sit at 16, 32 and 64 as in SD.
* UNet channels (32, 64, 96, 96), one layer per block, 64-d text space; CLIP text tower of 2 layers.
* A byte-level BPE tokenizer with no merges (built here, no download).

Random weights do not behave like SD where the method depends on it (latents that keep colour and texture,
decoder features that describe local texture), so ``build_tiny_backbone`` pretrains, reproducibly from a
seed, on procedural textured collages (``smite.synthetic.textures``): the VAE as an autoencoder, then the UNet as an
epsilon-prediction denoiser on those latents with the scheduler of SD. Latents are scaled to unit variance.
The result is committed under ``smite/model/assets/tiny-sd`` and rebuilt with
``python -m smite.synthetic.tiny_backbone``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from smite.synthetic.textures import random_collage_with_regions

TINY_RESOLUTION = 256
TEXT_DIM = 64

UNET_CONFIG = dict(
    sample_size=TINY_RESOLUTION // 4,
    in_channels=4,
    out_channels=4,
    block_out_channels=(32, 64, 96, 96),
    layers_per_block=1,
    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    attention_head_dim=(1, 2, 2, 2),  # diffusers' SD configs store the head *count* under this name
    cross_attention_dim=TEXT_DIM,
    use_linear_projection=True,
    norm_num_groups=8,
)
VAE_CONFIG = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 3,
    up_block_types=("UpDecoderBlock2D",) * 3,
    block_out_channels=(32, 64, 64),
    latent_channels=4,
    layers_per_block=1,
    norm_num_groups=8,
    sample_size=TINY_RESOLUTION,
)
SCHEDULER_CONFIG = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    clip_sample=False,
    set_alpha_to_one=False,
    steps_offset=1,
    prediction_type="epsilon",
)


def _byte_symbols() -> list[str]:
    """The 256 printable stand-ins for bytes used by byte-level BPE (GPT-2/CLIP convention)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    codes, extra = printable[:], 0
    for b in range(256):
        if b not in printable:
            codes.append(256 + extra)
            extra += 1
    return [chr(c) for c in codes]


def build_tokenizer(folder: Path):
    """Write and return a CLIP tokenizer whose vocabulary is the bytes (a word = its characters)."""
    from transformers import CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    symbols = _byte_symbols()
    vocab = symbols + [s + "</w>" for s in symbols] + ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), pad_token="<|endoftext|>")
    tokenizer.model_max_length = 77
    for name in ("vocab.json", "merges.txt"):
        (folder / name).unlink()
    tokenizer.save_pretrained(folder)
    return tokenizer


def build_text_encoder(tokenizer):
    """A 2-layer CLIP text tower with a 64-d output, randomly initialised (it only initialises part tokens)."""
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=TEXT_DIM,
        intermediate_size=4 * TEXT_DIM,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=77,
        projection_dim=TEXT_DIM,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return CLIPTextModel(config)


def _collage_pool(rng: np.random.Generator, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Procedural training images in [-1, 1] (count, 3, 256, 256) and their region maps (count, 1, 256, 256)."""
    pairs = [random_collage_with_regions(rng, TINY_RESOLUTION, shapes=int(rng.integers(3, 9))) for _ in range(count)]
    images = torch.from_numpy(np.stack([img for img, _ in pairs])).permute(0, 3, 1, 2) * 2 - 1
    regions = torch.from_numpy(np.stack([reg for _, reg in pairs]))[:, None].float()
    return images, regions


def _random_crops(pool: torch.Tensor, gen: torch.Generator, batch: int, size: int) -> torch.Tensor:
    """Random crops with random flips, shape (batch, C, size, size) (pool may stack images and regions)."""
    idx = torch.randint(len(pool), (batch,), generator=gen)
    ys = torch.randint(pool.shape[-2] - size + 1, (batch,), generator=gen)
    xs = torch.randint(pool.shape[-1] - size + 1, (batch,), generator=gen)
    crops = torch.stack([pool[i, :, y : y + size, x : x + size] for i, y, x in zip(idx, ys, xs)])
    flip = torch.rand(batch, generator=gen) < 0.5
    crops[flip] = crops[flip].flip(-1)
    return crops


def pretrain_vae(vae, pool: torch.Tensor, gen: torch.Generator, steps: int, log) -> float:
    """Train the VAE as an autoencoder (MSE + tiny KL); return the latent scaling factor (1/std)."""
    opt = torch.optim.AdamW(vae.parameters(), lr=2e-3, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    vae.train()
    for step in range(steps):
        x = _random_crops(pool, gen, 8, 64)
        posterior = vae.encode(x).latent_dist
        recon = vae.decode(posterior.sample(generator=gen)).sample
        loss = F.mse_loss(recon, x) + 1e-6 * posterior.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0 or step == steps - 1:
            log(f"vae step {step}/{steps} recon mse {F.mse_loss(recon, x).item():.4f}")
    vae.eval()
    with torch.no_grad():
        latents = torch.cat([vae.encode(pool[i : i + 8]).latent_dist.mean for i in range(0, min(64, len(pool)), 8)])
    return float(1.0 / latents.std())


def pretrain_unet(unet, vae, scaling: float, cond: torch.Tensor, pool, gen, steps: int, log) -> None:
    """Train the UNet as an epsilon-prediction denoiser on scaled VAE latents (SD's objective)."""
    from diffusers import DDPMScheduler

    noise_sched = DDPMScheduler(**{k: v for k, v in SCHEDULER_CONFIG.items() if k != "set_alpha_to_one"})
    opt = torch.optim.AdamW(unet.parameters(), lr=1e-3, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    unet.train()
    for step in range(steps):
        with torch.no_grad():
            x = _random_crops(pool, gen, 4, 128)
            z0 = vae.encode(x).latent_dist.sample(generator=gen) * scaling
        # Low timesteps dominate SMITE (t <= 105); sample them more often, but keep the full range.
        t = torch.where(
            torch.rand(4, generator=gen) < 0.5,
            torch.randint(1, 200, (4,), generator=gen),
            torch.randint(1, 1000, (4,), generator=gen),
        )
        eps = torch.randn(z0.shape, generator=gen)
        pred = unet(noise_sched.add_noise(z0, eps, t), t, cond.expand(4, -1, -1)).sample
        loss = F.mse_loss(pred, eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 100 == 0 or step == steps - 1:
            log(f"unet step {step}/{steps} eps mse {loss.item():.4f}")
    unet.eval()


def _same_region_mass(probs: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
    """Per query pixel, the attention mass on key pixels of its own region: probs (P, P), regions (P,) -> (P,)."""
    same = (regions[:, None] == regions[None, :]).to(probs.dtype)
    return (probs * same).sum(-1)


def pretrain_grouping(unet, vae, scaling: float, cond, pool, regions, seed: int, steps: int, weight: float, log):
    """Teach the full-resolution decoder self-attention to group pixels of the same region.

    SMITE's WAS rests on SD's self-attention attending mostly within the same object or part, a property SD
    learned from billions of images. Denoising on procedural collages for minutes does not produce it (the
    attention stays near uniform), so this stage adds, to the denoising loss, ``-log`` of each pixel's attention
    mass on its own collage region in the hooked self-attention layers (the collage's region map is known).
    """
    from diffusers import DDPMScheduler
    from diffusers.models.attention_processor import AttnProcessor2_0

    from smite.model.attention import AttentionStore, find_hooked_layers, install_capture
    from smite.model.maps import self_attention_probs

    gen = torch.Generator().manual_seed(seed + 2)
    layers, store = find_hooked_layers(unet), AttentionStore()
    install_capture(unet, layers, store)
    noise_sched = DDPMScheduler(**{k: v for k, v in SCHEDULER_CONFIG.items() if k != "set_alpha_to_one"})
    opt = torch.optim.AdamW(unet.parameters(), lr=3e-4, weight_decay=0.0)
    stacked = torch.cat([pool, regions], 1)
    unet.train()
    for step in range(steps):
        crops = _random_crops(stacked, gen, 2, 192)
        x, reg = crops[:, :3], crops[:, 3:]
        with torch.no_grad():
            z0 = vae.encode(x).latent_dist.sample(generator=gen) * scaling
        t = torch.randint(1, 200, (2,), generator=gen)
        eps = torch.randn(z0.shape, generator=gen)
        pred = unet(noise_sched.add_noise(z0, eps, t), t, cond.expand(2, -1, -1)).sample
        reg_latent = F.interpolate(reg, size=z0.shape[-2:], mode="nearest").flatten(1)
        grouping = torch.stack([
            -torch.log(_same_region_mass(self_attention_probs(qk.q, qk.k, qk.heads, qk.scale, None), reg_latent[b])
                       + 1e-6).mean()
            for name in layers.self_ for b in range(2) for qk in [store.captured[name].batch_item(b)]
        ]).mean()
        loss = F.mse_loss(pred, eps) + weight * grouping
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            log(f"grouping step {step}/{steps} eps mse {F.mse_loss(pred, eps).item():.4f} "
                f"same-region -log mass {grouping.item():.3f}")
    unet.eval()
    unet.set_attn_processor(AttnProcessor2_0())


def build_tiny_backbone(
    out: Path, seed: int = 0, vae_steps: int = 500, unet_steps: int = 1500, grouping_steps: int = 300,
    grouping_weight: float = 0.1, log=print,
) -> Path:
    """Build, pretrain and save the tiny backbone in diffusers layout under ``out``; returns ``out``."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    started = time.time()
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(out / "tokenizer")
    text_encoder = build_text_encoder(tokenizer).eval()
    vae = AutoencoderKL(**VAE_CONFIG)
    unet = UNet2DConditionModel(**UNET_CONFIG)
    pool, regions = _collage_pool(np.random.default_rng(seed), 192)
    scaling = pretrain_vae(vae, pool, gen, vae_steps, log)
    vae.register_to_config(scaling_factor=scaling)
    with torch.no_grad():
        ids = tokenizer("", padding="max_length", max_length=77, return_tensors="pt").input_ids
        cond = text_encoder(ids)[0]
    pretrain_unet(unet, vae, scaling, cond, pool, gen, unet_steps, log)
    pretrain_grouping(unet, vae, scaling, cond, pool, regions, seed, grouping_steps, grouping_weight, log)
    text_encoder.save_pretrained(out / "text_encoder")
    vae.save_pretrained(out / "vae")
    unet.save_pretrained(out / "unet")
    DDIMScheduler(**SCHEDULER_CONFIG).save_pretrained(out / "scheduler")
    index = {
        "_class_name": "StableDiffusionPipeline",
        "_diffusers_version": "0.30.0",
        "_smite_tiny": {"seed": seed, "vae_steps": vae_steps, "unet_steps": unet_steps, "resolution": 256,
                        "grouping_steps": grouping_steps, "grouping_weight": grouping_weight},
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
        "scheduler": ["diffusers", "DDIMScheduler"],
    }
    (out / "model_index.json").write_text(json.dumps(index, indent=2))
    log(f"tiny backbone written to {out} in {time.time() - started:.0f} s (latent scale {scaling:.4f})")
    return out


def regroup_tiny_backbone(source: Path, out: Path, seed: int, steps: int, weight: float, log=print) -> Path:
    """Run only the grouping stage on an already built backbone (same seeds as the full build)."""
    import shutil

    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    if out.resolve() != source.resolve():
        shutil.copytree(source, out, dirs_exist_ok=True)
    vae = AutoencoderKL.from_pretrained(source, subfolder="vae").eval()
    unet = UNet2DConditionModel.from_pretrained(source, subfolder="unet")
    tokenizer = CLIPTokenizer.from_pretrained(source, subfolder="tokenizer")
    text_encoder = CLIPTextModel.from_pretrained(source, subfolder="text_encoder").eval()
    with torch.no_grad():
        ids = tokenizer("", padding="max_length", max_length=77, return_tensors="pt").input_ids
        cond = text_encoder(ids)[0]
    pool, regions = _collage_pool(np.random.default_rng(seed), 192)
    pretrain_grouping(unet, vae, vae.config.scaling_factor, cond, pool, regions, seed, steps, weight, log)
    unet.save_pretrained(out / "unet")
    index = json.loads((out / "model_index.json").read_text())
    index["_smite_tiny"] |= {"grouping_steps": steps, "grouping_weight": weight}
    (out / "model_index.json").write_text(json.dumps(index, indent=2))
    return out


def main() -> None:
    from smite.model.assets import TINY_BACKBONE_DIR

    parser = argparse.ArgumentParser(description="Rebuild the tiny SD-architecture test backbone (CPU, minutes).")
    parser.add_argument("--out", type=Path, default=TINY_BACKBONE_DIR)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vae-steps", type=int, default=500)
    parser.add_argument("--unet-steps", type=int, default=1500)
    parser.add_argument("--grouping-steps", type=int, default=300)
    parser.add_argument("--grouping-weight", type=float, default=0.1)
    parser.add_argument("--grouping-only", type=Path, default=None,
                        help="run only the grouping stage, starting from this built backbone folder")
    args = parser.parse_args()
    if args.grouping_only is not None:
        regroup_tiny_backbone(args.grouping_only, args.out, args.seed, args.grouping_steps, args.grouping_weight)
    else:
        build_tiny_backbone(args.out, args.seed, args.vae_steps, args.unet_steps, args.grouping_steps,
                            args.grouping_weight)


if __name__ == "__main__":
    main()
