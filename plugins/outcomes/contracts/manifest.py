"""A delivery's manifest (``_manifest.json``): read, checked against the contract's manifest spec
(keys, types, rules), and held to its folder, its source and its mode."""

from __future__ import annotations

import json
import re
from typing import Any, Protocol

from outcomes.contracts.report import (
    Manifest,
    ManifestFile,
    _Delivery,
)
from outcomes.contracts.spec import (
    ManifestField,
    SourceSpec,
)
from outcomes.contracts.values import _parse_timestamp, parse_timestamp


class DeliveryPath(Protocol):
    """The little of a path the checker uses: ``pathlib.Path``, ``upath.UPath`` and Airflow's
    ``ObjectStoragePath`` all fit, so deliveries can live on any fsspec file system."""

    @property
    def name(self) -> str: ...

    @property
    def parent(self) -> Any: ...

    def __truediv__(self, key: str) -> Any: ...

    def exists(self) -> bool: ...

    def iterdir(self) -> Any: ...

    def open(self, mode: str) -> Any: ...


def _check_field(value: Any, spec: ManifestField, path: str, problems: list[tuple[str, str]]) -> None:
    """Check one manifest value against its declared field; append (key, problem)."""
    if spec.type == "text":
        if not isinstance(value, str) or not value:
            problems.append((path, "must be a non-empty string"))
            return
        if spec.enum is not None and value not in spec.enum:
            problems.append((path, f"must be one of {', '.join(spec.enum)}, got {value!r}"))
        if spec.regex is not None and not re.fullmatch(spec.regex, value):
            problems.append((path, f"must match {spec.regex}"))
    elif spec.type == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append((path, "must be an integer"))
        elif spec.min is not None and value < spec.min:
            problems.append((path, f"must be >= {spec.min}"))
    elif spec.type == "timestamp":
        if not isinstance(value, str) or parse_timestamp(value) is None:
            problems.append((path, "must be an ISO 8601 timestamp with an offset or Z"))
    elif spec.type == "list" and not isinstance(value, list):
        problems.append((path, "must be a list"))


def _check_keys(
    doc: dict[str, Any], fields: tuple[ManifestField, ...], additional: bool, prefix: str
) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for f in fields:
        if f.name not in doc:
            problems.append((prefix + f.name, "is missing"))
        else:
            _check_field(doc[f.name], f, prefix + f.name, problems)
    if not additional:
        known = {f.name for f in fields}
        for key in doc:
            if key not in known:
                problems.append((prefix + str(key), "is not a manifest key"))
    return problems


def _read_manifest(delivery_dir: DeliveryPath, ctx: _Delivery, spec: SourceSpec | None) -> Manifest | None:
    """Parse and validate ``_manifest.json``; report problems and return None when unusable."""
    mspec = ctx.contract.delivery.manifest
    name = mspec.name
    doc = _manifest_json(delivery_dir / name, name, ctx)
    if doc is None:
        return None
    problems = _check_keys(doc, mspec.fields, mspec.additional_keys, "")
    entries = _manifest_files(doc.get("files"), mspec, problems)
    for key, problem in problems:
        ctx.error(name, "manifest_schema", f"key {key} {problem}", column=key)
    if problems:
        return None
    manifest = Manifest(
        source=doc["source"],
        delivery_id=doc["delivery_id"],
        extracted_at=_parse_timestamp(doc["extracted_at"]),
        mode=doc["mode"],
        files=tuple(entries),
    )
    _check_manifest_says(manifest, name, ctx, spec)
    return manifest


def _manifest_json(path: Any, name: str, ctx: _Delivery) -> dict[str, Any] | None:
    """The manifest as a JSON object; None (reported) when it is missing or does not parse."""
    if not path.exists():
        ctx.error(name, "manifest_missing", "is missing: the delivery is not complete")
        return None
    with path.open("rb") as fh:
        data = fh.read()
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        ctx.error(name, "manifest_unparseable", f"is not UTF-8 (bad byte at offset {exc.start})")
        return None
    except json.JSONDecodeError as exc:
        ctx.error(
            name,
            "manifest_unparseable",
            f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            line=exc.lineno,
        )
        return None
    if not isinstance(doc, dict):
        ctx.error(name, "manifest_schema", f"must be a JSON object, not {type(doc).__name__}")
        return None
    return doc


def _manifest_files(files: Any, mspec: Any, problems: list[tuple[str, str]]) -> list[ManifestFile]:
    """The manifest's file entries; each problem of one is added to ``problems``."""
    entries: list[ManifestFile] = []
    if not isinstance(files, list):
        return entries  # the key check reports it
    seen: set[str] = set()
    for i, entry in enumerate(files):
        prefix = f"files[{i}]."
        if not isinstance(entry, dict):
            problems.append((f"files[{i}]", "must be an object"))
            continue
        found = _check_keys(entry, mspec.file_fields, mspec.additional_keys, prefix)
        problems.extend(found)
        if found:
            continue
        if entry["name"] in seen:
            problems.append((prefix + "name", f"lists {entry['name']!r} twice"))
        seen.add(entry["name"])
        entries.append(ManifestFile(entry["name"], entry["rows"], entry["sha256"].lower()))
    return entries


def _check_manifest_says(manifest: Manifest, name: str, ctx: _Delivery, spec: SourceSpec | None) -> None:
    """The manifest names the delivery's own folder, source and mode."""
    if manifest.source != ctx.source:
        ctx.error(
            name,
            "manifest_source_mismatch",
            f"says source {manifest.source!r}, but the delivery is in folder {ctx.source!r}",
            column="source",
            value=manifest.source,
        )
    if manifest.delivery_id != ctx.delivery_id:
        ctx.error(
            name,
            "manifest_delivery_id_mismatch",
            f"says delivery_id {manifest.delivery_id!r}, but the folder is {ctx.delivery_id!r}",
            column="delivery_id",
            value=manifest.delivery_id,
        )
    if spec is not None and manifest.mode != spec.mode:
        ctx.error(
            name,
            "manifest_mode_mismatch",
            f"says mode {manifest.mode!r}, but source {spec.name} delivers {spec.mode!r}",
            column="mode",
            value=manifest.mode,
        )
