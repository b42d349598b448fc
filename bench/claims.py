"""The paper's quantitative claims (§4.1-§4.3), each encoded once and judged three ways.

1. **The paper's own tables**: does the sentence add up against Tables 2-4 as printed? The
   arithmetic is shown; a difference of 0.1 is called out as within the rounding of two printed
   one-decimal numbers (the text may have been computed from unrounded values), but still flagged.
2. **The reproduction** (real data), under each selection protocol: a gain of one ablation row
   over another is the mean paired difference over seeds with its 95% paired t interval
   (:mod:`bench.stats`); a "best" / "second" / "below" claim compares the interval of our mean
   with the other methods' published numbers (:mod:`bench.published`).
3. **Synthetic or custom data**: only the direction of the ablation gains means anything there;
   the rest is marked "needs real data".

A claim is *contradicted* when its interval excludes what it asserts (the opposite direction,
or a rank it cannot have); ``bench claims`` exits 1 then. Pure: records in, markdown out.
"""

from __future__ import annotations

from dataclasses import dataclass

from tabulate import tabulate

from bench import paper, published, stats
from bench.cells import (
    PAPER_KINDS,
    PROTOCOLS,
    REHEARSAL_NOTE,
    cell,
    expected_seeds,
    kind,
    kind_title,
    ran,
)
from vsboost.config import DATASETS

EPS = 1e-9
ROUNDING = 0.1  # two numbers printed to one decimal: their difference is off by < 0.1. paper
HALF_DIGIT = 0.05  # a number printed to one decimal is known to ± 0.05. paper


# ===== what a claim asserts =====

@dataclass(frozen=True)
class Gain:
    """Table 4: ``row`` − ``base`` on one dataset and metric is ``value`` (None: just > 0)."""

    row: str
    base: str
    dataset: str
    metric: str
    value: float | None = None
    note: str = ""

    def label(self) -> str:
        size = "> 0" if self.value is None else f"= {self.value:+.1f}"
        return f"{self.dataset} {self.metric}: {self.row} − {self.base} {size}"


@dataclass(frozen=True)
class Rank:
    """Table 2 or 3: VS-Boost is ``rank``-th on one column among the other methods (of ``kinds``
    only, if given), ``margin`` above the runner-up (named ``over`` when the text names it)."""

    table: int
    dataset: str
    metric: str
    rank: int
    margin: float | None = None
    over: str | None = None
    kinds: tuple[str, ...] | None = None

    def label(self) -> str:
        among = f" among the {'/'.join(self.kinds)} methods" if self.kinds else ""
        text = f"{self.dataset} {self.metric}: VS-Boost {_ordinal(self.rank)}{among}"
        if self.margin is not None:
            text += f", {self.margin:.1f} above {self.over or 'the runner-up'}"
        return text


@dataclass(frozen=True)
class Gap:
    """Table 2: VS-Boost − ``method`` on one column has the sign of ``sign`` (and is ``value``)."""

    dataset: str
    metric: str
    method: str
    sign: int
    value: float | None = None

    def label(self) -> str:
        word = "below" if self.sign < 0 else "above"
        size = "" if self.value is None else f" by {abs(self.value):.1f}"
        return f"{self.dataset} {self.metric}: VS-Boost {word} {self.method}{size}"


@dataclass(frozen=True)
class SameRow:
    """Table 4's full row repeats Table 2's VS-Boost row (U, S, H on every dataset)."""

    def label(self) -> str:
        return "Table 4 full row = Table 2 VS-Boost row (U, S, H, five datasets)"


@dataclass(frozen=True)
class Claim:
    id: str
    section: str
    sentence: str  # the paper's sentence, paraphrased or quoted briefly
    asserts: tuple


def _gains(row: str, base: str, metric: str, values, notes=None) -> tuple[Gain, ...]:
    notes = notes or {}
    return tuple(Gain(row, base, ds, metric, v, notes.get(ds, ""))
                 for ds, v in zip(DATASETS, values, strict=True))


# The claims, in the order of the text. paper (§4.1, §4.2, §4.3 and Tables 2-4)
CLAIMS: tuple[Claim, ...] = (
    Claim("G1", "§4.1", "In H, VS-Boost is best on APY, AWA, CUB and FLO; the gains are 10.1%, "
          "1.3%, 0.3% and 0.8% against TGMZ, ICCE, MSDN and FREE.",
          tuple(Rank(2, ds, "H", 1, g, m) for ds, g, m in [
              ("APY", 10.1, "TGMZ"), ("AWA2", 1.3, "ICCE"), ("CUB", 0.3, "MSDN"),
              ("FLO", 0.8, "FREE")])),
    Claim("G2", "§4.1", "On SUN, CE-GZSL's H is 0.6% higher than VS-Boost's.",
          (Gap("SUN", "H", "CE-GZSL", -1, -0.6),)),
    Claim("G3", "§4.1", "On SUN, VS-Boost is inferior to CE-GZSL and TF-VAEGAN in terms of S "
          "and U.",
          tuple(Gap("SUN", m, x, -1) for m in ("S", "U") for x in ("CE-GZSL", "TF-VAEGAN"))),
    Claim("G4", "§4.1", "In U, VS-Boost is best on APY, AWA and FLO (gains 4.6%, 2.7%, 0.1%) "
          "and second on the other datasets.",
          (Rank(2, "APY", "U", 1, 4.6), Rank(2, "AWA2", "U", 1, 2.7), Rank(2, "FLO", "U", 1, 0.1),
           Rank(2, "CUB", "U", 2), Rank(2, "SUN", "U", 2))),
    Claim("C1", "§4.2", "In CZSL, VS-Boost improves by 16.7%, 1.5%, 1.4% and 0.4% on APY, AWA, "
          "CUB and FLO.",
          tuple(Rank(3, ds, "acc", 1, g) for ds, g in [
              ("APY", 16.7), ("AWA2", 1.5), ("CUB", 1.4), ("FLO", 0.4)])),
    Claim("C2", "§4.2", "On SUN (CZSL), VS-Boost is still 4.3% better than the best CZSL method.",
          (Rank(3, "SUN", "acc", 1, 4.3, kinds=(published.CZSL,)),)),
    Claim("A1", "§4.3", "Using SML alone, H improves by 6.3%, 8.3%, 7.1%, 6.8% and 1.6% on the "
          "five datasets.", _gains("sml", "plain", "H", (6.3, 8.3, 7.1, 6.8, 1.6))),
    Claim("A2", "§4.3", "Using RML alone, H improves by 8.7%, 7.8%, 6.0%, 7.0% and 1.3%.",
          _gains("rml", "plain", "H", (8.7, 7.8, 6.0, 7.0, 1.3))),
    Claim("A3", "§4.3", "After using SML, the accuracy of both seen and unseen classes is "
          "greatly improved.",
          _gains("sml", "plain", "U", (None,) * 5) + _gains("sml", "plain", "S", (None,) * 5)),
    Claim("A4", "§4.3", "RML has more significant enhancements for unseen classes (than SML).",
          _gains("rml", "sml", "U", (None,) * 5)),
    Claim("A5", "§4.3", "Using both SML and RML, H improves by 12.6%, 10.7%, 9.6%, 9.3% and 2.5%.",
          _gains("full", "plain", "H", (12.6, 10.7, 9.6, 9.3, 2.5),
                 {"CUB": "9.6 is Table 2's 68.4 − 58.8"})),
    Claim("T1", "Tables 2, 4", "Table 4's full row (a+b+c) is the VS-Boost model of Table 2.",
          (SameRow(),)),
)


def _ordinal(rank: int) -> str:
    return {1: "best", 2: "second"}.get(rank, f"{rank}th")


# ===== 1. against the paper's own tables =====

@dataclass(frozen=True)
class Arithmetic:
    text: str  # the arithmetic, from the printed numbers
    off: float  # |computed − asserted| in points; 0 for a claim that holds exactly
    holds: bool  # the non-numeric part (direction, rank, runner-up) holds

    @property
    def verdict(self) -> str:
        if not self.holds:
            return "inconsistent"
        if self.off < 0.05:
            return "consistent"
        if self.off <= ROUNDING + EPS:
            return "inconsistent by 0.1 (within rounding)"
        return f"inconsistent by {self.off:.1f}"

    @property
    def flagged(self) -> bool:
        return self.verdict != "consistent"


def _vs(table: int, dataset: str, metric: str, row: str = "full") -> float:
    return paper.value(table, dataset, metric, row)


def _ranked(others: dict[str, float], x: float) -> int:
    return 1 + sum(v > x + EPS for v in others.values())


def against_tables(a) -> Arithmetic:
    if isinstance(a, Gain):
        hi, lo = _vs(4, a.dataset, a.metric, a.row), _vs(4, a.dataset, a.metric, a.base)
        d = round(hi - lo, 1)
        text = f"Table 4: {hi:.1f} − {lo:.1f} = {d:+.1f}" + (f" ({a.note})" if a.note else "")
        off = 0.0 if a.value is None else abs(d - a.value)
        return Arithmetic(text, off, d > 0)
    if isinstance(a, Rank):
        ours = _vs(a.table, a.dataset, a.metric)
        others = published.numbers(a.table, a.dataset, a.metric, a.kinds)
        rank = _ranked(others, ours)
        order = sorted(others.items(), key=lambda kv: -kv[1])
        text = f"Table {a.table}: VS-Boost {ours:.1f}, {_ordinal(rank)} of {len(others) + 1}"
        holds, off = rank == a.rank, 0.0
        if a.margin is not None:
            name, value = order[0]
            d = round(ours - value, 1)
            text += f"; runner-up {name} {value:.1f}: {ours:.1f} − {value:.1f} = {d:+.1f}"
            holds = holds and (a.over is None or a.over == name)
            off = abs(d - a.margin)
        elif rank > 1:
            text += f", behind {', '.join(f'{n} {v:.1f}' for n, v in order[:rank - 1])}"
        return Arithmetic(text, off, holds)
    if isinstance(a, Gap):
        ours, theirs = _vs(2, a.dataset, a.metric), published.method(2, a.method).value(
            a.dataset, a.metric)
        d = round(ours - theirs, 1)
        text = f"Table 2: VS-Boost {ours:.1f} − {a.method} {theirs:.1f} = {d:+.1f}"
        off = 0.0 if a.value is None else abs(d - a.value)
        return Arithmetic(text, off, d * a.sign > 0)
    differ = [f"{ds} {m}: Table 4 {_vs(4, ds, m)} vs Table 2 {_vs(2, ds, m)}"
              for ds in DATASETS for m in "USH" if abs(_vs(4, ds, m) - _vs(2, ds, m)) > EPS]
    # the same number printed twice: any difference is a misprint, rounding explains none
    return Arithmetic("; ".join(differ) or "all 15 cells equal", 0.0, not differ)


# ===== 2./3. against the reproduction =====

SUPPORTED, DIRECTION, INCONCLUSIVE, CONTRADICTED = (
    "supported", "direction only", "inconclusive", "contradicted")
NEEDS_REAL, PENDING, TEXT_ONLY = "needs real data", "runs missing", "about the paper's text"


@dataclass(frozen=True)
class Judgement:
    evidence: str
    verdict: str


def _complete(c) -> bool:
    return c.complete and c.n > 0


def judge(a, records: list[dict], protocol: str, expected: int, real: bool) -> Judgement:
    if isinstance(a, SameRow):
        return Judgement("—", TEXT_ONLY)
    if isinstance(a, Gain):
        return _judge_gain(a, records, protocol, expected, real)
    if not real:
        return Judgement("—", NEEDS_REAL)
    table, metric = (a.table, a.metric) if isinstance(a, Rank) else (2, a.metric)
    c = cell(records, a.dataset, "full", metric, protocol, expected)
    if not _complete(c):
        return Judgement(c.text(), PENDING)
    iv = stats.mean_interval(c.values)
    ours = f"ours {iv.mean:.1f}" + ("" if iv.low is None else f" [{iv.low:.1f}, {iv.high:.1f}]")
    ours += f" ({iv.n})"
    if iv.low is None:
        return Judgement(ours + f"; fewer than {stats.MIN_N} seeds: no interval, cannot judge",
                         INCONCLUSIVE)
    if isinstance(a, Rank):
        others = published.numbers(table, a.dataset, metric, a.kinds)
        best, worst = _ranked(others, iv.high), _ranked(others, iv.low)
        places = _ordinal(best) if best == worst else f"{_ordinal(best)} to {_ordinal(worst)}"
        text = f"{ours}: {places} of {len(others) + 1}"
        if a.margin is not None:
            name, value = max(others.items(), key=lambda kv: kv[1])
            text += (f"; over {name} {value:.1f}: {iv.mean - value:+.1f} "
                     f"[{iv.low - value:+.1f}, {iv.high - value:+.1f}]")
        if not best <= a.rank <= worst:
            return Judgement(text, CONTRADICTED)
        return Judgement(text, SUPPORTED if best == worst else INCONCLUSIVE)
    theirs = published.method(2, a.method).value(a.dataset, a.metric)
    low, high = iv.low - theirs, iv.high - theirs
    text = f"{ours}; − {a.method} {theirs:.1f} = {iv.mean - theirs:+.1f} [{low:+.1f}, {high:+.1f}]"
    return Judgement(text, _direction(low, high, a.sign, a.value))


def _direction(low: float, high: float, sign: int, value: float | None) -> str:
    """Verdict on a claim that a difference has the sign ``sign`` (and the size ``value``), from
    the difference's interval [``low``, ``high``]."""
    near, far = (low, high) if sign > 0 else (-high, -low)  # oriented: the claim says > 0
    if far < 0:
        return CONTRADICTED
    if near <= 0:
        return INCONCLUSIVE
    # a printed size of one decimal stands for [value - 0.05, value + 0.05]
    if value is not None and not low - HALF_DIGIT - EPS <= value <= high + HALF_DIGIT + EPS:
        return DIRECTION
    return SUPPORTED


def _judge_gain(a: Gain, records, protocol, expected, real) -> Judgement:
    top = cell(records, a.dataset, a.row, a.metric, protocol, expected)
    base = cell(records, a.dataset, a.base, a.metric, protocol, expected)
    if not (_complete(top) and _complete(base)):
        return Judgement(f"{a.row} {top.text()}; {a.base} {base.text()}", PENDING)
    iv = stats.paired(top.by_seed(), base.by_seed())
    if iv is None or iv.low is None:
        n = 0 if iv is None else iv.n
        return Judgement(f"{n} pair(s): no interval, cannot judge", INCONCLUSIVE)
    text = f"{iv.text()} pairs"
    # On synthetic or custom data only the direction means anything: the paper's size is not
    # compared with it.
    return Judgement(text, _direction(iv.low, iv.high, 1, a.value if real else None))


# ===== the report =====

_WORST = (CONTRADICTED, INCONCLUSIVE, PENDING, DIRECTION, SUPPORTED, NEEDS_REAL, TEXT_ONLY)


@dataclass(frozen=True)
class Row:
    claim: Claim
    assertion: object
    arithmetic: Arithmetic
    judgements: dict[str, Judgement]  # protocol -> judgement


def evaluate(records: list[dict], expected: int | None = None) -> list[Row]:
    real = kind(records) in PAPER_KINDS
    expected = expected or expected_seeds(records)
    return [Row(c, a, against_tables(a), {p: judge(a, records, p, expected, real)
                                          for p in PROTOCOLS})
            for c in CLAIMS for a in c.asserts]


def speaks(a, records: list[dict]) -> bool:
    """Whether the runs can speak to assertion ``a``: every (dataset, row) it needs was run
    (has a record, whatever its status). The others are named once, not judged."""
    if isinstance(a, Gain):
        needed = [(a.dataset, a.row), (a.dataset, a.base)]
    elif isinstance(a, SameRow):
        needed = [(ds, "full") for ds in DATASETS]
    else:
        needed = [(a.dataset, "full")]
    return all(ran(records, ds, row) for ds, row in needed)


def contradicted(rows: list[Row], protocols=tuple(PROTOCOLS)) -> list[tuple[Row, str]]:
    return [(r, p) for r in rows for p in protocols if r.judgements[p].verdict == CONTRADICTED]


def _count(verdicts) -> str:
    found = list(verdicts)
    return ", ".join(f"{v} {found.count(v)}" for v in _WORST if v in found)


def render(records: list[dict], name: str, expected: int | None = None,
           rows: list[Row] | None = None) -> str:
    """claims.md: the summary, then one table per claim; ``rows``: :func:`evaluate`'s, if made."""
    data = kind(records)
    rows = evaluate(records, expected) if rows is None else rows
    title = kind_title(data)
    out = [f"# The paper's claims, each with a verdict — {title}", "",
           *([REHEARSAL_NOTE, ""] if data == "rehearsal" else []),
           f"Runs: {len(records)} records in {name}/. Every quantitative claim of §4.1-§4.3 (and "
           "one the tables make), judged (1) against the paper's own Tables 2-4 as printed, with "
           "the arithmetic, and (2) against this reproduction under each selection protocol.", "",
           f"Intervals: {int(100 * stats.CONFIDENCE)}% {stats.METHOD} over seeds, `mean [low, "
           "high] (n)` in points. A gain of one ablation row over another pairs the runs of the "
           "same seed index (same seed, same episodes) and takes the mean difference; a "
           "best / second / below claim puts the interval of our mean among the other methods' "
           "published numbers (as published, not rerun). Verdicts: **supported** (the interval "
           "excludes 0 in the claimed direction, or allows only the claimed rank, and holds the "
           "claimed size), **direction only** (right direction, the claimed size outside the "
           "interval), **inconclusive** (the interval allows both), **contradicted** (the "
           "interval excludes what is claimed), **runs missing**. A 0.1 difference against the "
           "tables is within the rounding of two one-decimal numbers but still flagged.", ""]
    if data not in PAPER_KINDS:
        out += [f"**{title.split()[0]}**: only the direction of the ablation gains (§4.3) is "
                "judged on this data; the size of a gain and every comparison with other methods "
                "say **needs real data**.", ""]
    flagged = [r for r in rows if r.arithmetic.flagged]
    # Only what the runs can speak to is judged and shown; the rest is named once.
    every = rows
    rows = [r for r in rows if speaks(r.assertion, records)]
    unjudged = [c.id for c in CLAIMS if not any(r.claim is c for r in rows)]
    bad = contradicted(rows)
    out += ["## Summary", "",
            f"- Against the paper's own tables: {len(flagged)} of {len(every)} assertions do not "
            "add up as printed"
            + (": " + "; ".join(f"{r.claim.id} {r.assertion.label()}" for r in flagged)
               if flagged else "") + ".",
            *(f"- Reproduction, {p}: "
              f"{_count(r.judgements[p].verdict for r in rows) or 'no assertion judged'}."
              for p in PROTOCOLS),
            (f"- **CONTRADICTED**: {len(bad)}: "
             + "; ".join(f"{r.claim.id} {r.assertion.label()} ({p})" for r, p in bad)
             if bad else f"- No claim is contradicted at {int(100 * stats.CONFIDENCE)}%."),
            *([f"- Not judged, no run of the cells they need: {', '.join(unjudged)} "
               f"({len(every) - len(rows)} of {len(every)} assertions)."] if unjudged
              else []), ""]
    headers = ["asserts", "paper's tables", "consistent"]
    for p in PROTOCOLS:
        headers += [f"`{p}`: reproduction", f"`{p}`: verdict"]
    for c in CLAIMS:
        mine = [r for r in rows if r.claim is c]
        if not mine:
            continue
        out += [f"## {c.id} ({c.section}): {c.sentence}", ""]
        lines = []
        for r in mine:
            line = [r.assertion.label(), r.arithmetic.text, r.arithmetic.verdict]
            for p in PROTOCOLS:
                verdict = _bold(r.judgements[p].verdict)
                if data not in PAPER_KINDS and isinstance(r.assertion, Gain):
                    verdict += f" (direction only judged: {title.split()[0]})"
                line += [r.judgements[p].evidence, verdict]
            lines.append(line)
        out += [tabulate(lines, headers=headers, tablefmt="pipe", disable_numparse=True), ""]
    out += [f"Protocols: {'; '.join(f'{p}: {t}' for p, t in PROTOCOLS.items())}.", ""]
    return "\n".join(out)


def _bold(verdict: str) -> str:
    return f"**{verdict}**" if verdict == CONTRADICTED else verdict
