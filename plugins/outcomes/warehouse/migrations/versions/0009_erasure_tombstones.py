"""The erasure register holds one-way keyed tombstones, never whom.

``pending.erasures`` kept each erased person's pseudonym and trial participant ID, so that the
loader could drop later deliveries about them. It is replaced by:

- ``pending.erasure_tombstones``: for each erased person, a tombstone of their pseudonym and one
  of their participant ID, each an HMAC-SHA-256 with the deployment's pseudonymisation key
  (domain-separated from the pseudonyms themselves). The loader, which holds the key, computes the
  tombstone of an incoming row's pseudonym or participant ID and drops the row when it is in the
  register; without the key a tombstone says nothing about whom it stands for.
- ``pending.erasure_queue``: the participant IDs of erasures that the next build still has to
  carry into the stores the build keeps (database locks, ``history``). The build claims the queue
  before dbt reads raw and deletes what it claimed once the history snapshot is clean; an ID is
  kept there for hours (until the next successful build), never for good.

A migration cannot compute tombstones (the key is the deployment's, not the database's), so an
old register that holds anyone is renamed ``pending.erasures_unconverted``: the loader converts it
into tombstones and empties it in the first transaction it runs with the key. Its participant IDs
go into the queue, so the next build cleans the locks and the history once more (deleting nothing
twice). An empty one is dropped; a converted one stays, empty, for a later migration to drop.
A downgrade is refused while the register or the queue holds anyone.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("set local role outcomes_owner")
    op.execute(
        """
        create table pending.erasure_tombstones (
            tombstone text primary key,
            registered_at timestamptz not null default now()
        )
        """
    )
    op.execute(
        "comment on table pending.erasure_tombstones is "
        "'Erased people, as one-way keyed tombstones of their pseudonym and participant ID: "
        "later deliveries about them are dropped on arrival. Never the IDs themselves.'"
    )
    op.execute(
        """
        create table pending.erasure_queue (
            participant_id text primary key,
            queued_at timestamptz not null default now(),
            claimed_by text
        )
        """
    )
    op.execute(
        "comment on table pending.erasure_queue is "
        "'Erasures the next build still has to carry into the locks and history; emptied by that "
        "build (claimed_by: the build that claimed the entry).'"
    )
    op.execute(
        "insert into pending.erasure_queue (participant_id) "
        "select distinct participant_id from pending.erasures on conflict do nothing"
    )
    op.execute(
        """
        do $$
        begin
            if exists (select 1 from pending.erasures) then
                alter table pending.erasures rename to erasures_unconverted;
                alter index pending.erasures_participant rename to erasures_unconverted_participant;
                comment on table pending.erasures_unconverted is
                    'The register before tombstones: the loader converts it and empties it on its next run.';
            else
                drop table pending.erasures;
            end if;
        end
        $$
        """
    )
    op.execute("reset role")


def downgrade() -> None:
    # The identities behind a tombstone cannot be recovered: a downgrade would let an erased
    # person's later deliveries in again, so it is refused while anyone is registered or queued.
    op.execute("set local role outcomes_owner")
    op.execute(
        """
        do $$
        begin
            if exists (select 1 from pending.erasure_tombstones)
                or exists (select 1 from pending.erasure_queue) then
                raise exception 'refusing to downgrade below 0009: %', 'the erasure register holds '
                    || 'tombstones or queued erasures, which the register of before cannot hold';
            end if;
        end
        $$
        """
    )
    op.execute(
        """
        do $$
        begin
            if to_regclass('pending.erasures_unconverted') is not null then
                alter index pending.erasures_unconverted_participant rename to erasures_participant;
                alter table pending.erasures_unconverted rename to erasures;
            else
                create table pending.erasures (
                    person_pseudonym text not null,
                    participant_id text not null,
                    erased_at timestamptz not null default now(),
                    primary key (person_pseudonym, participant_id)
                );
                create index erasures_participant on pending.erasures (participant_id);
            end if;
        end
        $$
        """
    )
    op.execute("drop table pending.erasure_queue")
    op.execute("drop table pending.erasure_tombstones")
    op.execute("reset role")
