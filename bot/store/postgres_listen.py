"""A dedicated PostgreSQL connection that LISTENs on a channel and wakes its callbacks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

import psycopg
from psycopg import sql

__all__ = ["PgListener"]

log = logging.getLogger(__name__)


class PgListener:
    """LISTEN on `channel` over its own autocommit connection (not a pool's: it is held for
    good); call every callback on the event loop for each notification.

    A dropped connection is reopened with exponential backoff; after a reconnect the
    callbacks are called once, since notifications sent meanwhile were lost.
    """

    def __init__(
        self,
        conninfo: str,
        *,
        channel: str,
        kwargs: Mapping[str, Any] | None = None,
        min_backoff: float = 0.05,
        max_backoff: float = 5.0,
    ) -> None:
        self._conninfo = conninfo
        self._kwargs = {k: v for k, v in (kwargs or {}).items() if k != "row_factory"}
        self._channel = channel
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._callbacks: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._conn: psycopg.AsyncConnection[Any] | None = None

    def add(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    async def start(self) -> None:
        """Connect and LISTEN (raising if that fails), then keep listening in a task."""
        if self._task is not None:
            return
        self._conn = await self._connect()
        self._task = asyncio.create_task(self._run(), name=f"LISTEN {self._channel}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._close()

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        conn = await psycopg.AsyncConnection.connect(
            self._conninfo, **(self._kwargs | {"autocommit": True}))
        try:
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
        except BaseException:
            await conn.close()
            raise
        return conn

    def _wake(self) -> None:
        for callback in list(self._callbacks):
            try:
                callback()
            except Exception:  # one bad callback must not stop the others or the listener
                log.exception("wake callback failed", extra={"channel": self._channel})

    async def _run(self) -> None:
        delay = self._min_backoff
        while True:
            if self._conn is not None:
                try:
                    async for _ in self._conn.notifies():
                        self._wake()
                except psycopg.Error as exc:
                    log.warning("lost the LISTEN connection; reconnecting",
                                extra={"channel": self._channel, "error": type(exc).__name__})
                await self._close()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max_backoff)
            try:
                self._conn = await self._connect()
            except psycopg.Error as exc:
                log.warning("cannot reopen the LISTEN connection",
                            extra={"channel": self._channel, "error": type(exc).__name__,
                                   "retry_s": delay})
                continue
            delay = self._min_backoff
            self._wake()  # whatever was sent while we were away is lost: look again
