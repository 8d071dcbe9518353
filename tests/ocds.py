"""Validation of OCDS releases against the official OCDS 1.1 release schema with the Lots and
Techniques extensions (the schemas in `tests/fixtures/ocds/`, sources in SOURCES.md there).

OCDS applies an extension to the release schema as a JSON Merge Patch (RFC 7386). The schema
itself allows fields it does not declare, so, as the OCDS Data Review Tool does, undeclared
("additional") fields are reported too: a misspelt field name is an error here.
"""

from __future__ import annotations

import copy
import csv
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs

FOLDER = Path(__file__).parent / "fixtures" / "ocds"
EXTENSIONS = ("lots-extension-1.1.5.json", "techniques-extension.json")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: `patch` applied to `target` (neither is changed)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


@cache
def release_schema() -> dict[str, Any]:
    """The OCDS 1.1.5 release schema with the extensions merged in."""
    schema = json.loads((FOLDER / "release-schema-1.1.5.json").read_text(encoding="utf-8"))
    for name in EXTENSIONS:
        schema = merge_patch(schema, json.loads((FOLDER / name).read_text(encoding="utf-8")))
    if not jsonschema_rs.meta.is_valid(schema):
        raise ValueError("the merged OCDS release schema is not a valid JSON Schema")
    return schema


@cache
def party_roles() -> frozenset[str]:
    """The codes of OCDS 1.1.5's partyRole codelist."""
    with (FOLDER / "partyRole.csv").open(encoding="utf-8") as f:
        return frozenset(row["Code"] for row in csv.DictReader(f))


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = release_schema()["definitions"][schema["$ref"].removeprefix("#/definitions/")]
    return schema


def _undeclared(instance: Any, schema: dict[str, Any], path: str) -> list[str]:
    schema = _resolve(schema)
    out: list[str] = []
    if isinstance(instance, dict) and "properties" in schema:
        for key, value in instance.items():
            declared = schema["properties"].get(key)
            if declared is None:
                out.append(f"{path}/{key}: not a field of OCDS 1.1 or its extensions")
            else:
                out += _undeclared(value, declared, f"{path}/{key}")
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(instance):
            out += _undeclared(item, schema["items"], f"{path}/{i}")
    return out


def release_errors(release: Any) -> list[str]:
    """Every way `release` breaks the schema, an undeclared field or a party role not in the
    codelist (empty: a valid release)."""
    validator = jsonschema_rs.Draft4Validator(release_schema(), validate_formats=True)
    errors = [
        f"/{'/'.join(str(p) for p in error.instance_path)}: {error.message}"
        for error in validator.iter_errors(release)
    ]
    errors += _undeclared(release, release_schema(), "")
    if isinstance(release, dict):
        for i, party in enumerate(release.get("parties") or []):
            for role in party.get("roles") or []:
                if role not in party_roles():
                    errors.append(f"/parties/{i}/roles: {role!r} is not in the partyRole codelist")
    return errors


def package_errors(package: Any) -> list[str]:
    """Every way a release package breaks the OCDS 1.1.5 release package schema (its releases
    checked as by `release_errors`), or leaves out an extension of ours."""
    schema = json.loads((FOLDER / "release-package-schema-1.1.5.json").read_text(encoding="utf-8"))
    release_url = schema["properties"]["releases"]["items"]["$ref"]

    def retrieve(uri: str) -> dict[str, Any]:
        # the package schema names the release schema by its URL: never fetched, the local copy
        # (with the extensions merged in) stands for it
        if uri != release_url:
            raise ValueError(f"unexpected schema reference {uri}")
        return release_schema()

    validator = jsonschema_rs.Draft4Validator(schema, validate_formats=True, retriever=retrieve)
    errors = [
        f"/{'/'.join(str(p) for p in error.instance_path)}: {error.message}"
        for error in validator.iter_errors(package)
    ]
    if isinstance(package, dict):
        for i, release in enumerate(package.get("releases") or []):
            errors += [f"/releases/{i}{e}" for e in release_errors(release)]
    return errors
