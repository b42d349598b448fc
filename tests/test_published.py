"""The other methods' published numbers against the paper's Tables 2 and 3 as printed.

The expected values below are transcribed from the printed tables by hand, independently of
bench/published.py: a few full rows, the row and column counts, and the best number per column.
"""

from __future__ import annotations

import pytest

from bench import published

DS = ("APY", "AWA2", "CUB", "FLO", "SUN")


def row(table, name):
    p = published.method(table, name)
    return p.year, p.kind, [p.values[ds] for ds in DS]


# ===== Table 2 =====

@pytest.mark.parametrize("name, printed", [
    ("DVBE", (2020, "†", [(32.6, 58.3, 41.8), (63.6, 70.8, 67.0), (53.2, 60.2, 56.5), None,
                          (45.0, 37.2, 40.7)])),
    ("TGMZ", (2021, "‡", [(34.8, 77.1, 48.0), (64.1, 77.3, 70.1), (60.3, 56.8, 58.5), None,
                          None])),
    ("CE-GZSL", (2021, "‡", [None, (63.1, 78.6, 70.0), (63.9, 66.8, 65.3), (69.0, 78.7, 73.5),
                             (48.8, 38.6, 43.1)])),
    ("ICCE", (2022, "‡", [(45.2, 46.3, 45.7), (65.3, 82.3, 72.8), (67.3, 65.5, 66.4),
                          (66.1, 86.5, 74.9), None])),
])
def test_table2_rows_are_as_printed(name, printed):
    year, kind, values = printed
    assert row(2, name) == (year, kind, values)


def test_table2_has_fourteen_methods_five_other_and_nine_generation_in_the_papers_order():
    names = [p.method for p in published.methods(2)]
    assert names == ["GXE", "DVBE", "DAZLE", "AREN", "MSDN", "f-CLSWGAN", "LisGAN", "RFF-GZSL",
                     "TF-VAEGAN", "TGMZ", "FREE", "SDGZSL", "CE-GZSL", "ICCE"]
    assert [p.method for p in published.methods(2, ("†",))] == names[:5]


@pytest.mark.parametrize("dataset, counts", [
    ("APY", (6, 7, 7)), ("AWA2", (13, 13, 13)), ("CUB", (14, 14, 14)), ("FLO", (8, 8, 8)),
    ("SUN", (11, 11, 11)),
])
def test_table2_has_a_number_where_the_paper_prints_one(dataset, counts):
    # APY U has one fewer: GXE's cell is not legible in the copy read (see bench/published.py)
    assert tuple(len(published.numbers(2, dataset, m)) for m in "USH") == counts


@pytest.mark.parametrize("dataset, best", [
    ("APY", [("ICCE", 45.2), ("TGMZ", 77.1), ("TGMZ", 48.0)]),
    ("AWA2", [("ICCE", 65.3), ("ICCE", 82.3), ("ICCE", 72.8)]),
    ("CUB", [("MSDN", 68.7), ("AREN", 69.0), ("MSDN", 68.1)]),
    ("FLO", [("CE-GZSL", 69.0), ("ICCE", 86.5), ("FREE", 75.0)]),
    ("SUN", [("MSDN", 52.2), ("DAZLE", 52.3), ("CE-GZSL", 43.1)]),
])
def test_table2_best_other_method_per_column(dataset, best):
    found = [max(published.numbers(2, dataset, m).items(), key=lambda kv: kv[1]) for m in "USH"]
    assert found == best


# ===== Table 3 =====

@pytest.mark.parametrize("name, printed", [
    ("ALE", ("CZSL", [39.7, 62.5, 54.9, 48.5, 58.1])),
    ("SYNC", ("CZSL", [23.9, 46.6, 55.6, None, 56.3])),
    ("TF-VAEGAN", ("GZSL", [None, 72.2, 64.9, 70.8, 66.0])),
    ("ICCE", ("GZSL", [49.5, 72.7, 78.4, 71.6, None])),
])
def test_table3_rows_are_as_printed(name, printed):
    kind, accs = printed
    p = published.method(3, name)
    assert (p.kind, [p.value(ds, "acc") for ds in DS]) == (kind, accs)


def test_table3_has_nine_czsl_then_four_gzsl_methods():
    assert [p.method for p in published.methods(3)] == [
        "DAP", "IAP", "SSE", "LATEM", "DEVISE", "SJE", "ALE", "ESZSL", "SYNC",
        "LisGAN", "TF-VAEGAN", "CE-GZSL", "ICCE"]
    assert len(published.methods(3, ("CZSL",))) == 9
    assert [len(published.numbers(3, ds, "acc")) for ds in DS] == [11, 13, 13, 9, 12]


def test_table3_best_per_column_and_best_czsl_method_on_sun():
    best = [max(published.numbers(3, ds, "acc").items(), key=lambda kv: kv[1]) for ds in DS]
    assert best == [("ICCE", 49.5), ("ICCE", 72.7), ("ICCE", 78.4), ("ICCE", 71.6),
                    ("TF-VAEGAN", 66.0)]
    assert max(published.numbers(3, "SUN", "acc", ("CZSL",)).values()) == 58.1  # ALE
