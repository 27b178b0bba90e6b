"""benchmarks/piece_size.py: the piece size of a file split across device calls, on the sizes of 2026-12-02."""

import math

import pytest
from conftest import load_benchmark

MIB = 2**20
GGUF = 253_113_024  # gemma-3-270m-q4_k_m.gguf


@pytest.fixture(scope="module")
def ps():
    return load_benchmark("piece_size")


def _calls(size, tree, extras, mib):
    n = math.ceil(size / (mib * MIB))
    last = size - (n - 1) * mib * MIB
    return [tree + mib * MIB] * (n - 1) + [tree + last + extras]


def test_the_sessions_sizes_give_a_piece_that_fits_where_36_mib_did_not(ps):
    tree, extras = int(24.6 * MIB), int(15.5 * MIB)
    assert max(_calls(GGUF, tree, extras, 36)) > 63 * MIB  # what the fixed default did on 2026-12-02
    mib = ps.piece_mib(GGUF, tree, extras)
    assert mib is not None and max(_calls(GGUF, tree, extras, mib)) <= 63 * MIB
    assert max(_calls(GGUF, tree, extras, mib + 1)) > 63 * MIB or math.ceil(GGUF / ((mib + 1) * MIB)) > 10


def test_the_largest_fitting_piece_is_chosen_so_the_calls_are_fewest(ps):
    mib = ps.piece_mib(100 * MIB, 0, 0, limit=30 * MIB)
    assert mib == 30  # 4 calls: 30, 30, 30, 10


def test_no_size_fits_when_the_carried_folders_fill_the_last_call(ps, capsys):
    assert ps.piece_mib(GGUF, 30 * MIB, 40 * MIB) is None
    assert ps.main([str(GGUF), str(30 * MIB), str(40 * MIB)]) == 2
    assert "no piece size fits" in capsys.readouterr().err


def test_at_most_ten_pieces(ps):
    assert ps.piece_mib(GGUF, 45 * MIB, 0) is None  # 18 MiB pieces would need 14
