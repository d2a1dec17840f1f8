"""Plays Slack's side of interactivity: signed slash commands, clicks and view submissions."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import urlencode

import httpx

from bot.emulator.socket_mode import AckTimeoutError
from bot.emulator.state import Delivery, EmulatorState
from bot.emulator.workspace import dm_channel_id

__all__ = ["TRANSPORTS", "ButtonNotFoundError", "EmulatorError", "SlackEventsClient",
           "Transport", "sign_request"]

logger = logging.getLogger(__name__)

Json = dict[str, Any]
FORM = "application/x-www-form-urlencoded"
Transport = Literal["http", "socket"]
TRANSPORTS: tuple[Transport, ...] = ("http", "socket")
# What Slack sends each payload as over Socket Mode: (envelope type, accepts_response_payload)
_ENVELOPES = {"slash_command": ("slash_commands", True),
              "block_actions": ("interactive", False),
              "view_submission": ("interactive", True),
              "event_callback": ("events_api", False)}
STALE_SECONDS = 600  # Bolt rejects timestamps more than 300 s away.


class EmulatorError(Exception):
    """The emulator was asked for something Slack itself would never send."""


class ButtonNotFoundError(EmulatorError, LookupError):
    """The message has no such button (it was removed, or never there)."""


def sign_request(*, signing_secret: str, timestamp: str, body: str) -> str:
    """Slack's v0 signature of a request body."""
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


class SlackEventsClient:
    """Sends what Slack sends the app, built from the emulator's state: signed requests to
    its events URL (`transport="http"`), or envelopes over its Socket Mode connections
    (`"socket"`). Either way the answer is an `httpx.Response` holding the ack's body."""

    def __init__(self, *, events_url: str | None, signing_secret: str, state: EmulatorState,
                 base_url: str, timeout: float = 3.0,
                 clock: Callable[[], float] = time.time, transport: Transport = "http") -> None:
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {TRANSPORTS}, not {transport!r}")
        self.events_url = events_url
        self.transport: Transport = transport
        self.signing_secret = signing_secret
        self.state = state
        self.base_url = base_url.rstrip("/")
        self.clock = clock
        # Slack gives up on an ack after 3 s and shows the user "operation timed out".
        self._http = httpx.Client(timeout=timeout, trust_env=False)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SlackEventsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        """Whether an app can be reached: an events URL, or a Socket Mode connection opened
        (while it reconnects, envelopes wait for it)."""
        if self.transport == "socket":
            return self.state.socket.connections_opened > 0
        return self.events_url is not None

    # the interactions -----------------------------------------------------
    def slash_command(self, *, user: str, text: str, channel: str, command: str = "/signoff",
                      forged: bool = False, stale: bool = False) -> httpx.Response:
        """Send a slash command; an ack body shows up as an ephemeral (or in-channel) reply.

        `team_id` is the workspace the command was typed in, for an external user too: the
        form names no user's team, so an app that cares asks `users.info`.
        """
        ws = self.state.workspace
        channel_id = self._channel(channel)
        fields = {
            "token": "emulator-verification-token", "team_id": ws.team_id,
            "team_domain": ws.team_domain, "channel_id": channel_id,
            "channel_name": ws.channel_name(channel_id), "user_id": user,
            "user_name": self._user(user)["name"], "command": command, "text": text,
            "api_app_id": ws.bot.app_id, "is_enterprise_install": "false",
            "response_url": self._response_url(user=user, channel=channel_id, message_ts=None),
            "trigger_id": self.state.issue_trigger(user=user),
        }
        response = self._send("slash_command", fields, urlencode(fields), forged, stale)
        if response.status_code == 200 and response.content:
            self._show_ack_body(response, user=user, channel=channel_id)
        return response

    def click(self, *, user: str, channel: str, message_ts: str, action_id: str,
              value: str | None = None, forged: bool = False, stale: bool = False,
              as_shown: Json | None = None) -> httpx.Response:
        """Click a button of a message as it is now; `ButtonNotFoundError` if it has none.

        `as_shown` clicks the message as a client last drew it (Slack does not disable a
        button after a click, so a double click sends the old buttons twice).
        """
        channel_id = self._channel(channel)
        message = as_shown or self.state.message(channel_id, message_ts)
        ephemeral = message is None
        if message is None:
            message = self.state.ephemeral(user=user, ts=message_ts)
        if message is None:
            raise EmulatorError(f"no message {message_ts} in {channel_id} visible to {user}")
        block_id, button = _find_button(message, action_id=action_id, value=value)
        payload: Json = {
            "type": "block_actions", "user": self._user_ref(user),
            "api_app_id": self.state.workspace.bot.app_id,
            "token": "emulator-verification-token",
            "container": {"type": "message", "message_ts": message_ts,
                          "channel_id": channel_id, "is_ephemeral": ephemeral},
            "trigger_id": self.state.issue_trigger(user=user),
            "team": self._team(), "enterprise": None, "is_enterprise_install": False,
            "channel": {"id": channel_id,
                        "name": self.state.workspace.channel_name(channel_id)},
            "state": {"values": {}},
            "response_url": self._response_url(user=user, channel=channel_id,
                                               message_ts=message_ts),
            "actions": [{"action_id": action_id, "block_id": block_id,
                         "text": button.get("text"), "value": button.get("value"),
                         "type": "button", "action_ts": f"{self.clock():.6f}"}],
        }
        if button.get("style"):
            payload["actions"][0]["style"] = button["style"]
        if not ephemeral:
            # Slack omits the message object for clicks in ephemeral messages.
            payload["message"] = {k: v for k, v in message.items() if k != "channel"}
        return self._send_payload("block_actions", payload, forged, stale)

    def open_home(self, *, user: str) -> httpx.Response:
        """`user` opens the bot's Home tab: Slack sends `app_home_opened` (with the view as
        last published, if any)."""
        event: Json = {"type": "app_home_opened", "user": user, "channel": dm_channel_id(user),
                       "tab": "home", "event_ts": f"{self.clock():.6f}"}
        home = self.state.home(user)
        if home is not None:
            event["view"] = home
        return self.send_event(event)

    def click_home(self, *, user: str, action_id: str, value: str | None = None,
                   forged: bool = False, stale: bool = False,
                   as_shown: Json | None = None) -> httpx.Response:
        """Click a button of `user`'s Home tab as last published: a `block_actions` whose
        container is the view, with the view and no channel, message or response_url.

        `as_shown` clicks that view instead (an older one, as a client last drew it, or a
        crafted payload carrying somebody else's).
        """
        view = as_shown or self.state.home(user)
        if view is None:
            raise EmulatorError(f"{user} has no Home tab published")
        block_id, button = _find_button(view, action_id=action_id, value=value)
        payload: Json = {
            "type": "block_actions", "user": self._user_ref(user),
            "api_app_id": self.state.workspace.bot.app_id,
            "token": "emulator-verification-token",
            "container": {"type": "view", "view_id": view["id"]},
            "trigger_id": self.state.issue_trigger(user=user),
            "team": self._team(), "enterprise": None, "is_enterprise_install": False,
            "view": view, "state": {"values": {}},
            "actions": [{"action_id": action_id, "block_id": block_id,
                         "text": button.get("text"), "value": button.get("value"),
                         "type": "button", "action_ts": f"{self.clock():.6f}"}],
        }
        if button.get("style"):
            payload["actions"][0]["style"] = button["style"]
        return self._send_payload("block_actions", payload, forged, stale)

    def submit_view(self, *, user: str, view_id: str, values: dict[str, dict[str, Any]],
                    forged: bool = False, stale: bool = False,
                    any_owner: bool = False) -> httpx.Response:
        """Submit an open modal; the app's `response_action` is applied to the view.

        `any_owner` sends it as `user` even when the view was opened for someone else, as a
        crafted but correctly signed payload could; Slack's own client never does.
        """
        view = self.state.view(view_id)
        if view is None or (self.state.view_user(view_id) != user and not any_owner):
            raise EmulatorError(f"view {view_id} is not open for {user}")
        view["state"] = {"values": _state_values(view, values)}
        payload: Json = {
            "type": "view_submission", "team": self._team(), "user": self._user_ref(user),
            "api_app_id": self.state.workspace.bot.app_id,
            "token": "emulator-verification-token",
            "trigger_id": self.state.issue_trigger(user=user), "view": view,
            "response_urls": [], "is_enterprise_install": False,
        }
        response = self._send_payload("view_submission", payload, forged, stale)
        if response.status_code == 200:
            self._apply_response_action(response, view_id=view_id, user=user)
        return response

    def send_event(self, event: Json, *, forged: bool = False,
                   stale: bool = False) -> httpx.Response:
        """Send an Events API event (`app_home_opened`, ...) wrapped as Slack wraps it."""
        ws = self.state.workspace
        event = {"event_ts": f"{self.clock():.6f}", **event}
        body: Json = {
            "token": "emulator-verification-token", "team_id": ws.team_id,
            "api_app_id": ws.bot.app_id, "event": event, "type": "event_callback",
            "event_id": f"Ev{uuid.uuid4().hex[:10].upper()}", "event_time": int(self.clock()),
            "authorizations": [{"enterprise_id": None, "team_id": ws.team_id,
                                "user_id": ws.bot.user_id, "is_bot": True,
                                "is_enterprise_install": False}],
            "is_ext_shared_channel": False,
        }
        return self._send("event_callback", body, json.dumps(body), forged, stale,
                          content_type="application/json")

    # signing and sending --------------------------------------------------
    def post_raw(self, *, body: str, content_type: str = FORM, signature: str | None = None,
                 timestamp: str | None = None) -> httpx.Response:
        """Send any body; signed correctly unless `signature`/`timestamp` say otherwise."""
        if self.events_url is None:
            raise EmulatorError("no events_url: tell the emulator where the bot listens")
        ts = timestamp or str(int(self.clock()))
        sig = signature or sign_request(signing_secret=self.signing_secret, timestamp=ts,
                                        body=body)
        headers = {"Content-Type": content_type, "X-Slack-Request-Timestamp": ts,
                   "X-Slack-Signature": sig}
        return self._http.post(self.events_url, content=body.encode(), headers=headers)

    def _send_payload(self, kind: str, payload: Json, forged: bool,
                      stale: bool) -> httpx.Response:
        body = urlencode({"payload": json.dumps(payload)})
        return self._send(kind, payload, body, forged, stale)

    def _send(self, kind: str, payload: Json, body: str, forged: bool, stale: bool, *,
              content_type: str = FORM) -> httpx.Response:
        if self.transport == "socket":
            if forged or stale:
                raise EmulatorError("Socket Mode payloads are not signed: forged and stale "
                                    "requests are HTTP's")
            return self._send_envelope(kind, payload)
        now = int(self.clock()) - (STALE_SECONDS if stale else 0)
        ts = str(now)
        signature = None
        if forged:
            signature = sign_request(signing_secret="not-" + self.signing_secret,
                                     timestamp=ts, body=body)
        try:
            response = self.post_raw(body=body, content_type=content_type,
                                     signature=signature, timestamp=ts)
        except httpx.HTTPError as exc:
            self.state.record_delivery(Delivery(kind=kind, payload=payload, status=None,
                                                body="", error=repr(exc)))
            raise
        self.state.record_delivery(Delivery(kind=kind, payload=payload,
                                            status=response.status_code, body=response.text))
        logger.debug("%s -> %s %s", kind, response.status_code, response.text[:200])
        return response

    def _send_envelope(self, kind: str, payload: Json) -> httpx.Response:
        """Over Socket Mode; the ack's payload becomes the body an HTTP ack would have had."""
        envelope_type, accepts = _ENVELOPES[kind]
        url = self.state.socket.base_url + "/link/"
        try:
            ack = self.state.socket.deliver(type=envelope_type, payload=payload,
                                            accepts_response_payload=accepts)
        except AckTimeoutError as exc:
            self.state.record_delivery(Delivery(kind=kind, payload=payload, status=None,
                                                body="", error=repr(exc)))
            raise httpx.ReadTimeout(str(exc), request=httpx.Request("POST", url)) from exc
        content = json.dumps(ack.payload).encode() if ack.payload else b""
        response = httpx.Response(
            200, content=content, request=httpx.Request("POST", url),
            headers={"Content-Type": "application/json"} if content else {})
        self.state.record_delivery(Delivery(kind=kind, payload=payload, status=200,
                                            body=response.text))
        logger.debug("%s -> ack %s", kind, response.text[:200])
        return response

    # helpers ------------------------------------------------------------
    def _show_ack_body(self, response: httpx.Response, *, user: str, channel: str) -> None:
        try:
            body = response.json()
        except ValueError:
            body = {"text": response.text}
        if not isinstance(body, dict) or not (body.get("text") or body.get("blocks")):
            return
        text, blocks = str(body.get("text") or ""), body.get("blocks")
        if body.get("response_type") == "in_channel":
            self.state.post_message(channel=channel, text=text, blocks=blocks)
        else:
            self.state.post_ephemeral(channel=channel, user=user, text=text, blocks=blocks)

    def _apply_response_action(self, response: httpx.Response, *, view_id: str,
                               user: str) -> None:
        body: Any = response.json() if response.content else {}
        action = body.get("response_action") if isinstance(body, dict) else None
        if action == "errors":
            self.state.set_view_errors(view_id, body.get("errors") or {})
        elif action == "update":
            self.state.update_view(view_id=view_id, external_id=None, view=body["view"])
        elif action == "push":
            self.state.open_view(view=body["view"], user=user)
        else:
            self.state.close_view(view_id)

    def _channel(self, channel: str) -> str:
        channel_id = self.state.workspace.resolve_channel(channel)
        if channel_id is None:
            raise EmulatorError(f"unknown channel {channel!r}")
        return channel_id

    def _user(self, user: str) -> Json:
        found = self.state.workspace.user(user)
        if found is None:
            raise EmulatorError(f"unknown user {user!r}")
        return {"id": found.id, "name": found.name}

    def _user_ref(self, user: str) -> Json:
        """The `user` of an interaction payload: `team_id` is the user's own team."""
        name = self._user(user)["name"]
        return {"id": user, "username": name, "name": name,
                "team_id": self.state.workspace.user_team(user)}

    def _team(self) -> Json:
        """The `team` of a payload: the workspace acted in, whoever the user is."""
        ws = self.state.workspace
        return {"id": ws.team_id, "domain": ws.team_domain}

    def _response_url(self, *, user: str, channel: str, message_ts: str | None) -> str:
        token = self.state.issue_response_url(user=user, channel=channel, message_ts=message_ts)
        return f"{self.base_url}/response/{token}"


def _find_button(message: Json, *, action_id: str, value: str | None) -> tuple[str, Json]:
    found: list[str] = []
    for block in message.get("blocks") or []:
        elements = list(block.get("elements") or []) if block.get("type") == "actions" else []
        if block.get("accessory"):
            elements.append(block["accessory"])
        for el in elements:
            if el.get("type") != "button":
                continue
            found.append(f"{el.get('action_id')}={el.get('value')!r}")
            if el.get("action_id") == action_id and value in (None, el.get("value")):
                return str(block.get("block_id", "")), el
    wanted = action_id if value is None else f"{action_id}={value!r}"
    raise ButtonNotFoundError(
        f"message {message.get('ts')} has no button {wanted}; its buttons: {found or 'none'}")


def _state_values(view: Json, values: dict[str, dict[str, Any]]) -> Json:
    """Build `view.state.values` for every input block, as Slack's client does."""
    out: Json = {}
    known: set[tuple[str, str]] = set()
    for block in view.get("blocks") or []:
        element = block.get("element") or {}
        if block.get("type") != "input" or not element.get("action_id"):
            continue
        block_id, action_id = block.get("block_id", ""), element["action_id"]
        known.add((block_id, action_id))
        given = values.get(block_id, {}).get(action_id)
        if given in (None, "", []) and not block.get("optional"):
            raise EmulatorError(f"input {block_id}/{action_id} is required: Slack's client "
                                "would not submit the view without it")
        out.setdefault(block_id, {})[action_id] = _element_value(element, given)
    unknown = [(b, a) for b, acts in values.items() for a in acts if (b, a) not in known]
    if unknown:
        raise EmulatorError(f"the view has no input {unknown}; its inputs: {sorted(known)}")
    return out


def _element_value(element: Json, given: Any) -> Json:
    kind = element["type"]
    options = {o.get("value"): o for o in element.get("options") or []}
    if kind in ("static_select", "radio_buttons"):
        return {"type": kind, "selected_option": options.get(given) if given else None}
    if kind == "checkboxes":
        chosen = given if isinstance(given, list) else [given] if given else []
        return {"type": kind, "selected_options": [options[v] for v in chosen if v in options]}
    if kind == "datepicker":
        return {"type": kind, "selected_date": given or None}
    return {"type": kind, "value": given if given not in ("",) else None}
