"""The repository holds no secret and no real national identity number: every tracked file is
scanned (the image's build context is a part of it: tests/test_deployment.py; logs, XComs and the
databases after real runs: tests/e2e/test_demo.py)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from support.repository import ROOT, tracked_files
from support.traces import delivered_in, fnrs_in

from outcomes.contracts.fnr import check_digits, is_synthetic

#: Hashes only, no text a person wrote (and a lock's hashes are long runs of hex digits).
NOT_SCANNED_FOR_FNR = {"uv.lock", ".secrets.baseline"}


def _valid(prefix: str) -> str:
    """The first number with valid check digits that starts with the six digits ``prefix``."""
    for individual in range(100, 1000):
        if (digits := check_digits(f"{prefix}{individual}")) is not None:
            return f"{prefix}{individual}{digits}"
    raise AssertionError(prefix)


def test_the_scan_finds_an_fnr_written_either_way_and_tells_a_synthetic_one() -> None:
    real, synthetic = _valid("010190"), _valid("018190")
    text = f"a {real[:6]} {real[6:]} b {synthetic} c {synthetic}7 d 1{real}".encode()
    assert fnrs_in(text) == {real, synthetic}  # not the last two: inside longer numbers
    assert not is_synthetic(real) and is_synthetic(synthetic)
    assert fnrs_in(f"sha {synthetic}ab".encode()) == set()  # a hash's run of digits is no fnr
    # ... but a known fnr is found anywhere: in a hex string, in a longer number, its zero lost
    zero = _valid("018290")
    for text in (f"sha{synthetic}ab", f"id 9{synthetic}9", f"n={int(zero)},"):
        assert delivered_in(text.encode(), {synthetic, zero}), text


def test_no_real_fnr_in_any_tracked_file() -> None:
    """Every fnr-shaped number in the repository is synthetic (month + 80): test data only."""
    found = []
    for name in tracked_files():
        if name in NOT_SCANNED_FOR_FNR:
            continue
        for number in fnrs_in((ROOT / name).read_bytes()):
            if not is_synthetic(number):
                found.append(f"{name}: {number[:4]}...")  # never the number itself in a report
    assert not found, found


def test_detect_secrets_finds_nothing_beyond_its_audited_baseline(tmp_path: Path) -> None:
    """detect-secrets (the pre-commit hook's tool) over every tracked file, with the audited
    baseline (a copy: the hook rewrites a baseline whose line numbers moved)."""
    baseline = tmp_path / "baseline.json"
    shutil.copyfile(ROOT / ".secrets.baseline", baseline)
    hook = Path(sys.executable).parent / "detect-secrets-hook"
    done = subprocess.run(
        [str(hook), "--baseline", str(baseline), *tracked_files()],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # 1: a secret not in the baseline; 3: none, and the copy's line numbers were brought up to date
    assert done.returncode in (0, 3), done.stdout + done.stderr
