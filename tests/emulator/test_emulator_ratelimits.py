"""The emulator's rate limits: Slack's buckets, its 429 answer, and off unless asked for."""

from __future__ import annotations

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.emulator import EmulatorServer, EmulatorState, RateLimits, Workspace, rate_limits_from_env

from .tinybot import APPROVALS, BOT_TOKEN, SIGNING_SECRET

GENERAL = "C0GENERAL"


class ManualClock:
    """Time that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def manual_clock() -> ManualClock:
    return ManualClock()


def limited_state(clock: ManualClock, limits: RateLimits | bool = True) -> EmulatorState:
    return EmulatorState(workspace=Workspace(), bot_token=BOT_TOKEN, clock=clock,
                         rate_limits=limits)


def post(state: EmulatorState, channel: str = APPROVALS) -> int | None:
    return state.admit("chat.postMessage", channel=channel)


def test_off_by_default(manual_clock: ManualClock) -> None:
    """Without rate_limits every call goes through and nothing is counted."""
    state = EmulatorState(workspace=Workspace(), bot_token=BOT_TOKEN, clock=manual_clock)
    assert all(post(state) is None for _ in range(200))
    assert all(state.admit("chat.update", channel=APPROVALS) is None for _ in range(200))
    assert state.rate_limited == {}


def test_off_by_default_over_http(web_client: WebClient, emulator: EmulatorServer) -> None:
    """The shared test emulator answers a quick run of posts without a 429."""
    for i in range(10):
        web_client.chat_postMessage(channel=APPROVALS, text=str(i))
    assert {c.status for c in emulator.state.calls("chat.postMessage")} == {200}


def test_post_burst_then_retry_after(manual_clock: ManualClock) -> None:
    """A channel takes a burst of 3 posts, then 1 a second; a refusal names whole seconds."""
    state = limited_state(manual_clock)
    assert [post(state) for _ in range(4)] == [None, None, None, 1]
    manual_clock.advance(0.5)
    assert post(state) == 1, "half a token is not a post"
    manual_clock.advance(0.5)
    assert [post(state), post(state)] == [None, 1]
    assert state.rate_limited == {"chat.postMessage": 3}


def test_post_bucket_refills_to_the_burst_only(manual_clock: ManualClock) -> None:
    """A long quiet spell buys a burst again, never more."""
    state = limited_state(manual_clock)
    manual_clock.advance(3600)
    assert [post(state) for _ in range(4)] == [None, None, None, 1]


def test_post_limits_are_per_channel(manual_clock: ManualClock) -> None:
    """A full channel does not hold up another; a channel's name and id share one bucket."""
    state = limited_state(manual_clock)
    assert [post(state, "#approvals") for _ in range(3)] == [None, None, None]
    assert post(state, APPROVALS) == 1
    assert [post(state, GENERAL) for _ in range(3)] == [None, None, None]
    assert post(state, "U0BOB") is None, "a DM is its own channel"


def test_post_rate_is_configurable(manual_clock: ManualClock) -> None:
    """RateLimits(post_per_second=20) refills a token every 50 ms."""
    state = limited_state(manual_clock, RateLimits(post_per_second=20, burst=2))
    assert [post(state) for _ in range(3)] == [None, None, 1]
    manual_clock.advance(0.05)
    assert [post(state), post(state)] == [None, 1]


def test_chat_update_is_tier_3_workspace_wide(manual_clock: ManualClock) -> None:
    """chat.update takes 50 a minute across every channel, then refuses for 60/50 s."""
    state = limited_state(manual_clock)
    channels = [APPROVALS, GENERAL] * 25
    assert all(state.admit("chat.update", channel=c) is None for c in channels)
    assert state.admit("chat.update", channel=GENERAL) == 2
    manual_clock.advance(1.2)
    assert state.admit("chat.update", channel=APPROVALS) is None
    assert state.admit("chat.update", channel=APPROVALS) == 2
    assert state.rate_limited == {"chat.update": 2}


def test_tiers_are_separate_buckets(manual_clock: ManualClock) -> None:
    """Each method has its own bucket: Tier 4 ephemerals and views take 100 a minute."""
    state = limited_state(manual_clock)
    for method in ("chat.postEphemeral", "views.open"):
        assert all(state.admit(method, channel=APPROVALS) is None for _ in range(100))
        assert state.admit(method, channel=APPROVALS) == 1
    assert state.admit("chat.update", channel=APPROVALS) is None
    assert post(state) is None


def test_special_methods_are_not_limited(manual_clock: ManualClock) -> None:
    """auth.test and chat.getPermalink have no bucket."""
    state = limited_state(manual_clock)
    assert all(state.admit("auth.test", channel=None) is None for _ in range(500))
    assert all(state.admit("chat.getPermalink", channel=APPROVALS) is None for _ in range(500))


def test_reset_refills_and_forgets(manual_clock: ManualClock) -> None:
    """reset() empties the counts and fills every bucket."""
    state = limited_state(manual_clock)
    for _ in range(4):
        post(state)
    state.reset()
    assert state.rate_limited == {}
    assert post(state) is None


def test_a_limited_call_answers_429_with_retry_after(manual_clock: ManualClock) -> None:
    """Over HTTP: status 429, a whole-second Retry-After, Slack's body, recorded as a call."""
    with EmulatorServer(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET,
                        clock=manual_clock, rate_limits=True) as emulator:
        client = WebClient(token=BOT_TOKEN, base_url=emulator.api_url, retry_handlers=[])
        for i in range(3):
            client.chat_postMessage(channel=APPROVALS, text=str(i))
        with pytest.raises(SlackApiError) as info:
            client.chat_postMessage(channel=APPROVALS, text="one too many")
        response = info.value.response
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "1"
        assert response.data == {"ok": False, "error": "ratelimited"}
        client.chat_postMessage(channel=GENERAL, text="another channel")
        statuses = [c.status for c in emulator.state.calls("chat.postMessage")]
        assert statuses == [200, 200, 200, 429, 200]
        assert emulator.state.rate_limited == {"chat.postMessage": 1}
        assert [m["text"] for m in emulator.state.messages(APPROVALS)] == ["0", "1", "2"]


@pytest.mark.parametrize(("value", "on"), [(None, False), ("0", False), ("1", True),
                                           (" 1 ", True)])
def test_env_var_switches_them_on(value: str | None, on: bool) -> None:
    """SIGNOFF_EMULATOR_RATE_LIMITS=1 turns them on; unset or 0 leaves them off."""
    environ = {} if value is None else {"SIGNOFF_EMULATOR_RATE_LIMITS": value}
    assert rate_limits_from_env(environ) is on


def test_env_var_refuses_other_values() -> None:
    """Any other value fails, naming the variable."""
    with pytest.raises(ValueError, match="SIGNOFF_EMULATOR_RATE_LIMITS"):
        rate_limits_from_env({"SIGNOFF_EMULATOR_RATE_LIMITS": "yes"})
