"""Warm re-learning (issue 13): continue from an existing part model with old and new (corrected) references.

An artist fixes the roto of the frame that went wrong and wants the model to learn it in seconds, not to start
over. The learner starts from the model's tokens and cross-attention K/V instead of the prompt encoding and the
base weights, and runs a short schedule (``warm_settings``) over the old and the new reference frames. The parts
must be the model's, in its order; new parts may be appended (their tokens start as in a fresh run: the prompt
encoding of the extended part list).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from smite.errors import SmiteError
from smite.io.names import sanitize_part_names
from smite.learn.learner import LearnSettings, PartLearner
from smite.model.backbone import Backbone
from smite.model.conditioning import initial_tokens
from smite.model.partmodel import PartModel

WARM_FRACTION = 0.2  # of the cold schedule's steps: the model already knows the parts
WARM_TOKEN_FRACTION = 0.1  # token steps of the warm schedule when parts were appended (none otherwise)


@dataclass
class WarmStart:
    """Where a warm run starts: ``tokens`` (n-1, D) for the run's parts and the model's ``kv`` weights."""

    tokens: torch.Tensor
    kv: dict[str, torch.Tensor]
    appended: int = 0

    def load_kv(self, params: dict[str, torch.nn.Parameter]) -> None:
        """Copy the model's K/V into the backbone's parameters (the learner restores the base weights after)."""
        with torch.no_grad():
            for name, value in self.kv.items():
                params[name].copy_(value.to(params[name].device, params[name].dtype))


def run_part_names(model: PartModel, part_names: Sequence[str] | None) -> list[str]:
    """The parts of a warm run (without background): the model's, or ``part_names`` if they extend them."""
    old = model.part_names[1:]
    if part_names is None:
        return list(old)
    names = [n for n in part_names if n.strip().lower() != "background"]
    names = sanitize_part_names(names)
    if names[: len(old)] != old:
        raise SmiteError(f"warm re-learning keeps the model's parts in order ({', '.join(old)}); new parts may only "
                         f"be appended, got {', '.join(names)}")
    return names


def warm_start(model: PartModel, backbone: Backbone, part_names: Sequence[str] | None = None) -> WarmStart:
    """The model's tokens and K/V, with fresh tokens for appended parts; fails clearly on another backbone."""
    model.check_backbone(backbone)
    names = run_part_names(model, part_names)
    fresh = initial_tokens(backbone, ["background", *names]).detach().float().cpu()
    old = model.tokens.detach().float().cpu()
    if old.shape[1] != fresh.shape[1]:
        raise SmiteError(f"part model tokens are {old.shape[1]}-d but the backbone's text space is {fresh.shape[1]}-d")
    tokens = torch.cat([old, fresh[len(old):]]).to(backbone.device)
    return WarmStart(tokens, dict(model.kv), appended=len(names) - len(old))


def warm_settings(model: PartModel, backbone: Backbone, part_names: Sequence[str] | None = None,
                  **overrides) -> LearnSettings:
    """A short schedule: ``WARM_FRACTION`` of the backbone's default steps, evaluated often; token steps only when
    parts are appended (``part_names`` extends the model's; otherwise the learned tokens stay and the K/V move)."""
    appended = len(run_part_names(model, part_names)) - (model.num_parts - 1)
    base = LearnSettings.for_backbone(backbone, map_mode=model.map_mode)
    steps = max(2, round(base.steps * WARM_FRACTION))
    token_steps = max(1, round(steps * WARM_TOKEN_FRACTION)) if appended else 0
    steps = overrides.get("steps", steps)
    return replace(base, **({"steps": steps, "token_steps": token_steps, "eval_every": max(1, steps // 5)} | overrides))


def kept_start(model: PartModel) -> bool:
    """Whether a warm run returned the model it started from: no step scored higher on the references. Seen when
    the starting model's own learn went wrong (it misses a part everywhere, not just on the corrected frame):
    continuing its K/V does not repair it; a fresh run on all the references does."""
    return model.training.get("selected_step") == 0


KEPT_START_NOTE = ("the warm re-learn kept the model it started from: no step scored higher on the references "
                   "(selection mIoU {miou:.3f}); if that model is wrong beyond the corrected frame, learn anew "
                   "without --from")


def relearn(
    backbone: Backbone, model: PartModel, frames: Sequence, masks: Sequence, part_names: Sequence[str] | None = None,
    reference_ids: Sequence[str] | None = None, settings: LearnSettings | None = None, progress=None, cancel=None,
    reader=None,
) -> PartModel:
    """Learn on ``frames``/``masks`` (old and new references, label maps in the run's part order) starting from
    ``model``. Returns the new part model; ``model`` and the backbone are left unchanged."""
    start = warm_start(model, backbone, part_names)
    names = run_part_names(model, part_names)
    settings = settings or warm_settings(model, backbone, names)
    learner = PartLearner(backbone, settings, reader=reader)
    return learner.learn(frames, masks, names, reference_ids, progress, cancel, start=start)
