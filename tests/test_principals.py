"""Principals: role order, requirement checks, audit names."""

from __future__ import annotations

import pytest

from smartregion.governance.principals import Forbidden, Principal


def test_roles_include_the_weaker_ones() -> None:
    editor = Principal("ghent", "editor", key_id="k1")
    assert editor.has_role("reader") and editor.has_role("editor") and not editor.has_role("admin")
    editor.require("ghent", "editor")
    with pytest.raises(Forbidden):
        editor.require("ghent", "admin")
    with pytest.raises(Forbidden):
        editor.require("leuven", "reader")


def test_the_operator_may_do_everything_and_actors_name_ids_only() -> None:
    Principal.cli().require("anyone", "admin")
    assert Principal.cli().actor == "operator"
    assert Principal("ghent", "admin", key_id="k1").actor == "key:k1"
    assert Principal("ghent", "admin", person_id="p1").actor == "person:p1"
