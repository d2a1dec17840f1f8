"""The `signoff` command: serve, dev, run, pending, audit."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated

import typer
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from bot.config import Settings
from bot.logs import configure_logging

__all__ = ["app", "main"]

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="signoff: a Slack approval gateway for LangGraph agents.")


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        for error in exc.errors():
            typer.echo(f"signoff: setting {_setting_error(error)}", err=True)
        raise typer.Exit(2) from None


def _setting_error(error: ErrorDetails) -> str:
    """`NAME: what is wrong` on one line; `loc` holds the variable's name (the field's alias)."""
    name = ".".join(str(p) for p in error["loc"]).upper()
    msg = error["msg"].removeprefix("Value error, ")
    secret = "TOKEN" in name or "SECRET" in name
    if error["type"] != "value_error" and not secret and isinstance(error.get("input"), str):
        msg += f" (got {error['input']!r})"
    return f"{name}: {' '.join(msg.split())}"


def _check_startup(settings: Settings) -> None:
    """Refuse to start on a bad policy file or graph entry, saying exactly what is wrong."""
    from bot.policy_file import PolicyError
    from bot.service import load_policy_for, registry_for
    from graphs.loader import GraphLoadError

    try:
        load_policy_for(settings)
        registry_for(settings)
    except (PolicyError, GraphLoadError) as exc:
        typer.echo(f"signoff: {exc}", err=True)
        raise typer.Exit(2) from None


def _check_slack(settings: Settings) -> None:
    """Refuse to serve when Slack says the token or SIGNOFF_CHANNEL cannot work: one line."""
    from bot.service import StartupError, preflight

    try:
        asyncio.run(preflight(settings))
    except StartupError as exc:
        typer.echo(f"signoff: {exc}", err=True)
        raise typer.Exit(2) from None


def _serve(settings: Settings) -> None:
    import uvicorn

    from bot.web import create_app

    _check_startup(settings)
    _check_slack(settings)
    configure_logging(settings.log_level)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                log_config=None, access_log=False, lifespan="on")


@app.command()
def serve() -> None:
    """Run the bot against Slack (HTTP on PORT, or Socket Mode with SLACK_APP_TOKEN)."""
    settings = _settings()
    missing = settings.missing_for_serve()
    if missing:
        typer.echo(f"signoff serve: {', '.join(missing)} not set. Set them (see .env.example), "
                   "or run `signoff dev` to try signoff offline against the Slack emulator.",
                   err=True)
        raise typer.Exit(2)
    _serve(settings)


@app.command()
def dev(
    port: Annotated[int, typer.Option(help="Port of the emulator's web page.")] = 8080,
    bot_port: Annotated[int, typer.Option(help="Port of the bot's HTTP server.")] = 3000,
) -> None:
    """Run the bot and the Slack emulator together, offline; prints the page's URL."""
    from bot.devserver import run_dev

    settings = _settings()
    _check_startup(settings)
    configure_logging(settings.log_level)
    run_dev(settings, page_port=port, bot_port=bot_port)


@app.command()
def run() -> None:
    """`serve` when Slack tokens are set, else `dev` (what `make run` calls)."""
    settings = _settings()
    if settings.has_slack_credentials or settings.slack_app_token is not None:
        serve()
    else:
        typer.echo("No Slack tokens set: starting offline against the Slack emulator.", err=True)
        dev()


@app.command()
def pending() -> None:
    """List open approval requests as JSON lines."""
    from bot.store import open_store

    async def go() -> None:
        store = await open_store(_settings().signoff_database)
        try:
            for r in await store.pending_requests():
                sys.stdout.write(json.dumps({
                    "request_id": r.id, "run_id": r.run_id, "graph": r.graph, "node": r.node,
                    "tier": r.tier, "title": r.action.title, "requester": r.requester,
                    "approvals": f"{len(r.votes)}/{r.approvals_required}",
                    "deadline": r.deadline.isoformat(),
                }) + "\n")
        finally:
            await store.close()

    asyncio.run(go())


@app.command()
def audit(
    run_id: Annotated[str | None, typer.Option("--run", help="Only this run.")] = None,
) -> None:
    """Print the audit trail as JSON lines, oldest first."""
    from bot.store import open_store

    async def go() -> None:
        store = await open_store(_settings().signoff_database)
        try:
            for entry in await store.audit(run_id=run_id):
                sys.stdout.write(json.dumps(entry.to_json()) + "\n")
        finally:
            await store.close()

    asyncio.run(go())


def main() -> None:
    """Console-script entry point."""
    app()
