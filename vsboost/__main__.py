"""``python -m vsboost``: one training from the shell, printing U, S, H under each protocol
(the val protocol trains on the validation split first).

The full harness (sweeps, records, tables) is ``bench``; this is the minimal path to the core.
Without ``--data-root`` it trains on the embedded synthetic benchmark, written on first use where
``bench`` writes it (``data/synthetic``, or ``$VSBOOST_SYNTHETIC``: see ``vsboost.settings``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vsboost import methods, settings, synthetic, validation
from vsboost.config import PROFILES, all_rows, make_config, parse_override, seed_for
from vsboost.data import load
from vsboost.errors import UserError
from vsboost.train import resolve_device, train


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vsboost", description=__doc__)
    p.add_argument("--dataset", default="CUB", help="APY, AWA2, CUB, FLO or SUN (default CUB)")
    p.add_argument("--row", default="full", choices=list(all_rows()),
                   help="a row of any method: VS-Boost's ablation rows or fclswgan (default full)")
    p.add_argument("--seed-index", type=int, default=0, help="seed index (default 0)")
    p.add_argument("--profile", default="smoke", choices=list(PROFILES),
                   help="paper defaults or the small smoke profile (default smoke)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config value; repeatable")
    p.add_argument("--data-root", type=Path, default=None,
                   help="xlsa17 data root; default: the embedded synthetic benchmark")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    args = p.parse_args(argv)
    try:
        cfg = make_config(args.dataset, args.row, args.profile,
                          dict(parse_override(o) for o in args.overrides))
        root = args.data_root
        if root is None:
            root = settings.synthetic_root()
            synthetic.ensure(root, [cfg.dataset])
        data = load(root, args.dataset, normalize_sent=cfg.normalize_sent)
        methods.get(cfg.method).check(data, cfg)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    device = resolve_device(None if args.device == "auto" else args.device)
    kind = "SYNTHETIC data" if data.synthetic else "real data"
    print(f"{cfg.dataset} row={cfg.row} profile={cfg.profile} on {device} ({kind}); "
          f"{cfg.gan_epochs} epochs")
    (result,) = validation.run(train, data, cfg, [seed_for(cfg.dataset, args.seed_index)],
                               device=device,
                               progress=lambda e, n: print(f"  epoch {e}/{n}", flush=True))
    if result.status != "done":
        print(f"diverged at epoch {result.diverged_epoch}")
        return 1
    for protocol, label in (("paper", "paper protocol (best test H)"),
                            ("last", "honest protocol (last epoch)"),
                            ("val", "honest protocol (validation H)")):
        m = result.metrics.get(protocol)
        if m is None:  # val_protocol=false, or the validation training diverged
            continue
        print(f"{label:32s} U={100 * m['U']:5.1f}  S={100 * m['S']:5.1f}  H={100 * m['H']:5.1f}")
    czsl = result.metrics["czsl"]
    print(f"{'CZSL top-1 (paper / honest)':32s} {100 * czsl['paper']['acc']:5.1f} / "
          f"{100 * czsl['last']['acc']:5.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
