"""Array backend of the numerical cores: torch tensors on a chosen device, numpy in and out.

Cores take and return numpy arrays; inside they move data to ``device`` ("cpu", "cuda",
"cuda:1", ...) once and compute in float64 (exact comparisons with nilearn / scikit-learn) or
float32 (``dtype="float32"``, faster on GPUs). Nothing here picks a device on its own: the
caller (config ``encoding.device``) decides.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import ConfigError

_DTYPES = {"float64": torch.float64, "float32": torch.float32}


def torch_dtype(dtype: str) -> torch.dtype:
    if dtype not in _DTYPES:
        raise ConfigError(f"dtype {dtype!r}: expected one of {sorted(_DTYPES)}")
    return _DTYPES[dtype]


def check_device(device: str) -> torch.device:
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"encoding.device = {device!r} but CUDA is not available on this machine; use 'cpu'")
    return dev


def to_tensor(a, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        return a.to(device=device, dtype=dtype)
    return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)


def to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()
