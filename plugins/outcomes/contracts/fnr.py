"""Norwegian national identity numbers (fødselsnummer, fnr): check digits and synthetic numbers.

The rules are in ``docs/definitions.md`` ("Identity and privacy"): 11 digits, ``DDMMYY`` + a 3-digit
individual number + two mod-11 check digits. D-numbers add 4 to the first digit; synthetic test
numbers (the Tenor convention) add 80 to the month, so their month is 81-92. Every fnr this project
writes is synthetic; a number with a real month is treated as real personal data.
"""

from __future__ import annotations

import datetime as dt
from array import array
from functools import lru_cache

_K1_WEIGHTS = (3, 7, 6, 1, 8, 9, 4, 5, 2)
_K2_WEIGHTS = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


def _check_digit(digits: str, weights: tuple[int, ...]) -> int | None:
    """One mod-11 check digit, or None when the number cannot have one (remainder gives 10)."""
    k = 11 - sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11
    if k == 11:
        return 0
    if k == 10:
        return None
    return k


def check_digits(first_nine: str) -> str | None:
    """The two check digits for the first nine digits, or None if no valid number starts so."""
    if len(first_nine) != 9 or not first_nine.isdigit():
        raise ValueError("expected exactly nine digits")
    k1 = _check_digit(first_nine, _K1_WEIGHTS)
    if k1 is None:
        return None
    k2 = _check_digit(first_nine + str(k1), _K2_WEIGHTS)
    if k2 is None:
        return None
    return f"{k1}{k2}"


def has_valid_check_digits(fnr: str) -> bool:
    """True when ``fnr`` is 11 digits whose two mod-11 check digits are right."""
    if len(fnr) != 11 or not fnr.isdigit():
        return False
    return check_digits(fnr[:9]) == fnr[9:]


def is_synthetic(fnr: str) -> bool:
    """True for a Tenor-style synthetic number (month + 80, i.e. 81-92). Assumes 11 digits."""
    return 81 <= int(fnr[2:4]) <= 92


def _synthetic_prefix(birth_date: dt.date) -> str:
    return f"{birth_date.day:02d}{birth_date.month + 80:02d}{birth_date.year % 100:02d}"


@lru_cache(maxsize=32768)
def _valid_individual_numbers(prefix: str) -> array:
    """The individual numbers (000-999) that give valid check digits after ``prefix``.

    Cached per birth date (about 1.7 kB each, at most ~55 MB for 32,768 dates), so generating
    a million numbers costs one scan per distinct birth date, not one per person.
    """
    p1 = sum(int(d) * w for d, w in zip(prefix, _K1_WEIGHTS[:6], strict=True))
    p2 = sum(int(d) * w for d, w in zip(prefix, _K2_WEIGHTS[:6], strict=True))
    valid = array("H")
    for i in range(1000):
        a, b, c = i // 100, i // 10 % 10, i % 10
        k1 = 11 - (p1 + a * _K1_WEIGHTS[6] + b * _K1_WEIGHTS[7] + c * _K1_WEIGHTS[8]) % 11
        if k1 == 10:
            continue
        k1 %= 11
        k2 = (
            11
            - (p2 + a * _K2_WEIGHTS[6] + b * _K2_WEIGHTS[7] + c * _K2_WEIGHTS[8] + k1 * _K2_WEIGHTS[9]) % 11
        )
        if k2 == 10:
            continue
        valid.append(i)
    return valid


def synthetic_fnr(birth_date: dt.date, serial: int) -> str:
    """A valid synthetic fnr for ``birth_date``: the ``serial``-th one with valid check digits.

    The individual number runs through 000-999 (about 1 in 5 candidates has no valid check
    digits and is skipped), so one birth date yields about 800 distinct numbers
    (:func:`synthetic_capacity`); ``serial`` beyond that raises ``ValueError``.
    Deterministic: same inputs, same number; distinct (date, serial) pairs, distinct numbers.
    """
    if serial < 0:
        raise ValueError("serial must be >= 0")
    prefix = _synthetic_prefix(birth_date)
    valid = _valid_individual_numbers(prefix)
    if serial >= len(valid):
        raise ValueError(f"no synthetic fnr number {serial} for {birth_date.isoformat()}")
    first_nine = f"{prefix}{valid[serial]:03d}"
    return first_nine + (check_digits(first_nine) or "")


def synthetic_capacity(birth_date: dt.date) -> int:
    """How many valid synthetic numbers one birth date has."""
    return len(_valid_individual_numbers(_synthetic_prefix(birth_date)))
