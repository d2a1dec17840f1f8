"""Slack Web API methods over `EmulatorState`: parsed params in, Slack's JSON answer out."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, cast

from bot.emulator.blockkit import validate_message_blocks, validate_view
from bot.emulator.state import ApiError, EmulatorState
from bot.emulator.workspace import dm_channel_id

__all__ = ["APP_METHODS", "METHODS", "call_method"]

Json = dict[str, Any]
Method = Callable[[EmulatorState, Json], Json]


def call_method(state: EmulatorState, *, method: str, params: Json, token: str | None) -> Json:
    """Run one method as Slack would; raise `ApiError` for `{"ok": false}` answers."""
    if method not in METHODS:
        raise ApiError("unknown_method")
    if not token:
        raise ApiError("not_authed")
    app_token = state.socket.app_token
    if method in APP_METHODS:  # app-level methods take the app token (xapp-), no other
        if token == state.bot_token:
            raise ApiError("not_allowed_token_type")
        if token != app_token:
            raise ApiError("invalid_auth")
    elif token == app_token:
        raise ApiError("not_allowed_token_type")
    elif token != state.bot_token:
        raise ApiError("invalid_auth")
    return {"ok": True, **METHODS[method](state, params)}


def _json_param(params: Json, key: str) -> Any:
    """Form-encoded callers send lists and objects as JSON strings; JSON callers as values."""
    value = params.get(key)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ApiError(f"invalid_{key}") from exc
    return value


def _required(params: Json, key: str, error: str) -> str:
    value = params.get(key)
    if not value:
        raise ApiError(error)
    return str(value)


def _channel(state: EmulatorState, params: Json) -> str:
    channel = state.workspace.resolve_channel(_required(params, "channel", "channel_not_found"))
    if channel is None:
        raise ApiError("channel_not_found")
    return channel


def _message_blocks(params: Json) -> list[Json] | None:
    blocks = _json_param(params, "blocks")
    if blocks is None:
        return None
    errors = validate_message_blocks(blocks)
    if errors:
        raise ApiError("invalid_blocks", errors=errors)
    return cast(list[Json], blocks)  # the validator accepts only a list of block objects


def _text_and_blocks(params: Json) -> tuple[str, list[Json] | None]:
    blocks = _message_blocks(params)
    text = params.get("text") or ""
    if not text and not blocks:
        raise ApiError("no_text")
    return str(text), blocks


def auth_test(state: EmulatorState, params: Json) -> Json:
    ws = state.workspace
    return {"url": f"https://{ws.team_domain}.slack.com/", "team": ws.team_name,
            "team_id": ws.team_id, "user": ws.bot.name, "user_id": ws.bot.user_id,
            "bot_id": ws.bot.bot_id, "is_enterprise_install": False}


def chat_post_message(state: EmulatorState, params: Json) -> Json:
    channel = _channel(state, params)
    if not state.bot_is_member(channel):
        raise ApiError("not_in_channel")
    text, blocks = _text_and_blocks(params)
    thread_ts = params.get("thread_ts") or None
    msg = state.post_message(channel=channel, text=text, blocks=blocks, thread_ts=thread_ts)
    return {"channel": channel, "ts": msg["ts"], "message": msg}


def chat_update(state: EmulatorState, params: Json) -> Json:
    channel = _channel(state, params)
    ts = _required(params, "ts", "message_not_found")
    blocks = _message_blocks(params)
    text = params.get("text")
    msg = state.update_message(channel=channel, ts=ts, text=text, blocks=blocks)
    return {"channel": channel, "ts": ts, "text": msg.get("text", ""), "message": msg}


def chat_delete(state: EmulatorState, params: Json) -> Json:
    channel = _channel(state, params)
    ts = _required(params, "ts", "message_not_found")
    state.delete_message(channel=channel, ts=ts)
    return {"channel": channel, "ts": ts}


def chat_post_ephemeral(state: EmulatorState, params: Json) -> Json:
    channel = _channel(state, params)
    user = _required(params, "user", "user_not_found")
    if state.workspace.user(user) is None:
        raise ApiError("user_not_found")
    text, blocks = _text_and_blocks(params)
    eph = state.post_ephemeral(channel=channel, user=user, text=text, blocks=blocks,
                               thread_ts=params.get("thread_ts") or None)
    return {"message_ts": eph["ts"]}


def _view(params: Json) -> Json:
    view = _json_param(params, "view")
    errors = validate_view(view)
    if errors:
        raise ApiError("invalid_blocks" if view else "invalid_arguments", errors=errors)
    return cast(Json, view)  # the validator accepts only an object


def views_open(state: EmulatorState, params: Json) -> Json:
    trigger_id = _required(params, "trigger_id", "invalid_trigger_id")
    view = _view(params)
    user = state.consume_trigger(trigger_id)
    return {"view": state.open_view(view=view, user=user)}


def views_update(state: EmulatorState, params: Json) -> Json:
    view = _view(params)
    updated = state.update_view(view_id=params.get("view_id") or None,
                                external_id=params.get("external_id") or None,
                                view=view, hash=params.get("hash") or None)
    return {"view": updated}


def views_publish(state: EmulatorState, params: Json) -> Json:
    """Slack's views.publish: a `home` view for one user of the workspace."""
    user = _required(params, "user_id", "invalid_arguments")
    if state.workspace.user(user) is None:
        raise ApiError("user_not_found")
    view = _view(params)
    if view.get("type") != "home":
        raise ApiError("invalid_arguments",
                       errors=[f"must be home, not {view.get('type')!r} [json-pointer:/view/type]"])
    return {"view": state.publish_home(user=user, view=view, hash=params.get("hash") or None)}


def users_info(state: EmulatorState, params: Json) -> Json:
    user = state.workspace.user(_required(params, "user", "user_not_found"))
    if user is None:
        raise ApiError("user_not_found")
    return {"user": user.to_api(team_id=state.workspace.team_id)}


def usergroups_users_list(state: EmulatorState, params: Json) -> Json:
    group = _required(params, "usergroup", "no_such_subteam")
    if group not in state.workspace.usergroups:
        raise ApiError("no_such_subteam")
    return {"users": list(state.workspace.usergroups[group])}


def conversations_open(state: EmulatorState, params: Json) -> Json:
    users = params.get("users")
    ids = users if isinstance(users, list) else str(users or "").split(",")
    ids = [u.strip() for u in ids if u.strip()]
    if len(ids) != 1:
        # Group DMs are out of scope for the gateway.
        raise ApiError("not_enough_users" if not ids else "too_many_users")
    if state.workspace.user(ids[0]) is None:
        raise ApiError("user_not_found")
    return {"channel": {"id": dm_channel_id(ids[0])}}


def conversations_info(state: EmulatorState, params: Json) -> Json:
    channel = _channel(state, params)
    name = state.workspace.channel_name(channel)
    found: Json = {"id": channel, "name": name, "is_channel": channel.startswith("C"),
                   "is_im": channel.startswith("D")}
    if not found["is_im"]:
        found["is_member"] = state.bot_is_member(channel)
    return {"channel": found}


def chat_get_permalink(state: EmulatorState, params: Json) -> Json:
    channel = _channel(state, params)
    ts = _required(params, "message_ts", "message_not_found")
    if state.message(channel, ts) is None:
        raise ApiError("message_not_found")
    domain = state.workspace.team_domain
    return {"channel": channel,
            "permalink": f"https://{domain}.slack.com/archives/{channel}/p{ts.replace('.', '')}"}


def apps_connections_open(state: EmulatorState, params: Json) -> Json:
    return {"url": state.socket.open_url()}


APP_METHODS = frozenset({"apps.connections.open"})

METHODS: dict[str, Method] = {
    "apps.connections.open": apps_connections_open,
    "auth.test": auth_test,
    "chat.postMessage": chat_post_message,
    "chat.update": chat_update,
    "chat.delete": chat_delete,
    "chat.postEphemeral": chat_post_ephemeral,
    "chat.getPermalink": chat_get_permalink,
    "views.open": views_open,
    "views.update": views_update,
    "views.publish": views_publish,
    "users.info": users_info,
    "usergroups.users.list": usergroups_users_list,
    "conversations.open": conversations_open,
    "conversations.info": conversations_info,
}
