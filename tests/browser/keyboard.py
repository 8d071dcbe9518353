"""Keyboard-only navigation for the journeys: Tab to an element, then act on it."""

from __future__ import annotations

from typing import Any

MAX_TABS = 80


def tab_to(page: Any, selector: str) -> None:
    """Press Tab until the focused element matches `selector` (fail after MAX_TABS)."""
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        if page.evaluate(
            "s => document.activeElement && document.activeElement.matches(s)", selector
        ):
            return
    raise AssertionError(f"{selector} is not reachable with the Tab key")


def focused_outline(page: Any) -> str:
    """The computed outline of the focused element: focus must be visible (WCAG 2.4.7)."""
    return str(page.evaluate("getComputedStyle(document.activeElement).outlineStyle"))


def sign_in_by_keyboard(page: Any, who: tuple[str, str], link: str | None = None) -> None:
    """Sign in with the keyboard: follow the sign-in link the selector `link` names (None: on
    the sign-in page already), then type the e-mail address and password and press Enter."""
    if link is not None:
        tab_to(page, link)
        page.keyboard.press("Enter")
        page.wait_for_url("**/sign-in?**")
    page.locator("#email").wait_for()
    tab_to(page, "#email")
    page.keyboard.type(who[0])
    page.keyboard.press("Tab")
    page.keyboard.type(who[1])
    page.keyboard.press("Enter")
