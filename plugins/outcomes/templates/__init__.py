"""The project's HTML, as Jinja2 templates (autoescaped): one environment, loaded from this folder."""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def environment() -> Any:
    """The Jinja2 environment of the project's templates (``*.html.j2`` here), autoescaping HTML."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("outcomes", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=True),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def render(name: str, **context: Any) -> str:
    """The template ``name`` rendered with ``context``."""
    return str(environment().get_template(name).render(**context))
