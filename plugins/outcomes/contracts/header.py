"""How a file's header differs from its contract: the header's problems, each a (rule, column,
value, detail) for the checker to report, a wide header's counted rather than listed."""

from __future__ import annotations

from outcomes.contracts.report import looks_identifying
from outcomes.contracts.spec import FileSpec


def header_problems(header: list[str], fspec: FileSpec) -> list[tuple[str, str | None, str | None, str]]:
    """(rule, column, value, detail) for each way the header differs from the contract."""
    import difflib

    expected = fspec.column_names
    problems: list[tuple[str, str, str | None, str]] = []
    seen: set[str] = set()
    for h in header:
        if h in seen:
            shown = "a redacted name" if looks_identifying(h) else repr(h)
            problems.append(("header_duplicate_column", h, h, f"names column {shown} twice"))
        seen.add(h)
    missing = [c for c in expected if c not in seen]
    extra = [h for h in dict.fromkeys(header) if h not in expected]
    for h in list(extra):
        close = difflib.get_close_matches(h, missing, n=1, cutoff=0.6)
        if close:
            extra.remove(h)
            missing.remove(close[0])
            shown = "a redacted name" if looks_identifying(h) else repr(h)
            problems.append(
                ("header_misspelt_column", close[0], h, f"has {shown} where the contract has {close[0]!r}")
            )
    for c in missing:
        problems.append(("header_missing_column", c, None, f"lacks column {c!r}"))
    for h in extra:
        shown = "a redacted name" if looks_identifying(h) else repr(h)
        problems.append(("header_extra_column", h, h, f"has column {shown}, which is not in the contract"))
    return _named_at_most(problems, HEADER_PROBLEMS_NAMED)


#: Header problems named one by one, per rule and file; the rest are counted in one more problem
#: (a header of 100,000 unknown columns is one broken extract, not 100,000 findings to store).
HEADER_PROBLEMS_NAMED = 20


def _named_at_most(
    problems: list[tuple[str, str, str | None, str]], named: int
) -> list[tuple[str, str | None, str | None, str]]:
    """The first ``named`` problems of each rule, and for a rule with more, one that counts them
    and names the first of the rest (its column)."""
    from collections import Counter

    kept: list[tuple[str, str | None, str | None, str]] = []
    per_rule: Counter[str] = Counter()
    rest: dict[str, list[str]] = {}
    for problem in problems:
        rule, column = problem[0], problem[1]
        per_rule[rule] += 1
        if per_rule[rule] <= named:
            kept.append(problem)
        else:
            rest.setdefault(rule, []).append(column)
    for rule, columns in rest.items():
        first = columns[0]
        shown = "a redacted name" if looks_identifying(first) else repr(first)
        kept.append(
            (
                rule,
                None,  # counted, not one column: the named ones are the first ``named``
                None,
                f"has {len(columns):,} more like the {named} above, from {shown} on "
                f"({len(columns) + named:,} in all)",
            )
        )
    return kept
