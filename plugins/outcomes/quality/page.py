"""The quality page of the Airflow UI (``/outcomes/quality/``, ``webapp.py``): the latest gate
run's result for every expectation with its trend across builds, and one page per expectation
with its whole history. Built from the gate's ledger (``outcomes.quality.trends``) with the
project's templates (``templates/quality/``): one self-contained HTML page each, inline CSS and
inline SVG, nothing loaded from anywhere (it works in a secure zone with no network).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from outcomes.quality.trends import Build, ExpectationHistory, Point, QualityHistory

#: How many builds the overview's trend strips show (an expectation's own page shows them all).
TREND_BUILDS = 30
#: How many of a build's new deliveries are named before "and n more".
DELIVERIES_NAMED = 6


@dataclass(frozen=True)
class Mark:
    """One build's square in a trend strip, or one point of the observed-value chart."""

    x: float
    y: float
    state: str  # passed, failed-error, failed-warn, not-run (the CSS class)
    title: str


def state(point: Point) -> str:
    if point.success is None:
        return "not-run"
    if point.success:
        return "passed"
    return f"failed-{point.severity or 'error'}"


def _title(point: Point) -> str:
    build = point.build
    result = {"passed": "passed", "not-run": "not run"}.get(state(point), f"failed ({point.severity})")
    observed = "" if point.observed is None else f"; observed {point.observed}"
    return f"as of {build.as_of_date}, build {build.build_id} ({build.status}): {result}{observed}"


def strip(history: ExpectationHistory, last: int = TREND_BUILDS) -> list[Mark]:
    """The squares of the last ``last`` builds, oldest left (12 px apart)."""
    return [
        Mark(x=12.0 * i, y=0.0, state=state(p), title=_title(p)) for i, p in enumerate(history.points[-last:])
    ]


@dataclass(frozen=True)
class Chart:
    """The observed value over builds: points in a 640 x 180 box with its axis labels."""

    marks: list[Mark]
    line: str  # the polyline's points
    low: str
    high: str
    first: str
    last: str
    width: int = 640
    height: int = 180


def chart(history: ExpectationHistory) -> Chart | None:
    """The numeric observed values over every build (None when no value is a number)."""
    numeric = [(i, p) for i, p in enumerate(history.points) if p.value is not None]
    if not numeric:
        return None
    values = [p.value for _, p in numeric if p.value is not None]
    low, high = min(values), max(values)
    if low == high:
        low, high = low - 1, high + 1
    left, right, top, bottom = 60.0, 630.0, 10.0, 150.0
    span = max(len(history.points) - 1, 1)
    marks = []
    for i, point in numeric:
        assert point.value is not None
        x = left + (right - left) * i / span
        y = bottom - (bottom - top) * (point.value - low) / (high - low)
        marks.append(Mark(x=round(x, 1), y=round(y, 1), state=state(point), title=_title(point)))
    return Chart(
        marks=marks,
        line=" ".join(f"{m.x},{m.y}" for m in marks),
        low=_number(low),
        high=_number(high),
        first=history.points[0].build.as_of_date,
        last=history.points[-1].build.as_of_date,
    )


def _number(value: float) -> str:
    return f"{value:g}"


def deliveries(build: Build, first: Build | None) -> str:
    """The deliveries new in ``build``, named (at most a few), for a table cell."""
    if first is not None and build.build_id == first.build_id:
        return f"the first build: all {len(build.new_deliveries)} deliveries"
    left_out = (
        f"; {len(build.left_out)} of the build before's left out (an earlier as-of date)"
        if build.left_out
        else ""
    )
    if not build.new_deliveries:
        return ("none" if left_out else "none: the same deliveries as the build before") + left_out
    named = ", ".join(build.new_deliveries[:DELIVERIES_NAMED])
    more = len(build.new_deliveries) - DELIVERIES_NAMED
    return named + (f" and {more} more" if more > 0 else "") + left_out


def overview_page(history: QualityHistory) -> str:
    """``/outcomes/quality/``: the latest gate run, every expectation with its trend, every build."""
    from outcomes.templates import render

    first = history.builds[0] if history.builds else None
    rows = [
        {
            "history": h,
            "latest": h.points[-1],
            "state": state(h.points[-1]),
            "strip": strip(h),
            "failing_since": h.failing_since,
            "last_change": h.last_change,
            "changed_by": deliveries(h.last_change.build, first) if h.last_change else "",
        }
        for h in history.latest_results()
    ]
    builds = [{"build": b, "deliveries": deliveries(b, first)} for b in reversed(history.builds)]
    return render(
        "quality/overview.html.j2",
        latest=history.latest,
        published=history.last_published,
        rows=rows,
        builds=builds,
        strip_builds=min(TREND_BUILDS, len(history.builds)),
        new_in_latest=deliveries(history.latest, first) if history.latest else "",
    )


def expectation_page(history: QualityHistory, name: str) -> str | None:
    """``/outcomes/quality/expectations/<name>``: one expectation in every build (None: unknown)."""
    from outcomes.templates import render

    found = history.expectations.get(name)
    if found is None:
        return None
    first = history.builds[0] if history.builds else None
    points: list[dict[str, Any]] = []
    before: Point | None = None
    for point in found.points:
        changed = (
            point.success is not None
            and before is not None
            and (before.success, before.observed) != (point.success, point.observed)
        )
        points.append(
            {
                "point": point,
                "state": state(point),
                "changed": changed,
                "deliveries": deliveries(point.build, first),
            }
        )
        if point.success is not None:
            before = point
    return render(
        "quality/expectation.html.j2",
        history=found,
        latest=found.latest,
        latest_state=state(found.latest) if found.latest else "not-run",
        failing_since=found.failing_since,
        last_change=found.last_change,
        changed_by=deliveries(found.last_change.build, first) if found.last_change else "",
        chart=chart(found),
        points=list(reversed(points)),
        builds=len(history.builds),
    )
