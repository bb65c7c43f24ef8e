"""Erasures: the register that keeps an erased participant out of every later delivery.

A participant whose enrolment row says ``erase = true`` withdrew consent and asked for their data
to be deleted: the loader deletes every row about them (raw, pending, quarantine) and drops rows
about them from every later delivery on arrival. To recognise those rows it must remember the
pseudonym and the trial's participant ID of each erased person, and nothing else: that register
lives in the loader-only ``pending`` schema. Users see only that an erasure happened
(``meta.delivery_events``, event ``erasure``, with counts and no identity).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("set local role outcomes_owner")
    op.execute(
        """
        create table pending.erasures (
            person_pseudonym text not null,
            participant_id text not null,
            erased_at timestamptz not null default now(),
            primary key (person_pseudonym, participant_id)
        )
        """
    )
    op.execute("create index erasures_participant on pending.erasures (participant_id)")
    op.execute(
        "comment on table pending.erasures is "
        "'Erased participants (pseudonym and trial ID only), so later deliveries about them are dropped.'"
    )
    op.execute("reset role")


def downgrade() -> None:
    op.execute("set local role outcomes_owner")
    op.execute("drop table pending.erasures")
    op.execute("reset role")
