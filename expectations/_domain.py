"""Value sets and ranges of docs/definitions.md that several suites check (not a suite: starts with _)."""

from __future__ import annotations

from outcomes.transform.seeds import eq5d_value_set

#: Each questionnaire score's range (docs/definitions.md "Questionnaires").
SCORE_RANGES: dict[str, tuple[float, float]] = {
    "odi_pct": (0, 100),
    "nrs_pain_intensity": (0, 10),
    "nrs_pain_bother": (0, 10),
    "hscl25_total": (1, 4),
    "hscl25_anxiety": (1, 4),
    "hscl25_depression": (1, 4),
    # the EQ-5D value set's worst state (33333) and best (11111)
    "eq5d_index": (float(eq5d_value_set().worst()), 1),
    "eq5d_vas": (0, 100),
}
