"""Thread-safe record of everything the emulated Slack holds and everything asked of it."""

from __future__ import annotations

import copy
import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.emulator.ratelimits import RateLimiter, RateLimits
from bot.emulator.socket_mode import SocketModeHub
from bot.emulator.workspace import Workspace

__all__ = ["ApiError", "Call", "Delivery", "EmulatorState", "Fault"]

TRIGGER_TTL = 3.0
RESPONSE_URL_TTL = 30 * 60.0
RESPONSE_URL_USES = 5

Json = dict[str, Any]


class ApiError(Exception):
    """A Slack API error code (`{"ok": false, "error": code}`), plus extra response fields."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


@dataclass(frozen=True, kw_only=True)
class Call:
    """One Web API (or response_url) request and the answer given."""

    method: str
    params: Json
    time: float
    status: int
    response: Json


@dataclass(frozen=True, kw_only=True)
class Delivery:
    """One signed request sent to the app under test, and its HTTP answer."""

    kind: str
    payload: Json
    status: int | None
    body: str
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class Fault:
    status: int = 429
    retry_after: int | None = 1
    error: str = "ratelimited"


@dataclass(kw_only=True)
class _ViewMeta:
    user: str
    open: bool = True
    errors: dict[str, str] = field(default_factory=dict)


class EmulatorState:
    """Messages, views, triggers and the call log; every public method takes the lock."""

    def __init__(self, *, workspace: Workspace, bot_token: str,
                 clock: Callable[[], float] = time.time,
                 rate_limits: RateLimits | bool = False,
                 socket: SocketModeHub | None = None) -> None:
        self.workspace = workspace
        self.bot_token = bot_token
        self.socket = socket or SocketModeHub(app_id=workspace.bot.app_id, clock=clock)
        self.clock = clock
        self._lock = threading.RLock()
        self._last_ts = 0
        self._counter = 0
        self._messages: dict[str, list[Json]] = {}
        self._edits: dict[tuple[str, str], list[Json]] = {}
        self._ephemerals: list[Json] = []
        self._views: dict[str, Json] = {}
        self._homes: dict[str, Json] = {}  # the latest published Home tab of each user
        self._view_meta: dict[str, _ViewMeta] = {}
        self._triggers: dict[str, tuple[str, float, bool]] = {}
        self._response_urls: dict[str, Json] = {}
        self._faults: dict[str, deque[Fault]] = {}
        self._calls: list[Call] = []
        self._deliveries: list[Delivery] = []
        self._outside: set[str] = set()  # channels the bot is not (or no longer) a member of
        self._limiter: RateLimiter | None = None
        self.set_rate_limits(rate_limits)
        self._rate_limited: Counter[str] = Counter()

    def reset(self) -> None:
        """Forget every message, view, trigger, fault and record; keep the workspace."""
        with self._lock:
            self._messages.clear()
            self._edits.clear()
            self._ephemerals.clear()
            self._views.clear()
            self._homes.clear()
            self._view_meta.clear()
            self._triggers.clear()
            self._response_urls.clear()
            self._faults.clear()
            self._calls.clear()
            self._deliveries.clear()
            self._outside.clear()
            self._rate_limited.clear()
            self.socket.reset()
            if self._limiter is not None:
                self._limiter.reset()

    # channel membership -------------------------------------------------
    def remove_bot(self, channel: str) -> None:
        """Take the bot out of `channel` (as /kick would): it cannot post there until invited."""
        with self._lock:
            self._outside.add(channel)

    def invite_bot(self, channel: str) -> None:
        """Put the bot back into `channel` (as /invite would)."""
        with self._lock:
            self._outside.discard(channel)

    def bot_is_member(self, channel: str) -> bool:
        """Whether the bot is in `channel`; it is in every channel unless removed."""
        with self._lock:
            return channel not in self._outside

    # ids -----------------------------------------------------------------
    def next_ts(self) -> str:
        """A message ts, unique and increasing even when the clock stands still."""
        with self._lock:
            micros = max(int(self.clock() * 1_000_000), self._last_ts + 100)
            self._last_ts = micros
            return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _next_id(self, prefix: str) -> str:
        with self._lock:
            self._counter += 1
            return f"{prefix}{self._counter:08d}"

    # messages ------------------------------------------------------------
    def post_message(self, *, channel: str, text: str, blocks: list[Json] | None,
                     thread_ts: str | None = None) -> Json:
        bot = self.workspace.bot
        with self._lock:
            msg: Json = {"type": "message", "user": bot.user_id, "bot_id": bot.bot_id,
                         "app_id": bot.app_id, "text": text, "ts": self.next_ts(),
                         "team": self.workspace.team_id}
            if blocks is not None:
                msg["blocks"] = blocks
            if thread_ts:
                parent = self._find(channel, thread_ts)
                if parent is None:
                    raise ApiError("thread_not_found")
                # Replies to a reply go to the thread's root, as in Slack.
                root: str = parent["thread_ts"] if "thread_ts" in parent else parent["ts"]
                msg["thread_ts"] = root
                root_msg = self._find(channel, root) or parent
                root_msg["thread_ts"] = root
                root_msg["reply_count"] = root_msg.get("reply_count", 0) + 1
                root_msg["latest_reply"] = msg["ts"]
            self._messages.setdefault(channel, []).append(msg)
            return copy.deepcopy(msg)

    def update_message(self, *, channel: str, ts: str, text: str | None,
                       blocks: list[Json] | None) -> Json:
        with self._lock:
            msg = self._find(channel, ts)
            if msg is None:
                if any(e["channel"] == channel and e["ts"] == ts for e in self._ephemerals):
                    raise ApiError("cant_update_message")
                raise ApiError("message_not_found")
            self._edits.setdefault((channel, ts), []).append(
                {"text": msg.get("text"), "blocks": copy.deepcopy(msg.get("blocks"))})
            if text is not None:
                msg["text"] = text
            if blocks is not None:
                msg["blocks"] = blocks
            msg["edited"] = {"user": self.workspace.bot.user_id, "ts": self.next_ts()}
            return copy.deepcopy(msg)

    def delete_message(self, *, channel: str, ts: str) -> None:
        with self._lock:
            msg = self._find(channel, ts)
            if msg is None:
                raise ApiError("message_not_found")
            self._messages[channel].remove(msg)

    def post_ephemeral(self, *, channel: str, user: str, text: str,
                       blocks: list[Json] | None, thread_ts: str | None = None) -> Json:
        with self._lock:
            eph: Json = {"type": "message", "subtype": "ephemeral", "channel": channel,
                         "user": user, "text": text, "ts": self.next_ts()}
            if blocks is not None:
                eph["blocks"] = blocks
            if thread_ts:
                eph["thread_ts"] = thread_ts
            self._ephemerals.append(eph)
            return copy.deepcopy(eph)

    def _find(self, channel: str, ts: str) -> Json | None:
        return next((m for m in self._messages.get(channel, []) if m["ts"] == ts), None)

    # views ---------------------------------------------------------------
    def open_view(self, *, view: Json, user: str) -> Json:
        with self._lock:
            view_id = self._next_id("V")
            stored = self._build_view(view_id, view, previous=None)
            self._views[view_id] = stored
            self._view_meta[view_id] = _ViewMeta(user=user)
            return copy.deepcopy(stored)

    def update_view(self, *, view_id: str | None, external_id: str | None, view: Json,
                    hash: str | None = None) -> Json:
        with self._lock:
            if view_id is None:
                view_id = next((k for k, v in self._views.items()
                                if external_id and v.get("external_id") == external_id), None)
            current = self._views.get(view_id or "")
            if view_id is None or current is None:
                raise ApiError("not_found")
            if hash is not None and hash != current["hash"]:
                raise ApiError("hash_conflict")
            stored = self._build_view(view_id, view, previous=current)
            self._views[view_id] = stored
            self._view_meta[view_id].errors = {}
            return copy.deepcopy(stored)

    def _build_view(self, view_id: str, view: Json, *, previous: Json | None) -> Json:
        bot = self.workspace.bot
        return {
            "id": view_id, "team_id": self.workspace.team_id, "type": view.get("type"),
            "blocks": copy.deepcopy(view.get("blocks", [])),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}}, "hash": f"{self.clock():.6f}.{secrets.token_hex(4)}",
            "title": view.get("title"), "clear_on_close": bool(view.get("clear_on_close")),
            "notify_on_close": bool(view.get("notify_on_close")),
            "close": view.get("close"), "submit": view.get("submit"),
            "previous_view_id": None, "root_view_id": view_id, "app_id": bot.app_id,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": self.workspace.team_id, "bot_id": bot.bot_id,
        }

    def publish_home(self, *, user: str, view: Json, hash: str | None = None) -> Json:
        """Keep `view` as `user`'s Home tab (views.publish); its id stays, its hash changes.
        A `hash` other than the current one is refused, as Slack refuses a stale publish."""
        with self._lock:
            current = self._homes.get(user)
            if hash is not None and current is not None and hash != current["hash"]:
                raise ApiError("hash_conflict")
            view_id = current["id"] if current else self._next_id("V")
            stored = self._build_view(view_id, view, previous=current)
            self._homes[user] = stored
            return copy.deepcopy(stored)

    def home(self, user: str) -> Json | None:
        """`user`'s Home tab as last published, or None."""
        with self._lock:
            found = self._homes.get(user)
            return copy.deepcopy(found) if found else None

    def view(self, view_id: str) -> Json | None:
        with self._lock:
            found = self._views.get(view_id)
            return copy.deepcopy(found) if found else None

    def view_user(self, view_id: str) -> str | None:
        with self._lock:
            meta = self._view_meta.get(view_id)
            return meta.user if meta else None

    def close_view(self, view_id: str) -> None:
        with self._lock:
            if view_id in self._view_meta:
                self._view_meta[view_id].open = False

    def set_view_errors(self, view_id: str, errors: dict[str, str]) -> None:
        with self._lock:
            self._view_meta[view_id].errors = dict(errors)

    # triggers and response_urls -----------------------------------------
    def issue_trigger(self, *, user: str) -> str:
        with self._lock:
            self._counter += 1
            trigger_id = f"{int(self.clock())}.{self._counter}.{secrets.token_hex(8)}"
            self._triggers[trigger_id] = (user, self.clock(), False)
            return trigger_id

    def consume_trigger(self, trigger_id: str) -> str:
        """Return the user a trigger was issued to; each trigger works once, for 3 s."""
        with self._lock:
            found = self._triggers.get(trigger_id)
            if found is None:
                raise ApiError("invalid_trigger_id")
            user, issued, used = found
            if used:
                raise ApiError("exchanged_trigger_id")
            if self.clock() - issued > TRIGGER_TTL:
                raise ApiError("expired_trigger_id")
            self._triggers[trigger_id] = (user, issued, True)
            return user

    def issue_response_url(self, *, user: str, channel: str, message_ts: str | None) -> str:
        with self._lock:
            token = secrets.token_urlsafe(12)
            self._response_urls[token] = {"user": user, "channel": channel,
                                          "message_ts": message_ts, "issued": self.clock(),
                                          "uses": 0}
            return token

    def use_response_url(self, token: str) -> Json:
        with self._lock:
            ctx = self._response_urls.get(token)
            if ctx is None or self.clock() - ctx["issued"] > RESPONSE_URL_TTL:
                raise ApiError("expired_url")
            if ctx["uses"] >= RESPONSE_URL_USES:
                raise ApiError("used_url")
            ctx["uses"] += 1
            return dict(ctx)

    # faults and records --------------------------------------------------
    def fail_next(self, method: str, *, times: int = 1, status: int = 429,
                  retry_after: int | None = 1, error: str | None = None) -> None:
        """Make the next `times` calls of `method` answer `status` (429 → Retry-After)."""
        default = "ratelimited" if status == 429 else "internal_error"
        fault = Fault(status=status, retry_after=retry_after, error=error or default)
        with self._lock:
            self._faults.setdefault(method, deque()).extend([fault] * times)

    def take_fault(self, method: str) -> Fault | None:
        with self._lock:
            queue = self._faults.get(method)
            return queue.popleft() if queue else None

    def admit(self, method: str, *, channel: str | None) -> int | None:
        """None if Slack's rate limits let this call through, else its Retry-After in seconds."""
        if self._limiter is None:
            return None
        with self._lock:
            resolved = self.workspace.resolve_channel(channel) if channel else None
            retry_after = self._limiter.admit(method, channel=resolved or channel)
            if retry_after is not None:
                self._rate_limited[method] += 1
            return retry_after

    def set_rate_limits(self, rate_limits: RateLimits | bool) -> None:
        """Answer 429 as Slack would from now on (True, or these numbers), or never (False).
        The buckets start full, as for a workspace that has been quiet."""
        limits = rate_limits if isinstance(rate_limits, RateLimits) else (
            RateLimits() if rate_limits else None)
        with self._lock:
            self._limiter = RateLimiter(limits, clock=self.clock) if limits else None

    @property
    def rate_limited(self) -> Counter[str]:
        """How many calls of each method were refused with 429 by the rate limits."""
        with self._lock:
            return Counter(self._rate_limited)

    def record_call(self, *, method: str, params: Json, status: int, response: Json) -> None:
        with self._lock:
            self._calls.append(Call(method=method, params=params, time=self.clock(),
                                    status=status, response=response))

    def record_delivery(self, delivery: Delivery) -> None:
        with self._lock:
            self._deliveries.append(delivery)

    # queries -------------------------------------------------------------
    def messages(self, channel: str, *, include_replies: bool = False) -> list[Json]:
        """Messages in a channel, oldest first; thread replies only if asked."""
        with self._lock:
            msgs = self._messages.get(channel, [])
            return [copy.deepcopy(m) for m in msgs
                    if include_replies or m.get("thread_ts", m["ts"]) == m["ts"]]

    def find_message(self, channel: str, where: Callable[[Json], bool]) -> Json | None:
        """The first top-level message in `channel` for which `where` is true (a copy), or
        None. `where` sees each message as stored, so only the match is copied: a waiter
        polling for one message does not copy the whole channel each time."""
        with self._lock:
            for m in self._messages.get(channel, []):
                if m.get("thread_ts", m["ts"]) == m["ts"] and where(m):
                    return copy.deepcopy(m)
            return None

    def message(self, channel: str, ts: str) -> Json | None:
        with self._lock:
            found = self._find(channel, ts)
            return copy.deepcopy(found) if found else None

    def thread(self, channel: str, thread_ts: str) -> list[Json]:
        """The replies in a thread (not its root), oldest first."""
        with self._lock:
            return [copy.deepcopy(m) for m in self._messages.get(channel, [])
                    if m.get("thread_ts") == thread_ts and m["ts"] != thread_ts]

    def last_message(self, channel: str) -> Json | None:
        msgs = self.messages(channel)
        return msgs[-1] if msgs else None

    def edits(self, channel: str, ts: str) -> list[Json]:
        """Earlier versions of a message ({text, blocks}), oldest first."""
        with self._lock:
            return copy.deepcopy(self._edits.get((channel, ts), []))

    def ephemerals(self, user: str, *, channel: str | None = None) -> list[Json]:
        with self._lock:
            return [copy.deepcopy(e) for e in self._ephemerals
                    if e["user"] == user and channel in (None, e["channel"])]

    def ephemeral(self, *, user: str, ts: str) -> Json | None:
        return next((e for e in self.ephemerals(user) if e["ts"] == ts), None)

    def calls(self, method: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self._calls if method in (None, c.method)]

    def views_opened(self) -> list[Json]:
        """Every view opened, oldest first, in its current version."""
        with self._lock:
            return [copy.deepcopy(v) for v in self._views.values()]

    def open_views(self, user: str) -> list[Json]:
        """Views still on `user`'s screen, each with the errors the app last returned."""
        with self._lock:
            return [{**copy.deepcopy(self._views[vid]), "errors": dict(meta.errors)}
                    for vid, meta in self._view_meta.items() if meta.open and meta.user == user]

    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries)

    def describe_recent(self, *, limit: int = 15) -> str:
        """Recent calls and deliveries as text, for assertion messages."""
        with self._lock:
            lines = [f"  {c.method} {c.params} -> {c.status} {c.response}"
                     for c in self._calls[-limit:]]
            lines += [f"  -> app {d.kind}: {d.status} {d.body[:200]!r} {d.error or ''}"
                      for d in self._deliveries[-limit:]]
        return "recent activity:\n" + ("\n".join(lines) if lines else "  (none)")
