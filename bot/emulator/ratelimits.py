"""Slack's Web API rate limits as token buckets: per channel for posts, per workspace by tier."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["ENV_VAR", "METHOD_TIERS", "TIER_PER_MINUTE", "RateLimiter", "RateLimits",
           "rate_limits_from_env"]

ENV_VAR = "SIGNOFF_EMULATOR_RATE_LIMITS"

# Slack's published tiers, in calls per minute per method per workspace ("Tier 3: 50+ per
# minute"), each allowing short bursts: ../shared/slack/LIMITS.md, api.slack.com/apis/rate-limits.
TIER_PER_MINUTE: Mapping[int, float] = MappingProxyType({1: 1, 2: 20, 3: 50, 4: 100})

# The tier of each tiered method the emulator serves, from each method's page on
# api.slack.com. chat.postMessage is "special" (per channel, below); auth.test and
# chat.getPermalink are special too, with limits far above anything the gateway sends: unlimited.
METHOD_TIERS: Mapping[str, int] = MappingProxyType({
    "chat.update": 3,
    "chat.delete": 3,
    "chat.postEphemeral": 4,
    "views.open": 4,
    "views.update": 4,
    "views.push": 4,
    "views.publish": 4,
    "users.info": 4,
    "conversations.info": 3,
    "conversations.open": 3,
    "usergroups.users.list": 2,
})

PER_CHANNEL = "chat.postMessage"
_EPSILON = 1e-6  # a float clock near 1.7e9 s loses ~1e-7 s; a token that late is on time


def rate_limits_from_env(environ: Mapping[str, str]) -> bool:
    """Whether SIGNOFF_EMULATOR_RATE_LIMITS asks for Slack's limits: 1 yes, 0 or unset no."""
    value = environ.get(ENV_VAR, "").strip()
    if value not in ("", "0", "1"):
        raise ValueError(f"{ENV_VAR} must be 0 or 1, not {value!r}")
    return value == "1"


@dataclass(frozen=True, kw_only=True)
class RateLimits:
    """The numbers: chat.postMessage per channel, and a bucket per tiered method.

    `burst` is how many posts a quiet channel takes at once (Slack allows "short bursts" and
    publishes no figure). A tiered method's bucket holds one minute's calls, since Slack
    counts them per minute.
    """

    post_per_second: float = 1.0
    burst: int = 3
    tier_per_minute: Mapping[int, float] = field(default_factory=lambda: dict(TIER_PER_MINUTE))
    method_tiers: Mapping[str, int] = field(default_factory=lambda: dict(METHOD_TIERS))


@dataclass(kw_only=True)
class _Bucket:
    capacity: float
    per_second: float
    tokens: float
    updated: float

    def take(self, now: float) -> float | None:
        """Take a token and return None, or return the seconds until one is there."""
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.per_second)
        self.updated = now
        if self.tokens >= 1.0 - _EPSILON:
            self.tokens = max(0.0, self.tokens - 1.0)
            return None
        return (1.0 - self.tokens) / self.per_second


class RateLimiter:
    """Admits or refuses each call; not thread-safe (EmulatorState holds its lock around it)."""

    def __init__(self, limits: RateLimits, *, clock: Callable[[], float]) -> None:
        self.limits = limits
        self._clock = clock
        self._buckets: dict[tuple[str, str | None], _Bucket] = {}

    def reset(self) -> None:
        self._buckets.clear()

    def admit(self, method: str, *, channel: str | None) -> int | None:
        """None if the call may go ahead, else the Retry-After to answer (whole seconds, ≥ 1)."""
        key = self._key(method, channel)
        if key is None:
            return None
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            capacity, per_second = self._rate(method)
            bucket = self._buckets[key] = _Bucket(capacity=capacity, per_second=per_second,
                                                  tokens=capacity, updated=now)
        wait = bucket.take(now)
        if wait is None:
            return None
        # Slack sends whole seconds; rounding up means a client that waits that long gets in.
        return max(1, math.ceil(wait - _EPSILON))

    def _key(self, method: str, channel: str | None) -> tuple[str, str | None] | None:
        if method == PER_CHANNEL:
            return (method, channel)
        if method in self.limits.method_tiers:
            return (method, None)
        return None

    def _rate(self, method: str) -> tuple[float, float]:
        if method == PER_CHANNEL:
            return float(self.limits.burst), self.limits.post_per_second
        per_minute = self.limits.tier_per_minute[self.limits.method_tiers[method]]
        return float(per_minute), per_minute / 60.0
