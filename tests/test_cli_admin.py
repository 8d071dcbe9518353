"""`smartregion admin …` and `smartregion audit verify` (Typer's CliRunner, plus one subprocess)."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smartregion.cli.main import app
from smartregion.governance import Governance
from smartregion.storage import open_store
from smartregion.storage.governance import GovernanceStore

runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def authenticate(db: str, key: str) -> object:
    async def go() -> object:
        store = open_store(db)
        assert isinstance(store, GovernanceStore)
        await store.open()
        try:
            return await Governance(store).authenticate_key(key)
        finally:
            await store.close()

    return asyncio.run(go())


def test_bootstrap_keys_datasets_and_audit(db: str, tmp_path: Path) -> None:
    code, out, _ = run(
        "admin",
        "create-org",
        "--id",
        "smartregion",
        "--name",
        "Platform",
        "--kind",
        "region",
        "--database",
        db,
    )
    assert code == 0 and "created organisation smartregion" in out
    code, out, _ = run(
        "admin",
        "create-org",
        "--id",
        "ghent",
        "--name",
        "Stad Gent",
        "--kind",
        "municipality",
        "--kbo",
        "0207.451.227",
        "--nis",
        "44021",
        "--database",
        db,
    )
    assert code == 0
    code, out, err = run(
        "admin",
        "create-key",
        "--org",
        "ghent",
        "--role",
        "admin",
        "--expires",
        "2090-01-01T00:00:00Z",
        "--database",
        db,
    )
    assert code == 0
    key = out.strip()  # stdout is the key alone (scriptable); the key id goes to stderr
    assert key.startswith("srk_") and "\n" not in key
    principal = authenticate(db, key)
    assert (
        getattr(principal, "org_id", None) == "ghent"
        and getattr(principal, "role", None) == "admin"
    )
    key_id = err.split("key id: ")[1].split()[0]
    code, out, _ = run(
        "admin",
        "create-dataset",
        "--id",
        "ghent-air",
        "--owner",
        "ghent",
        "--title",
        "Luchtkwaliteit",
        "--entity-types",
        "AirQualityObserved,Device",
        "--policy",
        "open",
        "--database",
        db,
    )
    assert code == 0 and "(open)" in out
    code, out, _ = run("admin", "revoke-key", key_id, "--database", db)
    assert code == 0 and f"revoked key {key_id}" in out
    with pytest.raises(Exception, match="invalid, expired or revoked"):
        authenticate(db, key)
    code, out, _ = run("audit", "verify", "--database", db)
    assert code == 0 and "intact: 5 records" in out
    # tamper with the table behind the application's back
    with sqlite3.connect(tmp_path / "cli.db") as conn:
        conn.execute("DELETE FROM audit_log WHERE seq = 3")
    code, _, err = run("audit", "verify", "--database", db)
    assert code == 1 and "TAMPERED" in err


def test_domain_errors_are_messages_and_exit_1(db: str) -> None:
    code, _, err = run(
        "admin", "create-org", "--id", "x", "--name", "X", "--kind", "alien", "--database", db
    )
    assert code == 1 and "kind must be one of" in err
    code, _, err = run(
        "admin",
        "create-org",
        "--id",
        "x",
        "--name",
        "X",
        "--kind",
        "company",
        "--kbo",
        "0207451228",
        "--database",
        db,
    )
    assert code == 1 and "check digits" in err
    code, _, err = run("admin", "create-key", "--org", "nope", "--database", db)
    assert code == 1 and "no organisation" in err
    code, _, err = run(
        "admin", "create-key", "--org", "nope", "--expires", "tomorrow", "--database", db
    )
    assert code == 1 and "ISO 8601" in err
    code, _, err = run("admin", "revoke-key", "0123456789abcdef", "--database", db)
    assert code == 1 and "no key" in err


def test_the_console_script_prints_the_key_once(db: str) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "smartregion", *args, "--database", db],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert (
        cli("admin", "create-org", "--id", "p", "--name", "P", "--kind", "region").returncode == 0
    )
    result = cli("admin", "create-key", "--org", "p", "--role", "admin")
    assert result.returncode == 0 and result.stdout.startswith("srk_")
    assert result.stdout.strip() not in result.stderr
