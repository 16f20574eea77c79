"""Seconds per learning step and peak memory: tiny backbone on CPU; on a GPU also an SD2.1-shaped model
with random weights at 512 px (timing does not depend on weight values).

    python bench/learn.py [--steps 6] [--sd21] [--smoke]

``--smoke``: 2 steps, the tiny backbone only (checks that the bench runs).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import torch

from smite.learn.learner import LearnSettings, PartLearner
from smite.model.backbone import Backbone, load_backbone, weights_fingerprint
from smite.synthetic.shots import make_shot

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"


def sd21_shaped_random_backbone(device: str) -> Backbone:
    """SD 2.1-base architecture (published UNet config, SD VAE and a 23-layer 1024-d CLIP tower), random weights."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from smite.synthetic.tiny_backbone import SCHEDULER_CONFIG, build_tokenizer

    unet = UNet2DConditionModel.from_config(json.loads((DATA / "sd21_base_unet_config.json").read_text()))
    vae = AutoencoderKL(down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                        sample_size=512, scaling_factor=0.18215)
    tokenizer = build_tokenizer(Path("/tmp/smite-bench-tokenizer"))
    text = CLIPTextModel(CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=1024, intermediate_size=4096,
                                        num_hidden_layers=23, num_attention_heads=16, max_position_embeddings=77))
    dev = torch.device(device)
    for m in (unet, vae, text):
        m.to(dev).eval().requires_grad_(False)
    kv = {n: p.detach().clone() for n, p in unet.named_parameters() if ".attn2.to_k." in n or ".attn2.to_v." in n}
    dtype = torch.bfloat16 if dev.type == "cuda" else None
    return Backbone("sd21-shaped-random", tokenizer, text, vae, unet, DDIMScheduler(**SCHEDULER_CONFIG), dev, dtype,
                    weights_fingerprint(unet), kv)


def bench(backbone: Backbone, steps: int, label: str) -> None:
    shot = make_shot(num_frames=1, size=(backbone.resolution,) * 2, num_parts=3, seed=0)
    settings = LearnSettings(steps=steps, token_steps=steps // 2, eval_every=10**6, lr_kv=1e-4)
    times: list[float] = []
    last = [time.perf_counter()]

    def tick(_progress) -> None:
        now = time.perf_counter()
        times.append(now - last[0])
        last[0] = now

    if backbone.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    PartLearner(backbone, settings).learn([shot.frames[0]], [shot.labels[0]], shot.part_names, progress=tick)
    per_step = float(np.median(times[1:] if len(times) > 1 else times))
    if backbone.device.type == "cuda":
        peak = f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB GPU"
    else:
        peak = f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB RSS"
    print(f"{label}: {per_step:.3f} s/step (median of {len(times)}), peak {peak}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--sd21", action="store_true", help="also the SD2.1-shaped model (GPU recommended)")
    parser.add_argument("--smoke", action="store_true", help="2 steps, tiny backbone only")
    args = parser.parse_args()
    if args.smoke:
        args.steps, args.sd21 = 2, False
    tiny = load_backbone("tiny", device="cpu")
    bench(tiny, args.steps, f"tiny backbone, CPU, {tiny.resolution} px")
    if (torch.cuda.is_available() and not args.smoke) or args.sd21:
        device = "cuda" if torch.cuda.is_available() else "cpu"
        bench(sd21_shaped_random_backbone(device), args.steps, f"SD2.1-shaped random, {device}, 512 px")


if __name__ == "__main__":
    main()
