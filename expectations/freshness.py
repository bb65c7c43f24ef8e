"""Freshness: every source delivered (a loaded or released delivery) within its expected interval
before the build's as-of cutoff. Severity ``warn`` by default (OUTCOMES_FRESHNESS_SEVERITY), so one
late source does not hold back the others' news; intervals per source: OUTCOMES_FRESHNESS_<SOURCE>_DAYS."""

from __future__ import annotations

from outcomes.quality.suite import Dataset, GateContext, no_violations


def build(gate: GateContext) -> Dataset:
    bounds = gate.config
    expected = ", ".join(f"('{source}', {days})" for source, days in bounds.freshness_days.items())
    cutoff = f"(({gate.as_of_sql} + 1)::timestamp at time zone 'UTC')"
    query = f"""
        select
            expected.source,
            max(deliveries.extracted_at) as last_extracted_at,
            round(extract(epoch from ({cutoff} - max(deliveries.extracted_at))) / 86400.0, 1) as age_days,
            expected.days as expected_days
        from (values {expected}) as expected (source, days)
        left join meta.deliveries as deliveries
            on deliveries.source = expected.source
           and deliveries.status in ('loaded', 'released')
           and deliveries.extracted_at < {cutoff}
        group by expected.source, expected.days
    """
    return Dataset(
        name="freshness",
        query=query,
        expectations=[
            no_violations(
                f"freshness.{source}",
                f"""
                select source, last_extracted_at, age_days, expected_days from {{batch}}
                where source = '{source}' and (age_days is null or age_days > expected_days)
                """,
                severity=bounds.freshness_severity,
                description=f"source {source} delivered within {days:g} days of the as-of date",
            )
            for source, days in bounds.freshness_days.items()
        ],
    )
