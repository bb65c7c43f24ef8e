"""The dashboard's HTML building blocks: a page of charts, the templates' fragments, tables."""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

from outcomes.templates import render as render_template

PLOT_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}


def e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


class Page:
    """Collects the charts (each a plotly figure in its own div) and the HTML around them."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.charts: list[str] = []

    def add(self, markup: str) -> None:
        self.parts.append(markup)

    def chart(self, chart_id: str, figure: Any, caption: str) -> None:
        self.charts.append(chart_id)
        div = figure.to_html(full_html=False, include_plotlyjs=False, div_id=chart_id, config=PLOT_CONFIG)
        self.add(fragment("figure", chart_id=chart_id, div=div, caption=caption))

    def html(self) -> str:
        return "\n".join(self.parts)


def fragment(name: str, **context: Any) -> str:
    """The dashboard template ``templates/dashboard/<name>.html.j2`` rendered (autoescaped)."""
    return render_template(f"dashboard/{name}.html.j2", **context).rstrip("\n")


def table(header: list[str], rows: Iterable[list[Any]], cls: str = "") -> str:
    return fragment("table", header=header, rows=list(rows), cls=cls)
