"""The environment every entry point and worker task sets: offline, quiet, and the same
floating-point kernels on every x86-64 CPU."""

from __future__ import annotations

import os
import platform

# The project's tools run offline and quietly wherever the CLI, a stage or a worker starts them.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DVC_NO_ANALYTICS": "1",
}


def set_offline_env() -> None:
    """Set each variable of :data:`OFFLINE_ENV` unless the environment already sets it."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)


# numpy, OpenBLAS, MKL and torch pick their vector kernels by CPU: an AVX-512 machine and an
# AVX2 one round sums differently in the last bit, and the runs differ from the first resampling
# (a reproduction on another machine then changes dvc.lock). Capping every library at AVX2 + FMA
# (x86-64-v3, every x86 server since 2015) gives the same floats on all of them. Read when the
# libraries load, so brainlike/__init__ sets these before anything imports numpy or torch.
KERNEL_ENV = {
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL AVX512_SPR",
    "OPENBLAS_CORETYPE": "Haswell",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
}
# "1" keeps each library's own choice (faster on AVX-512; outputs then differ in the last digits)
ENV_NATIVE_KERNELS = "BRAINLIKE_NATIVE_KERNELS"


def set_kernel_env() -> None:
    """Set each variable of :data:`KERNEL_ENV` unless the environment already sets it (x86-64
    only; nothing when ``$BRAINLIKE_NATIVE_KERNELS`` is 1). No effect on a library already loaded."""
    if os.environ.get(ENV_NATIVE_KERNELS, "").strip().lower() in ("1", "true", "yes"):
        return
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return
    for key, value in KERNEL_ENV.items():
        os.environ.setdefault(key, value)
