"""Source contracts: the machine-readable spec (``sources.yaml``) and the delivery checker.

Light to import: only the standard library is loaded here (PyYAML lazily, on first
:func:`load_contract`).
"""

from __future__ import annotations

from outcomes.contracts.check import (
    DeliveryReport,
    Manifest,
    ManifestFile,
    RowChecker,
    RowInvalid,
    Violation,
    check_delivery,
)
from outcomes.contracts.spec import Contract, ContractError, load_contract

__all__ = [
    "Contract",
    "ContractError",
    "DeliveryReport",
    "Manifest",
    "ManifestFile",
    "RowChecker",
    "RowInvalid",
    "Violation",
    "check_delivery",
    "load_contract",
]
