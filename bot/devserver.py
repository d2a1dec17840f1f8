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

__all__ = ["run_dev"]

log = logging.getLogger(__name__)

DEV_BOT_TOKEN = "xoxb-signoff-dev"
DEV_SIGNING_SECRET = "signoff-dev-signing-secret"


def run_dev(settings: Settings, *, page_port: int, bot_port: int) -> None:
    """Serve the emulator's page on `page_port` and the bot on `bot_port` until Ctrl-C."""
    emulator = EmulatorServer(bot_token=DEV_BOT_TOKEN, signing_secret=DEV_SIGNING_SECRET,
                              events_url=f"http://127.0.0.1:{bot_port}/slack/events",
                              port=page_port, rate_limits=rate_limits_from_env(os.environ))
    dev_settings = settings.model_copy(update={
        "slack_bot_token": SecretStr(DEV_BOT_TOKEN),
        "slack_signing_secret": SecretStr(DEV_SIGNING_SECRET),
        "slack_app_token": None,
        "slack_api_url": emulator.api_url,
        "signoff_channel": settings.signoff_channel or "C0APPROVALS",
        "host": "127.0.0.1",
        "port": bot_port,
    })
    emulator.start()
    try:
        typer.echo(f"signoff dev: open {emulator.url}/ to try it "
                   f"(bot on http://127.0.0.1:{bot_port}, database {settings.signoff_database})",
                   err=True)
        log.info("dev mode", extra={"page": emulator.url, "bot_port": bot_port})
        uvicorn.run(create_app(dev_settings), host="127.0.0.1", port=bot_port,
                    log_config=None, access_log=False, lifespan="on")
    finally:
        emulator.stop()
