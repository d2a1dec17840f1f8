"""Replay memory: a signed request seen once is refused while its signature is still valid."""

from __future__ import annotations

import heapq

from bot.clock import Clock

__all__ = ["SIGNATURE_WINDOW", "ReplayGuard"]

SIGNATURE_WINDOW = 300  # seconds a Slack timestamp may be from now and still be accepted


class ReplayGuard:
    """Remembers request signatures until their timestamps leave the signature window.

    A signature is accepted while `|now - timestamp| <= window`, so it is remembered until
    `timestamp + window`; after that the signature check refuses it anyway. Expired entries
    are dropped on every call, so memory holds at most one window's worth of signed requests
    (and only signed requests reach the guard: a forger cannot fill it).
    """

    def __init__(self, *, clock: Clock, window: float = SIGNATURE_WINDOW) -> None:
        self._clock = clock
        self._window = window
        self._expiry: dict[str, float] = {}
        self._queue: list[tuple[float, str]] = []  # (expiry, signature), earliest first

    def __len__(self) -> int:
        return len(self._expiry)

    def first_time(self, *, signature: str, timestamp: int) -> bool:
        """True the first time `signature` is seen within its window; it is then remembered."""
        now = self._clock.now().timestamp()
        self._prune(now)
        if signature in self._expiry:
            return False
        expiry = timestamp + self._window
        if expiry < now:
            return True  # stale: the signature check refuses it, nothing to remember
        self._expiry[signature] = expiry
        heapq.heappush(self._queue, (expiry, signature))
        return True

    def _prune(self, now: float) -> None:
        while self._queue and self._queue[0][0] < now:
            _, signature = heapq.heappop(self._queue)
            del self._expiry[signature]
