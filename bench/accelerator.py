"""Which torch build the nox sessions install, from the machine's accelerator, and what they say
about it before training.

:func:`choose` is a pure function of what :func:`detect` read (``nvidia-smi``'s output, or None
where there is none), so the decision is tested with a stand-in ``nvidia-smi``. The noxfile
imports this module before any package is installed: standard library only.
``python -m bench.accelerator --expect cpu|cuda`` prints the torch and the device a session will
train with, and exits 1 when the build is not the expected kind (a reused venv holding another).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass

TORCH = "torch==2.13.0"  # choice: the version the suite is tested with
INDEX = "https://download.pytorch.org/whl/{tag}"  # PyTorch's own wheel index, one per build
# choice: PyTorch's CUDA wheel builds tried, newest first, each needing a driver that supports at
# least its CUDA version (nvidia-smi's "CUDA Version"). PyTorch's install selector
# (pytorch.org/get-started/locally) lists the builds of each release; a tag missing for TORCH
# makes pip fail naming the index, and benchmarks/gpu_check.sh is where that is tried.
CUDA_BUILDS = (((12, 8), "cu128"), ((12, 6), "cu126"))
DRIVER_CUDA = re.compile(r"CUDA Version:\s*(\d+)\.(\d+)")


@dataclass(frozen=True)
class Build:
    tag: str  # "cpu" or a CUDA wheel tag such as "cu128"
    why: str  # one line for the session's log

    @property
    def index_url(self) -> str:
        return INDEX.format(tag=self.tag)

    @property
    def kind(self) -> str:
        return "cpu" if self.tag == "cpu" else "cuda"


def detect() -> str | None:
    """``nvidia-smi``'s output, or None where it is not on PATH or fails (no NVIDIA driver)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        done = subprocess.run([exe], capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout


def choose(smi: str | None) -> Build:
    """The build for a machine whose ``nvidia-smi`` printed ``smi`` (None: no NVIDIA GPU)."""
    if smi is None:
        return Build("cpu", "no nvidia-smi on PATH (no NVIDIA GPU): the CPU build")
    found = DRIVER_CUDA.search(smi)
    if found is None:
        return Build("cpu", "nvidia-smi names no CUDA version (no working driver): the CPU build")
    driver = (int(found[1]), int(found[2]))
    for needs, tag in CUDA_BUILDS:
        if driver >= needs:
            return Build(tag, f"NVIDIA driver for CUDA {driver[0]}.{driver[1]}: the {tag} build")
    oldest = ".".join(map(str, CUDA_BUILDS[-1][0]))
    return Build("cpu", f"NVIDIA driver for CUDA {driver[0]}.{driver[1]}, older than the oldest "
                        f"CUDA build tried (CUDA {oldest}): the CPU build; update the driver to "
                        "train on the GPU")


def describe() -> tuple[str, str]:
    """(build kind of the torch imported here, one line naming it and the device it trains on)."""
    import torch

    if torch.version.cuda is None:
        return "cpu", f"torch {torch.__version__} (CPU build): training on the CPU"
    if not torch.cuda.is_available():
        return "cuda", (f"torch {torch.__version__} (CUDA {torch.version.cuda} build), but no "
                        "GPU visible to it: training on the CPU")
    name = torch.cuda.get_device_name(0)
    return "cuda", (f"torch {torch.__version__} (CUDA {torch.version.cuda} build): training on "
                    f"cuda ({name}, {torch.cuda.device_count()} visible)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.accelerator")
    parser.add_argument("--expect", choices=("cpu", "cuda"), default=None)
    args = parser.parse_args(argv)
    kind, line = describe()
    print(line)
    if args.expect and kind != args.expect:
        print(f"error: expected the {args.expect} build of torch, found the {kind} build; fix: "
              "remove .nox/ and rerun (a reused environment holds another build)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
