"""The settings registry: precedence, coercion, and every setting documented."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from smartregion.settings import SETTINGS, Settings

DOCS = Path(__file__).resolve().parent.parent / "docs" / "operations.md"


def test_registry_and_dataclass_agree() -> None:
    declared = {s.name: s.default for s in SETTINGS}
    dataclass_defaults = {f.name: f.default for f in fields(Settings) if f.name != "extra"}
    assert declared == dataclass_defaults


def test_every_setting_is_documented() -> None:
    text = DOCS.read_text()
    missing = [s.name for s in SETTINGS if f"`{s.name}`" not in text]
    assert not missing, f"undocumented settings: {missing}"


def test_precedence_flag_over_env_over_file_over_default(tmp_path: Path) -> None:
    config = tmp_path / "smartregion.toml"
    config.write_text('port = 7000\nhost = "0.0.0.0"\nmax_limit = 50\n')
    env = {"SMARTREGION_PORT": "7100", "SMARTREGION_MAX_LIMIT": "60"}
    settings = Settings.load({"port": 7200}, environ=env, config_file=config)
    assert settings.port == 7200  # flag
    assert settings.max_limit == 60  # environment
    assert settings.host == "0.0.0.0"  # file
    assert settings.default_limit == 20  # default


def test_database_url_from_environment() -> None:
    settings = Settings.load(environ={"SMARTREGION_DATABASE_URL": "postgresql://x@y/z"})
    assert settings.database_url == "postgresql://x@y/z"


def test_bad_values_are_refused() -> None:
    with pytest.raises(ValueError, match="port"):
        Settings.load(environ={"SMARTREGION_PORT": "eighty"})
    with pytest.raises(ValueError, match="boolean"):
        Settings.load(environ={"SMARTREGION_DEMO": "maybe"})
    with pytest.raises(ValueError, match="unknown setting"):
        Settings.load({"no_such_thing": 1})
