"""Process-wide settings of a training: float32 precision, the default dtype, the C allocator.

The float32 matmul precision is a setting (``Config.tf32``), applied for the run only.

TF32 tensor cores (NVIDIA Ampere and later) multiply float32 matrices with a 10-bit mantissa,
several times faster than IEEE float32. PyTorch 1.7-1.11, which the lineage's code ran on,
allowed them by default for matmuls and convolutions; PyTorch >= 1.12 no longer does for
matmuls. ``tf32=True`` reproduces the lineage's arithmetic on such GPUs (docs/decisions.md).

:func:`run_precision` sets the CUDA settings that decide it and puts back what it found when the
run ends, exceptions included, so that a training leaves nothing behind in the process. On CPU
it changes nothing: TF32 is a GPU format. torch >= 2.9 has one setting per backend
(``fp32_precision``); older torch has the cuBLAS/cuDNN ``allow_tf32`` flags, where the cuBLAS
flag writes torch's global float32 matmul precision. Each is used where it exists, never mixed:
torch refuses to read one after the other was written.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import platform
from collections.abc import Iterator

import torch

AMPERE = (8, 0)  # choice: the first compute capability with TF32 tensor cores (NVIDIA A100)


def _backends() -> dict[str, object]:
    """torch >= 2.9's per-backend settings that concern CUDA float32, by name; {} before."""
    found = {}
    for parent, child in (("cuda", "matmul"), ("cudnn", "conv"), ("cudnn", "rnn")):
        backend = getattr(getattr(torch.backends, parent), child, None)
        try:
            backend.fp32_precision  # noqa: B018 - probing: older torch raises AttributeError
        except AttributeError:
            continue
        found[f"{parent}.{child}"] = backend
    return found if "cuda.matmul" in found else {}


@contextlib.contextmanager
def run_precision(tf32: bool, device: str | torch.device) -> Iterator[None]:
    """Allow (or forbid) TF32 for float32 matmuls and cuDNN convolutions while the block runs on
    a CUDA ``device``; put the previous settings back afterwards, whatever happens in the block."""
    if torch.device(device).type != "cuda":
        yield
        return
    backends = _backends()
    if backends:
        saved = {name: b.fp32_precision for name, b in backends.items()}
        try:
            for b in backends.values():
                b.fp32_precision = "tf32" if tf32 else "ieee"
            yield
        finally:
            for name, b in backends.items():
                b.fp32_precision = saved[name]
        return
    # Older torch: the global precision, not the cuBLAS flag, is what to restore: the flag reads
    # "high" and "medium" alike. Writing the flag writes exactly that global.
    matmul, cudnn = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        yield
    finally:
        torch.set_float32_matmul_precision(matmul)
        torch.backends.cudnn.allow_tf32 = cudnn


@contextlib.contextmanager
def run_dtype(dtype: str) -> Iterator[torch.dtype]:
    """torch's default floating-point type set to ``dtype`` ("float32" or "float64") while the
    block runs, so that every network, noise draw and loss of the run has it; put back after."""
    saved = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, dtype))
    try:
        yield torch.get_default_dtype()
    finally:
        torch.set_default_dtype(saved)


def cuda_settings() -> dict[str, str]:
    """What CUDA float32 matmuls and convolutions may use now: ``{"matmul", "cudnn"}``, each
    "tf32", "ieee" or another reduced format torch was told to allow (e.g. "bf16")."""
    backends = _backends()
    if not backends:
        return {"matmul": "tf32" if torch.backends.cuda.matmul.allow_tf32 else "ieee",
                "cudnn": "tf32" if torch.backends.cudnn.allow_tf32 else "ieee"}
    return {"matmul": _resolved(backends["cuda.matmul"], torch.backends.cuda),
            "cudnn": _resolved(backends.get("cudnn.conv"), torch.backends.cudnn)}


def _resolved(backend, parent) -> str:
    """A per-backend setting with "none" (inherit) followed up to the global one."""
    for node in (backend, parent, torch.backends):
        value = getattr(node, "fp32_precision", "none") if node is not None else "none"
        if value != "none":
            return value
    return "ieee"


def effective(device: str | torch.device) -> dict:
    """The float32 arithmetic a run on ``device`` gets now, for its record:
    ``{"device", "float32_matmul": "tf32" | "ieee" | ..., "cudnn" (CUDA only)}``."""
    dev = torch.device(device)
    if dev.type == "cuda":
        settings = cuda_settings()
        if torch.cuda.get_device_capability(dev) < AMPERE:  # no TF32 units: IEEE whatever is set
            settings = {k: "ieee" if v == "tf32" else v for k, v in settings.items()}
        return {"device": "cuda", "device_name": torch.cuda.get_device_name(dev),
                "float32_matmul": settings["matmul"], "cudnn": settings["cudnn"]}
    return {"device": dev.type, "float32_matmul": _cpu_matmul()}


def _cpu_matmul() -> str:
    """What oneDNN may do to float32 matmuls on this CPU: "ieee", or the reduced format that
    torch allows it (bf16, tf32) where the CPU has one."""
    try:  # torch >= 2.9: one setting per backend
        return _resolved(torch.backends.mkldnn.matmul, torch.backends.mkldnn)
    except (AttributeError, RuntimeError):  # older torch: the global precision reaches oneDNN
        precision = torch.get_float32_matmul_precision()
        return "ieee" if precision == "highest" else f"float32_matmul_precision={precision}"


@functools.cache
def keep_freed_memory() -> None:
    """Make glibc keep freed memory for reuse instead of handing it back to the kernel.

    torch allocates CPU tensors with plain malloc, and glibc serves every block over 32 MB with a
    fresh mmap that it unmaps on free. Every step's weight gradients are such blocks (33 MB per
    member for the widest layers), so each step faulted in and zeroed fresh pages: ~150k page
    faults per CUB iteration at M = 1 and 1M at M = 5, where it cost 30% of the wall time.
    With mmap off and trimming off, the second step reuses the first one's memory. Peak memory
    is unchanged; the process just keeps it. A no-op outside glibc (macOS, musl).
    """
    if platform.libc_ver()[0] != "glibc":
        return
    libc = ctypes.CDLL(None)
    m_trim_threshold, m_mmap_max = -1, -4  # <malloc.h>
    libc.mallopt(m_mmap_max, 0)
    libc.mallopt(m_trim_threshold, 2**31 - 1)
