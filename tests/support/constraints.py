"""A constraint of a built table tried with a real write (tests/transform/test_grain.py,
test_not_null.py): what PostgreSQL says, and what dbt's failures and the alerts carry of it."""

from __future__ import annotations

import psycopg
import pytest

from outcomes.warehouse.connection import Warehouse, redact_key_values


def refused_write(
    warehouse: Warehouse, pick: str, write: str, error: type[psycopg.Error]
) -> tuple[str, str, str]:
    """As the owner role: ``pick`` a participant_id, then ``write`` (``%s``: that id), which must
    fail with ``error``. Returns the id, PostgreSQL's message and the message redacted; checks
    that the message quotes the id and the redacted one does not."""
    with psycopg.connect(warehouse.url()) as conn:
        conn.execute("set role outcomes_owner")
        row = conn.execute(pick).fetchone()
        assert row is not None, pick
        participant = str(row[0])
        with pytest.raises(error) as refused:
            conn.execute(write, (participant,))
        conn.rollback()
    message = str(refused.value)
    shown = redact_key_values(message)
    assert participant in message, message  # PostgreSQL quotes the key or the row
    assert participant not in shown, shown
    return participant, message, shown
