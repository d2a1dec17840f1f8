"""Holding a run: a leased, heartbeat-renewed, fenced claim (Kleppmann's fencing token)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from datetime import timedelta
from types import TracebackType

from bot.clock import Clock
from bot.store import ApprovalStore, Claim, LostClaimError

__all__ = ["Holder", "is_dead_local_owner", "new_owner"]

log = logging.getLogger(__name__)


def new_owner() -> str:
    """This process's claim owner: `host:pid:random`, so a restart on the same host can
    see that the process behind an old claim is gone and take its runs over at once."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def is_dead_local_owner(owner: str, *, me: str) -> bool:
    """True when `owner` names a process on this host that no longer exists."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if owner == me or host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Holder:
    """Keeps a claim alive while its holder works: renews it every third of the lease.

    When a renewal finds the claim gone (another worker took the run after our lease ran
    out, say after a long pause of this process), `lost` turns true; `check()` then raises,
    and every fenced store write raises too, so the holder stops without posting or
    resuming anything.
    """

    def __init__(self, *, store: ApprovalStore, claim: Claim, clock: Clock,
                 lease: timedelta) -> None:
        self.claim = claim
        self.lost = False
        self.applied: set[str] = set()  # requests whose decision this holder handed on
        self._store = store
        self._clock = clock
        self._lease = lease
        self._task: asyncio.Task[None] | None = None

    def check(self) -> None:
        """Raise LostClaimError when the claim is known to be lost."""
        if self.lost:
            raise LostClaimError(self.claim)

    async def renew(self) -> bool:
        """Extend the lease once; False (and `lost`) when the claim is gone."""
        if self.lost:
            return False
        ok = await self._store.renew_claim(self.claim,
                                           lease_until=self._clock.now() + self._lease)
        if not ok:
            self.lost = True
            log.warning("lost the claim on a run; stopping its work",
                        extra={"run_id": self.claim.run_id, "epoch": self.claim.epoch})
        return ok

    def released(self) -> None:
        """The holder's own closing transaction gave the run up: stop renewing the claim
        (a renewal would find it gone and report it lost). The fence still guards writes."""
        if self._task is not None:
            self._task.cancel()

    async def _beat(self) -> None:
        interval = max(self._lease.total_seconds() / 3, 0.05)
        while not self.lost:
            await asyncio.sleep(interval)
            try:
                await self.renew()
            except Exception:
                # A failed renewal is retried next beat; the fence guards every write.
                log.exception("could not renew a claim", extra={"run_id": self.claim.run_id})

    async def __aenter__(self) -> Holder:
        self._task = asyncio.get_running_loop().create_task(
            self._beat(), name=f"heartbeat {self.claim.run_id}")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
