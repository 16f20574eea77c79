"""Does the backbone's self-attention group same-part pixels? Same-part attention mass vs area share.

For frames of a synthetic shot: the hooked (full-resolution decoder) self-attention map SA (P, P) of the
reference pass; for each part, the mean over its pixels of the attention mass on pixels of the same part,
next to the part's area share (what uniform attention would give).

    python bench/attention_grouping.py [--backbone tiny] [--frames 4] [--smoke]

``--smoke``: one frame (checks that the bench runs).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from smite.learn.augment import labels_to_latent
from smite.model.backbone import load_backbone
from smite.model.conditioning import encode_text
from smite.model.framing import Framing, fit_image, fit_labels
from smite.model.reader import AttentionReader
from smite.model.reference import add_noise, to_latents
from smite.synthetic.shots import make_shot


def same_part_mass(sa: torch.Tensor, labels: np.ndarray) -> list[tuple[float, float]]:
    """Per part: (mean same-part attention mass of its pixels, its area share). sa (P, P), labels (S, S)."""
    flat = torch.from_numpy(labels.reshape(-1))
    out = []
    for c in np.unique(labels):
        member = (flat == int(c)).float()
        mass = (sa[flat == int(c)] @ member).mean().item()
        out.append((mass, member.mean().item()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backbone", default="tiny")
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--smoke", action="store_true", help="one frame")
    args = parser.parse_args()
    if args.smoke:
        args.frames = 1
    bb = load_backbone(args.backbone)
    reader = AttentionReader(bb)
    shot = make_shot(num_frames=args.frames, size=(bb.resolution,) * 2, num_parts=3, seed=0)
    gen = torch.Generator().manual_seed(0)
    cond = encode_text(bb, "background " + " ".join(shot.part_names))
    rows = []
    for frame, labels in zip(shot.frames, shot.labels):
        framing = Framing(frame.shape[:2], bb.resolution)
        with torch.no_grad():
            z = add_noise(bb, to_latents(bb, fit_image(frame, framing)[None], gen), 100, gen)
            reader.run(z, 100, cond)
            sa = reader.self_maps(0)
        rows += same_part_mass(sa, labels_to_latent(fit_labels(labels, framing), bb.latent_size))
    mass, share = np.array(rows).T
    print(f"{args.backbone}: same-part attention mass {mass.mean():.3f} vs area share {share.mean():.3f} "
          f"(ratio {mass.mean() / share.mean():.2f}x; per part-frame ratio median {np.median(mass / share):.2f}x)")


if __name__ == "__main__":
    main()
