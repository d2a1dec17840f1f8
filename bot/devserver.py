"""`signoff dev`: the bot and the Slack emulator together, offline, for a person at a browser."""

from __future__ import annotations

import logging
import os

import typer
import uvicorn
from pydantic import SecretStr

from bot.config import Settings
from bot.emulator import EmulatorServer, rate_limits_from_env
from bot.web import create_app

__all__ = ["DEV_APP_TOKEN", "dev_emulator", "dev_settings", "run_dev"]

log = logging.getLogger(__name__)

DEV_BOT_TOKEN = "xoxb-signoff-dev"
DEV_SIGNING_SECRET = "signoff-dev-signing-secret"
DEV_APP_TOKEN = "xapp-1-signoff-dev"


def dev_emulator(*, page_port: int, bot_port: int, socket_mode: bool) -> EmulatorServer:
    """The emulator `signoff dev` serves (not started): it reaches the bot at its HTTP events
    URL, or over Socket Mode (the bot connects with DEV_APP_TOKEN; no events URL needed)."""
    events_url = None if socket_mode else f"http://127.0.0.1:{bot_port}/slack/events"
    return EmulatorServer(bot_token=DEV_BOT_TOKEN, signing_secret=DEV_SIGNING_SECRET,
                          app_token=DEV_APP_TOKEN, events_url=events_url,
                          transport="socket" if socket_mode else "http",
                          port=page_port, rate_limits=rate_limits_from_env(os.environ))


def dev_settings(settings: Settings, *, emulator: EmulatorServer, bot_port: int) -> Settings:
    """`settings` pointed at the emulator: a signing secret over HTTP, an app token (and no
    secret, as a Socket Mode app has) over Socket Mode."""
    socket_mode = emulator.transport == "socket"
    return settings.model_copy(update={
        "slack_bot_token": SecretStr(DEV_BOT_TOKEN),
        "slack_signing_secret": None if socket_mode else SecretStr(DEV_SIGNING_SECRET),
        "slack_app_token": SecretStr(DEV_APP_TOKEN) if socket_mode else None,
        "slack_api_url": emulator.api_url,
        "signoff_channel": settings.signoff_channel or "C0APPROVALS",
        "host": "127.0.0.1",
        "port": bot_port,
    })


def run_dev(settings: Settings, *, page_port: int, bot_port: int,
            socket_mode: bool = False) -> None:
    """Serve the emulator's page on `page_port` and the bot on `bot_port` until Ctrl-C."""
    emulator = dev_emulator(page_port=page_port, bot_port=bot_port, socket_mode=socket_mode)
    dev = dev_settings(settings, emulator=emulator, bot_port=bot_port)
    emulator.start()
    try:
        how = "Socket Mode" if socket_mode else f"http://127.0.0.1:{bot_port}"
        typer.echo(f"signoff dev: open {emulator.url}/ to try it "
                   f"(bot on {how}, database {settings.signoff_database})", err=True)
        log.info("dev mode", extra={"page": emulator.url, "bot_port": bot_port,
                                    "transport": emulator.transport})
        uvicorn.run(create_app(dev), host="127.0.0.1", port=bot_port,
                    log_config=None, access_log=False, lifespan="on")
    finally:
        emulator.stop()
