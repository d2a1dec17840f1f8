"""Test-only failpoints: SIGKILL the real bot process at a named point (etcd's gofail idea).

`python -m tests.failpoints serve` runs `signoff serve` with `SIGNOFF_FAILPOINT=name:N`
armed: the process kills itself at the Nth call of the wrapped store or saver method.
The product code does not know this module exists; it patches classes from the outside.
"""

from __future__ import annotations

import functools
import importlib
import os
import signal
import sys
from typing import Any

__all__ = ["POINTS", "arm"]

# name -> (module, class, method, "before" | "after" the call)
POINTS: dict[str, tuple[str, str, str, str]] = {
    "before_start": ("bot.threads", "GraphThreads", "start", "before"),
    "after_start": ("bot.threads", "GraphThreads", "start", "after"),
    "after_decision_commit": ("bot.store.sqlite", "SqliteApprovalStore", "decide", "after"),
    "after_patch": ("bot.threads", "GraphThreads", "patch", "after"),
    "after_run_on": ("bot.threads", "GraphThreads", "run_on", "after"),
    "after_resume": ("bot.threads", "GraphThreads", "resume", "after"),
    "before_end_step": ("bot.store.sqlite", "SqliteApprovalStore", "end_step", "before"),
    "after_end_step": ("bot.store.sqlite", "SqliteApprovalStore", "end_step", "after"),
    "before_release_run": ("bot.store.sqlite", "SqliteApprovalStore", "release_run", "before"),
    "while_posting": ("bot.slack.notifier", "SlackNotifier", "post_request", "after"),
    "before_posting": ("bot.slack.notifier", "SlackNotifier", "post_request", "before"),
    # The ladder: a step's firing committed (audited, marked fired), its post not yet made.
    "after_fire_step": ("bot.store.sqlite", "SqliteApprovalStore", "fire_step", "after"),
}


def _die() -> None:
    sys.stderr.write("failpoint: SIGKILL\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def arm(spec: str) -> None:
    """Arm `name:N`: kill the process at the Nth call (before or after it, per POINTS)."""
    name, _, nth = spec.partition(":")
    module, cls_name, method, when = POINTS[name]
    classes = [getattr(importlib.import_module(module), cls_name)]
    if module == "bot.store.sqlite":  # a store point fires on either backend
        classes.append(importlib.import_module("bot.store.postgres").PostgresApprovalStore)
    target = int(nth or 1)
    calls = 0

    for cls in classes:
        original = getattr(cls, method)

        @functools.wraps(original)
        async def wrapped(*args: Any, __original: Any = original, **kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            if calls == target and when == "before":
                _die()
            result = await __original(*args, **kwargs)
            if calls == target and when == "after":
                _die()
            return result

        setattr(cls, method, wrapped)
