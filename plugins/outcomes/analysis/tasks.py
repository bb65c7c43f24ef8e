"""Task body of ``build_outcomes``'s ``estimate_effects`` step (the DAG only wires it)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from outcomes.warehouse.connection import Warehouse

log = logging.getLogger(__name__)


def estimate_effects(warehouse: Warehouse | None = None) -> dict[str, int]:
    """The effect marts' estimates, computed into the candidate in one transaction (before the
    gate audits them); returns the groups estimated per mart (counts only: an XCom)."""
    import psycopg

    from outcomes.analysis.estimates import fill_schema
    from outcomes.settings import load_settings
    from outcomes.warehouse.connection import Role, resolve
    from outcomes.warehouse.publish import CANDIDATE

    warehouse = warehouse or resolve(load_settings())
    with psycopg.connect(warehouse.url()) as conn:
        conn.execute(f"set local role {Role.OWNER}")
        done = fill_schema(conn, CANDIDATE)
    log.info("estimates computed into %s: %s", CANDIDATE, done)
    return done
