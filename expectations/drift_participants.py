"""Volume: no randomised participant of the last published build may disappear.

A participant who was erased (withdrew consent) is the only one allowed to go: the loader queues
each erasure for the build (``pending.erasure_queue``), which empties the queue only after its
history snapshot, so the build that first lacks them still sees them queued. Anyone else missing
means a delivery lost them. Skipped before the first publish.
"""

from __future__ import annotations

from outcomes.quality.suite import Dataset, GateContext, no_violations


def build(gate: GateContext) -> Dataset | None:
    if gate.published is None or "dim_participants" not in gate.published_tables:
        return None
    query = f"""
        select published.participant_id, published.study, published.arm
        from {gate.published_table("dim_participants")} as published
        left join {gate.table("dim_participants")} as candidate using (participant_id)
        where candidate.participant_id is null
          and published.participant_id not in (select participant_id from pending.erasure_queue)
    """
    return Dataset(
        name="drift_participants",
        query=query,
        expectations=[
            no_violations(
                "drift_participants.no_participant_lost",
                """
                select study, arm, count(*) as participants_lost from {batch}
                group by study, arm
                """,
                severity="error",
                description="every randomised participant of the published build is still there "
                "(erased participants excepted)",
            )
        ],
    )
