"""The emulator's rate limits turned on and off after it was made (a bench seeds first)."""

from __future__ import annotations

from bot.emulator import EmulatorState, RateLimits, Workspace

from .tinybot import APPROVALS, BOT_TOKEN


def _post(state: EmulatorState) -> int | None:
    return state.admit("chat.postMessage", channel=APPROVALS)


def test_rate_limits_turned_on_later_start_with_full_buckets() -> None:
    """Posts made before the limits are on do not count against them."""
    now = [1_700_000_000.0]
    state = EmulatorState(workspace=Workspace(), bot_token=BOT_TOKEN, clock=lambda: now[0])
    assert all(_post(state) is None for _ in range(50))
    state.set_rate_limits(True)
    assert [_post(state) for _ in range(4)] == [None, None, None, 1]
    assert state.rate_limited == {"chat.postMessage": 1}


def test_rate_limits_turned_off_and_given_numbers() -> None:
    """False lets every call through again; RateLimits sets the numbers."""
    now = [1_700_000_000.0]
    state = EmulatorState(workspace=Workspace(), bot_token=BOT_TOKEN, clock=lambda: now[0],
                          rate_limits=True)
    state.set_rate_limits(False)
    assert all(_post(state) is None for _ in range(20))
    state.set_rate_limits(RateLimits(burst=1))
    assert [_post(state), _post(state)] == [None, 1]
