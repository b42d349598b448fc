"""Measurements at a dataset's real shapes (random values, no data files): timed and counted
generator iterations, the evaluation's pieces, the device's matmul peak, and peak memory.

Every function here runs inside a worker process (``bench.perf.worker``), one measurement per
fresh process, so that its peak memory is its own. torch is imported inside the functions: the
``bench`` command line lists ``perf`` without paying for it.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

SQUARE_N = 4096  # choice: a square fp32 matmul this large runs near the device's peak
MEMORY_HOW = {
    "cuda": "torch.cuda.max_memory_allocated (tensors only)",
    "cpu": "peak RSS (getrusage maxrss) of a fresh worker process, interpreter and torch included",
}


def shaped_benchmark(dataset: str, device="cpu", scale: float = 1.0, seed: int = 0):
    """A Benchmark with ``dataset``'s real shapes (vsboost.synthetic.LAYOUT: attribute dimension,
    seen/unseen classes, split sizes times ``scale``) filled with random values: what the step
    costs depends on shapes alone. Classes get equal shares of every split."""
    import torch
    from torch.nn import functional as F

    from vsboost.data import FEATURE_DIM, SENT_FILE, Benchmark
    from vsboost.synthetic import LAYOUT, SENT_DIM

    lay = LAYOUT[dataset]
    att_dim = SENT_DIM if dataset in SENT_FILE else lay.att_dim  # CUB: sentence embedding
    gen = torch.Generator().manual_seed(seed)
    n_classes = lay.n_seen + lay.n_unseen
    order = torch.randperm(n_classes, generator=gen)
    seen, unseen = order[: lay.n_seen].sort().values, order[lay.n_seen :].sort().values

    def split(n: int, classes):
        n = max(len(classes), round(n * scale))
        y = classes[torch.arange(n) % len(classes)][torch.randperm(n, generator=gen)]
        return torch.rand(n, FEATURE_DIM, generator=gen), y

    train, test_seen, test_unseen = (split(lay.trainval, seen), split(lay.test_seen, seen),
                                     split(lay.test_unseen, unseen))
    att = F.normalize(torch.rand(n_classes, att_dim, generator=gen), dim=1)
    bench = Benchmark(dataset, True, "0" * 16, {}, *train, *test_seen, *test_unseen, att, seen,
                      unseen)
    return bench.to(device)


def sync(dev) -> None:
    """Wait for ``dev`` to finish what it was given (a no-op on the CPU)."""
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def timed(fn, dev):
    """(seconds, result) of ``fn()``, waiting for the device on both ends."""
    sync(dev)
    t0 = time.perf_counter()
    out = fn()
    sync(dev)
    return time.perf_counter() - t0, out


def counted(fn):
    """(flops, result) of ``fn()`` under FlopCounterMode (matmuls and convolutions only)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        out = fn()
    return counter.get_total_flops(), out


def square_rate(dev, n: int = SQUARE_N) -> float:
    """GFLOP/s of one n x n x n fp32 matmul (the fastest of two, after a warm-up)."""
    import torch

    a, b = torch.randn(n, n, device=dev), torch.randn(n, n, device=dev)
    a @ b
    best = min(timed(lambda: a @ b, dev)[0] for _ in range(2))
    return 2 * n**3 / best / 1e9


def layer_rate(dev, batch: int, d_in: int, d_out: int, reps: int = 5) -> float:
    """GFLOP/s of one stacked linear layer's three matmuls (forward, input and weight gradient)
    at batch ``batch``: the best the step could do at its own shapes."""
    import torch

    x, g = torch.randn(1, batch, d_in, device=dev), torch.randn(1, batch, d_out, device=dev)
    w, bias = torch.randn(1, d_in, d_out, device=dev), torch.zeros(1, 1, d_out, device=dev)

    def layer():
        torch.baddbmm(bias, x, w)
        torch.bmm(g, w.transpose(1, 2))
        torch.bmm(x.transpose(1, 2), g)

    layer()
    best = min(timed(layer, dev)[0] for _ in range(reps))
    return 3 * 2 * batch * d_in * d_out / best / 1e9


def memory_now(dev) -> int:
    """Bytes in use: CUDA tensors (and the peak counter reset), or this process's peak RSS."""
    import resource

    import torch

    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
        return torch.cuda.memory_allocated(dev)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def memory_peak(dev) -> int:
    """Peak bytes: of CUDA tensors since :func:`memory_now`, or of this process's RSS."""
    import resource

    import torch

    if dev.type == "cuda":
        return torch.cuda.max_memory_allocated(dev)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def paper_model(dataset: str, dev, seeds, data=None):
    """A ``full``-row, paper-profile VSBoost of ``seeds`` stacked members on ``data`` (default:
    :func:`shaped_benchmark`). The worker runs it under the paper profile's matmul precision
    (``bench.perf.worker``), so that everything timed runs as training does."""
    from vsboost.config import make_config
    from vsboost.methods.vsboost import VSBoost

    data = shaped_benchmark(dataset, dev) if data is None else data
    cfg = make_config(dataset, "full", "paper", {"checkpoint_every": 0})
    return VSBoost(data, cfg, list(seeds), dev)


def measure_dataset(dataset: str, device: str, reps: int, cls_epochs: int) -> dict:
    """One dataset at paper shapes, M = 1: generator iteration, evaluation, peak memory."""
    import torch

    from vsboost import evaluate
    from vsboost.config import make_config

    dev = torch.device(device)
    mem_start = memory_now(dev)
    model = paper_model(dataset, dev, [0])
    data, cfg = model.data, model.cfg
    episodes, _ = model.draw_epoch()
    peaks = [square_rate(dev)]
    step_mm = layer_rate(dev, model.batch, data.feature_dim, cfg.hidden)
    # The warm-up iteration is the counted one: FlopCounterMode slows what it watches.
    iter_flops, _ = counted(lambda: model.iteration(episodes[:, 0]))
    iters = []
    for r in range(reps):
        iters.append(timed(lambda r=r: model.iteration(episodes[:, (r + 1) % model.steps]),
                           dev)[0])
        peaks.append(square_rate(dev))

    # Evaluation = features (G and E over every split) + the two classifier fits, in the order
    # VSBoost.evaluate runs them. The fits run `timed_epochs` of their cfg.cls_epochs epochs
    # (fastest of `reps`); every epoch costs the same, so they are scaled up.
    timed_epochs = min(cls_epochs, cfg.cls_epochs)
    prep_s, (prep_flops, feats) = timed(lambda: counted(model.eval_features), dev)
    settings = evaluate.fit_settings(cfg)

    def fit(scores, epochs: int):
        return scores(feats, data, model.rng["eval"], **{**settings, "epochs": epochs})

    gzsl_s = min(timed(lambda: fit(evaluate.gzsl_scores, timed_epochs), dev)[0]
                 for _ in range(reps))
    czsl_s = min(timed(lambda: fit(evaluate.czsl_scores, timed_epochs), dev)[0]
                 for _ in range(reps))
    mem_peak = memory_peak(dev)
    ckpt_s, ckpt_bytes = checkpoint_write(model)
    gzsl_flops = counted(lambda: fit(evaluate.gzsl_scores, 1))[0]
    czsl_flops = counted(lambda: fit(evaluate.czsl_scores, 1))[0]
    scale = cfg.cls_epochs / timed_epochs
    return {
        "dataset": dataset, "batch": model.batch, "steps": model.steps,
        "epochs": cfg.gan_epochs, "eval_every": cfg.eval_every, "syn_num": cfg.syn_num,
        "n_classes": data.n_classes,
        "cls_epochs": cfg.cls_epochs, "cls_epochs_timed": timed_epochs,
        "iter_s": min(iters), "iter_s_all": iters, "iter_flops": iter_flops,
        "peak_gflops": max(peaks), "step_mm_gflops": step_mm,
        "step_mm_shape": f"[{model.batch} x {data.feature_dim}] @ [{data.feature_dim} x "
                         f"{cfg.hidden}], forward + both gradients",
        "prep_s": prep_s, "gzsl_s": gzsl_s * scale, "czsl_s": czsl_s * scale,
        "eval_s": prep_s + (gzsl_s + czsl_s) * scale,
        "eval_flops": prep_flops + (gzsl_flops + czsl_flops) * cfg.cls_epochs,
        "gzsl_flops": gzsl_flops * cfg.cls_epochs,
        "mem_start": mem_start, "mem_peak": mem_peak,
        # The paper profile's own checkpoint interval (paper_model turns it off for timing).
        "checkpoint_every": make_config(dataset, "full", "paper", {}).checkpoint_every,
        "ckpt_s": ckpt_s, "ckpt_bytes": ckpt_bytes,
    }


def checkpoint_write(model) -> tuple[float, int]:
    """Seconds and bytes of one member's checkpoint (what resuming needs: networks, optimisers,
    random streams) serialised with torch.save as the trainer does, into the temporary folder
    (its disk may be faster or slower than the results folder's)."""
    import tempfile

    import torch

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "one.pt"
        t0 = time.perf_counter()
        torch.save(model.state_dict(), path)
        return time.perf_counter() - t0, path.stat().st_size


def measure_stacking(dataset: str, device: str, members: int, reps: int) -> dict:
    """Generator iterations of M stacked members against M = 1, interleaved with the peak."""
    import torch

    dev = torch.device(device)
    single = paper_model(dataset, dev, [0])
    stacked = paper_model(dataset, dev, range(members), data=single.data)
    eps1, epsm = single.draw_epoch()[0], stacked.draw_epoch()[0]
    flops1, _ = counted(lambda: single.iteration(eps1[:, 0]))
    flopsm, _ = counted(lambda: stacked.iteration(epsm[:, 0]))
    t1, tm, peaks = [], [], [square_rate(dev)]
    for r in range(reps):
        i = (r + 1) % single.steps
        t1.append(timed(lambda i=i: single.iteration(eps1[:, i]), dev)[0])
        tm.append(timed(lambda i=i: stacked.iteration(epsm[:, i]), dev)[0])
        peaks.append(square_rate(dev))
    return {"dataset": dataset, "members": members, "single_s": min(t1), "stacked_s": min(tm),
            "single_s_all": t1, "stacked_s_all": tm, "single_flops": flops1,
            "stacked_flops": flopsm, "peak_gflops": max(peaks)}


def measure_demo(device: str, dataset: str, scale: float, members: int) -> dict:
    """Peak memory of one demo training (smoke profile, ``members`` stacked seeds, 1 epoch: every
    later epoch repeats the same allocations) at the synthetic benchmark's demo shapes."""
    import torch

    from vsboost.config import make_config
    from vsboost.train import train

    dev = torch.device(device)
    mem_start = memory_now(dev)
    data = shaped_benchmark(dataset, dev, scale=scale)
    cfg = make_config(dataset, "full", "smoke", {"gan_epochs": 1, "checkpoint_every": 0})
    wall, _ = timed(lambda: train(data, cfg, list(range(members)), device=dev), dev)
    return {"dataset": dataset, "scale": scale, "members": members, "epoch_s": wall,
            "mem_start": mem_start, "mem_peak": memory_peak(dev)}


def environment(device: str) -> dict:
    """The device, software and load a run is measured on."""
    import torch

    dev = torch.device(device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else cpu_model()
    return {"device": dev.type, "name": name, "torch": torch.__version__,
            "threads": torch.get_num_threads(), "cores": os.cpu_count(),
            "python": platform.python_version(),
            "tf32": dev.type == "cuda",  # the paper profile's tf32 applies on CUDA only
            "load": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
