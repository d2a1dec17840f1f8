"""The Slack app manifest installs an app the bot can serve."""

from __future__ import annotations

import json
from pathlib import Path

MANIFEST = json.loads((Path(__file__).parents[1] / "manifest.json").read_text())


def test_command_and_interactivity_reach_the_events_path() -> None:
    """/signoff and button clicks are sent to POST /slack/events."""
    command = MANIFEST["features"]["slash_commands"][0]
    assert command["command"] == "/signoff"
    assert command["url"].endswith("/slack/events")
    interactivity = MANIFEST["settings"]["interactivity"]
    assert interactivity["is_enabled"] and interactivity["request_url"].endswith("/slack/events")


def test_scopes_cover_every_web_api_method_the_bot_calls() -> None:
    """chat.*, usergroups.users.list, users.info and conversations.open need these scopes."""
    scopes = set(MANIFEST["oauth_config"]["scopes"]["bot"])
    assert {"chat:write", "commands", "usergroups:read", "users:read", "im:write"} <= scopes


def test_home_tab_is_enabled_and_its_opening_reaches_the_events_path() -> None:
    """The Home tab is on, and app_home_opened is a bot event sent to POST /slack/events."""
    assert MANIFEST["features"]["app_home"]["home_tab_enabled"] is True
    events = MANIFEST["settings"]["event_subscriptions"]
    assert "app_home_opened" in events["bot_events"]
    assert events["request_url"].endswith("/slack/events")
