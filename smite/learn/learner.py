"""Few-shot part learning (method.md §4, with the fixes of §0).

Learns the n-1 part tokens (background is the BOS token, never learned) and then the K/V projections of
every cross-attention layer from one or a few reference frames with label masks:

1. 300 epochs of one shuffled pass over the training references each: tokens for the first 51 epochs, then
   the K/V (§4.4); no step that updates nothing (§12.7);
2. loss = weighted CE on cross-attention logits + n * MSE(WAS_train, one-hot) + 0.005 * SD loss (CFG 100)
   + Fourier term (after the first 5 epochs) (§4.3);
3. §4.1 augmentations; true (unscaled) gradients, token gradients clipped at norm 1.5 (§4.5);
4. model selection by the prediction path's mIoU: on held-out references when there are at least 3
   (every third is held out), else on the training references themselves.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch

from smite.errors import Cancelled, SmiteError
from smite.io.names import sanitize_part_names
from smite.learn.augment import AugmentSettings, augment, labels_to_latent, mirrored_pairs
from smite.learn.losses import learning_loss
from smite.model.backbone import Backbone, is_kv_parameter
from smite.model.conditioning import conditioning, encode_text, initial_tokens, part_prompt
from smite.model.framing import Framing, check_frame, fit_image, fit_labels
from smite.model.maps import was_train_attention
from smite.model.partmodel import PartModel
from smite.model.reader import AttentionReader
from smite.model.reference import (
    MAP_MODES,
    Posterior,
    encode_posterior,
    prediction_target,
    prediction_type,
    reference_logits,
    sample_posterior,
)

TRAIN_TIMESTEPS = (5, 100)  # inclusive (§1.3)
CFG_SCALE = 100.0  # training guidance scale: only shapes the SD loss term


@dataclass(frozen=True)
class LearnSettings:
    """Learning options. Defaults are the method's for SD (§4.4): 300 epochs, tokens for the first 51.

    An epoch is one pass over the training references (batch 1), so ``steps`` and ``token_steps`` count steps
    *per training reference* and a run takes ``steps x |train set|`` optimisation steps (:meth:`schedule`);
    ``eval_every`` and the Fourier-loss switch (after epoch 5) count epochs too.
    ``flip``: horizontal flip augmentation (§4.1; the method's ``--no_flip_dataset`` turns it off). None: on,
    unless two part names differ only by left/right (a flip would swap those parts but not their labels).
    """

    steps: int = 300
    token_steps: int = 51
    lr_tokens: float = 0.1
    lr_kv: float = 1e-6
    token_clip: float = 1.5
    sd_weight: float = 0.005
    fourier_weight: float = 0.001
    eval_every: int = 25
    map_mode: str = "was"
    seed: int = 0
    flip: bool | None = None
    augment: AugmentSettings = field(default_factory=AugmentSettings)

    @classmethod
    def for_backbone(cls, backbone: Backbone, **overrides) -> LearnSettings:
        """Defaults suited to a backbone: the method's for SD. For the tiny backbone (measured on synthetic shots,
        one reference, see README): 100 steps per reference (20 token steps), a K/V learning rate that moves its
        small weights (1e-2), and no augmentation (with it, held-out mIoU fell from 0.91 to 0.65-0.75 in this
        short schedule)."""
        base = cls()
        if backbone.is_tiny:
            base = replace(base, steps=100, token_steps=20, lr_kv=1e-2, eval_every=10,
                           augment=AugmentSettings(enabled=False))
        return replace(base, **overrides)

    def schedule(self, num_references: int) -> Schedule:
        """The step schedule of a run on ``num_references`` references (the training set is
        :func:`split_references`'s)."""
        per_epoch = train_size(num_references)
        total = self.steps * per_epoch
        return Schedule(total=total, token_steps=min(self.token_steps * per_epoch, total), per_epoch=per_epoch,
                        eval_every=max(1, self.eval_every) * per_epoch)


@dataclass(frozen=True)
class Schedule:
    """Steps of one learning run: ``total``, the first ``token_steps`` learn the tokens, the rest the K/V;
    ``per_epoch`` steps make an epoch; model selection every ``eval_every`` steps (and at both phase ends)."""

    total: int
    token_steps: int
    per_epoch: int
    eval_every: int

    def epoch(self, step: int) -> int:
        return step // self.per_epoch

    def evaluates(self, step: int) -> bool:
        return (step + 1) % self.eval_every == 0 or step + 1 in (self.token_steps, self.total)


@dataclass(frozen=True)
class LearnProgress:
    """One progress report: ``miou`` is the latest model-selection mIoU (None before the first evaluation)."""

    step: int
    total: int
    loss: float
    miou: float | None
    phase: str
    elapsed: float


@dataclass
class ReferenceSet:
    """Reference frames fitted to the model frame: images (K, R, R, 3) float32, labels (K, R, R) int64."""

    images: np.ndarray
    labels: np.ndarray
    ids: list[str]


def prepare_references(
    frames: Sequence[np.ndarray], masks: Sequence[np.ndarray], part_names: Sequence[str], resolution: int,
    ids: Sequence[str] | None = None,
) -> tuple[list[str], ReferenceSet]:
    """Validate references and fit them into the model frame. Returns (part names with background, set)."""
    if len(frames) == 0:
        raise SmiteError("no reference frames given: learning needs at least one frame with a mask")
    if len(frames) != len(masks):
        raise SmiteError(f"{len(frames)} reference frames but {len(masks)} masks; give one mask per frame")
    names = list(part_names)
    if names and names[0].strip().lower() == "background":
        names = names[1:]
    names = ["background", *sanitize_part_names(names)]
    if len(set(names)) != len(names):
        raise SmiteError("'background' is implicit (label 0); do not list it among the parts")
    ids = list(ids) if ids is not None else [f"ref{i}" for i in range(len(frames))]
    images, labels = [], []
    for i, (frame, mask) in enumerate(zip(frames, masks)):
        check_frame(frame, ids[i])
        mask = np.asarray(mask)
        if mask.shape != frame.shape[:2]:
            raise SmiteError(
                f"mask of reference {ids[i]} is {mask.shape[1]}x{mask.shape[0]} but its frame is "
                f"{frame.shape[1]}x{frame.shape[0]}; masks must match their frames"
            )
        bad = np.setdiff1d(np.unique(mask), np.arange(len(names)))
        if bad.size:
            raise SmiteError(
                f"mask of reference {ids[i]} has label {int(bad[0])} but there are only {len(names) - 1} parts "
                f"({', '.join(names[1:])}); labels must be 0 (background) to {len(names) - 1}"
            )
        framing = Framing(frame.shape[:2], resolution)
        images.append(fit_image(frame.astype(np.float32), framing))
        labels.append(fit_labels(mask, framing))
    present = np.unique(np.concatenate([np.unique(m) for m in masks]))
    missing = [names[c] for c in range(1, len(names)) if c not in present]
    if missing:
        raise SmiteError(f"part(s) {', '.join(missing)} have no pixels in any reference mask; roto them or drop them")
    return names, ReferenceSet(np.stack(images), np.stack(labels), ids)


def flip_allowed(flip: bool | None, names: Sequence[str]) -> bool:
    """Whether flip augmentation runs: ``flip`` when given, else unless parts pair up as left/right."""
    return bool(flip) if flip is not None else not mirrored_pairs(names)


def train_size(num_references: int) -> int:
    """How many of ``num_references`` references :func:`split_references` trains on."""
    return num_references if num_references < 3 else num_references - num_references // 3


def split_references(refs: ReferenceSet) -> tuple[ReferenceSet, ReferenceSet]:
    """(train, validation): every third reference is held out when there are at least 3, else both = all."""
    k = len(refs.ids)
    if k < 3:
        return refs, refs
    held = [i for i in range(k) if i % 3 == 2]
    kept = [i for i in range(k) if i % 3 != 2]

    def pick(idx: list[int]) -> ReferenceSet:
        return ReferenceSet(refs.images[idx], refs.labels[idx], [refs.ids[i] for i in idx])

    return pick(kept), pick(held)


def miou(pred: np.ndarray, gt: np.ndarray, n: int) -> float:
    """Mean IoU over the parts present in ``gt`` (background included): the model-selection score."""
    ious = []
    for c in range(n):
        g, p = gt == c, pred == c
        if g.any():
            ious.append((g & p).sum() / (g | p).sum())
    return float(np.mean(ious))


class PartLearner:
    """Learns a ``PartModel`` on a backbone. One learner per learning job; the backbone stays shared."""

    def __init__(
        self, backbone: Backbone, settings: LearnSettings | None = None, reader: AttentionReader | None = None
    ) -> None:
        self.backbone = backbone
        self.settings = settings or LearnSettings.for_backbone(backbone)
        if self.settings.map_mode not in MAP_MODES:
            raise SmiteError(f"unknown map mode {self.settings.map_mode!r}; use one of {', '.join(MAP_MODES)}")
        self.prediction = prediction_type(backbone)
        self.reader = reader or AttentionReader(backbone)
        self.kv_params = {n: p for n, p in backbone.unet.named_parameters() if is_kv_parameter(n)}

    def learn(
        self,
        frames: Sequence[np.ndarray],
        masks: Sequence[np.ndarray],
        part_names: Sequence[str],
        reference_ids: Sequence[str] | None = None,
        progress: Callable[[LearnProgress], None] | None = None,
        cancel: Callable[[], bool] | None = None,
        start=None,
    ) -> PartModel:
        """Learn parts from frames (H, W, 3) float32 in [0, 1] and label masks (H, W) int (0 = background,
        k = ``part_names[k-1]``). Returns the best part model found; the backbone is left unchanged.
        ``start``: a ``smite.learn.warm.WarmStart`` to continue from (its tokens and K/V) instead of a fresh run."""
        s, bb = self.settings, self.backbone
        names, refs = prepare_references(frames, masks, part_names, bb.resolution, reference_ids)
        train, val = split_references(refs)
        plan = s.schedule(len(refs.ids))
        self._augment = replace(s.augment, flip=s.augment.flip and flip_allowed(s.flip, names))
        self._posteriors: dict[int, Posterior] = {}
        torch.manual_seed(s.seed)
        rng, gen = np.random.default_rng(s.seed), torch.Generator().manual_seed(s.seed)
        prompt, empty = encode_text(bb, part_prompt(names)), encode_text(bb, "")
        tokens = torch.nn.Parameter(initial_tokens(bb, names) if start is None else start.tokens.clone())
        opt_tokens = torch.optim.Adam([tokens], lr=s.lr_tokens)
        opt_kv = torch.optim.Adam(self.kv_params.values(), lr=s.lr_kv)
        best: tuple[float, dict, int] | None = None  # (score, state, steps taken: 0 = the warm start)
        started, last_miou = time.time(), None
        try:
            if start is not None:  # warm: the model's K/V, and the starting point is a model-selection candidate
                start.load_kv(self.kv_params)
                best = (self._evaluate(val, names, tokens, prompt), self._snapshot(tokens), 0)
            order: list[int] = []
            for step in range(plan.total):
                if cancel is not None and cancel():
                    raise Cancelled("learning")
                if not order:  # a new epoch: one shuffled pass over the training references
                    order = [int(k) for k in rng.permutation(plan.per_epoch)] if plan.per_epoch > 1 else [0]
                phase = "tokens" if step < plan.token_steps else "kv"
                loss = self._step(plan.epoch(step), order.pop(), phase, train, names, tokens, prompt, empty, rng,
                                  gen, opt_tokens, opt_kv)
                if plan.evaluates(step):
                    last_miou = self._evaluate(val, names, tokens, prompt)
                    if best is None or last_miou > best[0]:
                        best = (last_miou, self._snapshot(tokens), step + 1)
                if progress is not None:
                    progress(LearnProgress(step + 1, plan.total, loss, last_miou, phase, time.time() - started))
            return self._part_model(names, refs, best)
        finally:
            bb.restore_base_kv()
            for p in self.kv_params.values():
                p.requires_grad_(False)

    def _step(self, epoch, k, phase, train, names, tokens, prompt, empty, rng, gen, opt_tokens, opt_kv) -> float:
        """One optimisation step on augmented reference ``k`` in epoch ``epoch`` (batch 1, CFG pair for the SD
        loss)."""
        s, bb, n = self.settings, self.backbone, len(names)
        image, labels = augment(train.images[k], train.labels[k], epoch % n, rng, self._augment)
        target = torch.from_numpy(labels_to_latent(labels, bb.latent_size)).long().to(bb.device)
        for p in self.kv_params.values():
            p.requires_grad_(phase == "kv")
        z0 = sample_posterior(bb, self._posterior(k, image), gen)
        t = int(torch.randint(TRAIN_TIMESTEPS[0], TRAIN_TIMESTEPS[1] + 1, (1,), generator=gen))
        eps = torch.randn(z0.shape, generator=gen).to(bb.device)
        abar = bb.scheduler.alphas_cumprod[t].to(bb.device)
        zt = abar.sqrt() * z0 + (1 - abar).sqrt() * eps
        cond = conditioning(prompt, tokens)
        with_sd = s.sd_weight > 0
        batch_cond = torch.cat([empty, cond]) if with_sd else cond
        eps_pred = self.reader.run(zt.expand(len(batch_cond), -1, -1, -1), t, batch_cond)
        item = 1 if with_sd else 0
        ca = self.reader.cross_maps(item, n)
        was = was_train_attention(ca, self.reader.self_qk(item))  # no P x P self-attention map is built
        guided = eps_pred[:1] + CFG_SCALE * (eps_pred[1:] - eps_pred[:1]) if with_sd else None
        sd_target = prediction_target(z0, eps, abar, self.prediction) if with_sd else None
        terms = learning_loss(ca, was, target, guided, sd_target,
                              s.fourier_weight if epoch > 5 else 0.0, s.sd_weight)
        opt_tokens.zero_grad(set_to_none=True)
        opt_kv.zero_grad(set_to_none=True)
        terms.total.backward()
        if phase == "tokens":
            torch.nn.utils.clip_grad_norm_([tokens], s.token_clip)
            opt_tokens.step()
        else:
            opt_kv.step()
        loss = float(terms.total.detach())
        if not math.isfinite(loss):
            raise SmiteError(f"learning diverged in epoch {epoch + 1} (loss {loss}); lower the learning rates")
        return loss

    def _posterior(self, k: int, image: np.ndarray) -> Posterior:
        """The VAE posterior of training sample ``k``; without augmentation the image is the same every epoch, so
        it is encoded once (a tenth of a tiny-backbone step; each step still draws its own sample)."""
        if self._augment.enabled:
            return encode_posterior(self.backbone, image[None])
        if k not in self._posteriors:
            self._posteriors[k] = encode_posterior(self.backbone, image[None])
        return self._posteriors[k]

    def _evaluate(self, val: ReferenceSet, names: list[str], tokens: torch.Tensor, prompt: torch.Tensor) -> float:
        """mIoU of the prediction path on the validation references (fixed noise: comparable across steps)."""
        gen = torch.Generator().manual_seed(self.settings.seed + 1)
        cond = conditioning(prompt, tokens.detach())
        scores = []
        for image, labels in zip(val.images, val.labels):
            logits = reference_logits(self.backbone, self.reader, image[None], cond, gen, len(names),
                                      self.settings.map_mode)[0]
            pred = torch.nn.functional.interpolate(logits[None], size=labels.shape, mode="bilinear")[0].argmax(0)
            scores.append(miou(pred.cpu().numpy(), labels, len(names)))
        return float(np.mean(scores))

    def _snapshot(self, tokens: torch.Tensor) -> dict:
        return {
            "tokens": tokens.detach().cpu().clone(),
            "kv": {n: p.detach().cpu().clone() for n, p in self.kv_params.items()},
        }

    def _part_model(self, names: list[str], refs: ReferenceSet, best: tuple[float, dict, int] | None) -> PartModel:
        s, bb = self.settings, self.backbone
        if best is None:
            raise SmiteError("learning ran no evaluation; give at least one step")
        score, state, selected_step = best
        training = asdict(s) | {"augment": asdict(self._augment), "flip": self._augment.flip,
                                "selected_step": selected_step}
        return PartModel(
            part_names=names, tokens=state["tokens"], kv=state["kv"], base_model=bb.model_id,
            base_fingerprint=bb.fingerprint, resolution=bb.resolution, map_mode=s.map_mode,
            training=training, seed=s.seed, reference_ids=list(refs.ids),
            validation_miou=score,
        )


def learn_parts(
    backbone: Backbone, frames: Sequence[np.ndarray], masks: Sequence[np.ndarray], part_names: Sequence[str],
    settings: LearnSettings | None = None, **kwargs,
) -> PartModel:
    """Convenience wrapper: ``PartLearner(backbone, settings).learn(frames, masks, part_names, **kwargs)``."""
    return PartLearner(backbone, settings).learn(frames, masks, part_names, **kwargs)

