"""What dbt's context gives the models and sqlfluff's Jinja templater does not (.sqlfluff):
stand-ins that render the same SQL shape, for linting only."""

import hashlib


def local_md5(text: object) -> str:
    """dbt's local_md5: the md5 of the text, in hex."""
    return hashlib.md5(str(text).encode(), usedforsecurity=False).hexdigest()
