"""A secrets backend whose store does not answer (Vault down, a cloud endpoint out of reach), named
by ``support.secret_stores.UNREACHABLE``."""

from __future__ import annotations

from airflow.secrets import BaseSecretsBackend


class Unreachable(BaseSecretsBackend):
    """A backend whose store does not answer (Vault down, a cloud endpoint out of reach)."""

    def get_variable(self, key: str, team_name: str | None = None) -> str | None:
        raise ConnectionError("vault.example.org:8200: connection refused")

    def get_conn_value(self, conn_id: str, team_name: str | None = None) -> str | None:
        raise ConnectionError("vault.example.org:8200: connection refused")
