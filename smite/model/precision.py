"""Full precision for everything but the UNet forward (method.md §0.2, §12).

Attention maps, WAS, the DCT, the learning losses and the guidance energies must be computed in fp32 (fp64 when
given fp64) even when the caller runs under bf16/fp16 autocast: in bf16 the gradient of the low-pass DCT energy
points elsewhere (cosine 0.25-0.48 to the fp64 one on 64x64 maps). ``full_precision`` switches autocast off
for the enclosed maths and ``work`` upcasts half tensors.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import TypeVar

import torch
from torch import Tensor

LOW_PRECISION = (torch.float16, torch.bfloat16)
_DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu")
F = TypeVar("F", bound=Callable)


@contextlib.contextmanager
def autocast_off() -> Iterator[None]:
    """Autocast disabled on every device type where it is on (ops then run in their inputs' dtype)."""
    with contextlib.ExitStack() as stack:
        for device_type in _DEVICE_TYPES:
            try:
                on = torch.is_autocast_enabled(device_type)
            except (RuntimeError, TypeError):  # a device type this torch build does not know
                continue
            if on:
                stack.enter_context(torch.autocast(device_type, enabled=False))
        yield


def full_precision(fn: F) -> F:
    """Decorator: run ``fn`` with autocast off (see :func:`autocast_off`)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with autocast_off():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def work_dtype(*tensors: Tensor) -> torch.dtype:
    """The dtype to compute in: the promoted floating dtype of ``tensors``, fp32 when that is half."""
    out = tensors[0].dtype
    for t in tensors[1:]:
        out = torch.promote_types(out, t.dtype)
    if not out.is_floating_point:
        raise ValueError(f"attention maths needs floating-point tensors, got {out}")
    return torch.float32 if out in LOW_PRECISION else out


def work(x: Tensor) -> Tensor:
    """``x`` upcast to fp32 if half, else unchanged."""
    return x.float() if x.dtype in LOW_PRECISION else x
