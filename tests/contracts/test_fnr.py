"""fnr check digits and synthetic numbers (docs/definitions.md, "Identity and privacy")."""

from __future__ import annotations

import datetime as dt

import pytest

from outcomes.contracts.fnr import (
    check_digits,
    has_valid_check_digits,
    is_synthetic,
    synthetic_capacity,
    synthetic_fnr,
)


def _reference_check_digits(first_nine: str) -> str | None:
    """docs/definitions.md's rule, written out literally as an independent reference."""
    w1 = [3, 7, 6, 1, 8, 9, 4, 5, 2]
    w2 = [5, 4, 3, 2, 7, 6, 5, 4, 3, 2]
    k1 = 11 - sum(int(d) * w for d, w in zip(first_nine, w1, strict=True)) % 11
    k1 = 0 if k1 == 11 else k1
    if k1 == 10:
        return None
    k2 = 11 - sum(int(d) * w for d, w in zip(first_nine + str(k1), w2, strict=True)) % 11
    k2 = 0 if k2 == 11 else k2
    if k2 == 10:
        return None
    return f"{k1}{k2}"


def test_check_digits_agree_with_the_rule_on_many_numbers() -> None:
    for n in range(0, 999_999_999, 7_777_777):
        first_nine = f"{n:09d}"
        assert check_digits(first_nine) == _reference_check_digits(first_nine)


def test_fast_synthetic_scan_agrees_with_the_rule() -> None:
    for days in range(0, 365 * 50, 97):
        born = dt.date(1950, 1, 1) + dt.timedelta(days=days)
        prefix = f"{born.day:02d}{born.month + 80:02d}{born.year % 100:02d}"
        expected = [
            f"{prefix}{i:03d}{_reference_check_digits(f'{prefix}{i:03d}')}"
            for i in range(1000)
            if _reference_check_digits(f"{prefix}{i:03d}") is not None
        ]
        assert [synthetic_fnr(born, s) for s in range(synthetic_capacity(born))] == expected


@pytest.mark.parametrize("bad", ["", "1234567890", "123456789012", "1234567890a", "abcdefghijk"])
def test_malformed_numbers_are_invalid(bad: str) -> None:
    assert not has_valid_check_digits(bad)


def test_a_changed_digit_breaks_the_check() -> None:
    fnr = synthetic_fnr(dt.date(1985, 6, 30), 3)
    assert has_valid_check_digits(fnr)
    broken = fnr[:-1] + str((int(fnr[-1]) + 1) % 10)
    assert not has_valid_check_digits(broken)


def test_synthetic_numbers_are_valid_synthetic_and_distinct() -> None:
    born = dt.date(1970, 12, 31)
    numbers = [synthetic_fnr(born, i) for i in range(synthetic_capacity(born))]
    assert len(set(numbers)) == len(numbers) > 700
    assert all(has_valid_check_digits(n) and is_synthetic(n) for n in numbers)
    assert all(n.startswith("319270") for n in numbers)  # month 12 + 80 = 92
    with pytest.raises(ValueError, match="no synthetic fnr"):
        synthetic_fnr(born, len(numbers))


def test_real_months_are_not_synthetic() -> None:
    assert not is_synthetic("01018012345")  # month 01: a real-looking number
    assert is_synthetic("01818012345")  # month 81: January, synthetic
    assert is_synthetic("01928012345")  # month 92: December, synthetic
