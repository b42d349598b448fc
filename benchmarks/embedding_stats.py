"""How close are the synthetic class embeddings to the real ones? (the numbers of docs/synthetic.md)

    python benchmarks/embedding_stats.py data/synthetic [REAL_ROOT]

Per dataset, from ``original_att`` (``att`` where a file has only that, as FLO) over all classes:
the share of exact zeros, the mean pairwise cosine, the median (and range) of each class's
nearest-neighbour cosine, and the share of variance in the top 5 principal directions.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import scipy.io
from tabulate import tabulate

from vsboost.config import DATASETS


def stats(path: Path) -> list[str]:
    mat = scipy.io.loadmat(path, variable_names=["att", "original_att"])
    a = mat.get("original_att", mat["att"]).astype(np.float64)
    unit = a / np.linalg.norm(a, axis=0)
    cos = unit.T @ unit
    off = cos[~np.eye(len(cos), dtype=bool)]
    np.fill_diagonal(cos, -np.inf)
    nearest = cos.max(1)
    power = np.linalg.svd(a - a.mean(1, keepdims=True), compute_uv=False) ** 2
    return [f"{(a == 0).mean():.0%}", f"{off.mean():.2f}",
            f"{np.median(nearest):.2f} [{nearest.min():.2f}–{nearest.max():.2f}]",
            f"{power[:5].sum() / power.sum():.0%}"]


def main() -> None:
    roots = [Path(p) for p in sys.argv[1:]] or [Path("data/synthetic")]
    rows = [[ds, root.name, *stats(root / ds / "att_splits.mat")]
            for ds in DATASETS for root in roots if (root / ds / "att_splits.mat").is_file()]
    print(tabulate(rows, headers=["dataset", "files", "zeros", "mean cosine", "NN cosine",
                                  "top-5 variance"], tablefmt="pipe", disable_numparse=True))


if __name__ == "__main__":
    main()
