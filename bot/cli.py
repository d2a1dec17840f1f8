"""The `signoff` command: serve, dev, run, pending, audit (and audit verify), report."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
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
    socket_mode: Annotated[bool, typer.Option(
        "--socket-mode", help="Reach the bot over Socket Mode (as with SLACK_APP_TOKEN), "
                              "not HTTP events.")] = False,
) -> None:
    """Run the bot and the Slack emulator together, offline; prints the page's URL."""
    from bot.devserver import run_dev

    settings = _settings()
    _check_startup(settings)
    configure_logging(settings.log_level)
    run_dev(settings, page_port=port, bot_port=bot_port, socket_mode=socket_mode)


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


audit_app = typer.Typer(add_completion=False,
                        help="The audit trail: print it (filtered), or verify its hash chain.")
app.add_typer(audit_app, name="audit")


def _when(option: str, text: str | None, now: datetime, *, command: str = "audit"
          ) -> datetime | None:
    from bot.audit_export import parse_when

    try:
        return None if text is None else parse_when(text, now=now)
    except ValueError as exc:
        typer.echo(f"signoff {command}: {option}: {exc}", err=True)
        raise typer.Exit(2) from None


@audit_app.callback(invoke_without_command=True)
def audit(
    ctx: typer.Context,
    run_id: Annotated[str | None, typer.Option("--run", help="Only this run.")] = None,
    user: Annotated[str | None, typer.Option("--user", help="Only this actor.")] = None,
    since: Annotated[str | None, typer.Option(
        help="From this time: 2026-01-31, 2026-01-31T09:30 (UTC unless zoned), or 30d, 12h "
             "ago.")] = None,
    until: Annotated[str | None, typer.Option(help="Before this time (as --since).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv (with a header row).")
                   ] = "jsonl",
) -> None:
    """Print the audit trail, oldest first (JSON lines, or CSV)."""
    if ctx.invoked_subcommand is not None:
        return
    from bot.audit_export import FORMATS, render
    from bot.store import open_store

    if fmt not in FORMATS:
        typer.echo(f"signoff audit: --format: {fmt!r} is not one of {', '.join(FORMATS)}",
                   err=True)
        raise typer.Exit(2)
    now = datetime.now(UTC)
    start, end = _when("--since", since, now), _when("--until", until, now)
    if start is not None and end is not None and start >= end:
        typer.echo("signoff audit: --since must be before --until", err=True)
        raise typer.Exit(2)

    async def go() -> None:
        store = await open_store(_settings().signoff_database)
        try:
            entries = await store.audit(run_id=run_id, actor=user, since=start, until=end)
        finally:
            await store.close()
        sys.stdout.writelines(render(entries, fmt=fmt))

    asyncio.run(go())


@audit_app.command("verify")
def audit_verify() -> None:
    """Walk the hash chain: exit 0 if intact, 1 naming the first bad entry."""
    from bot.audit import verify_store
    from bot.store import open_store

    async def go() -> bool:
        store = await open_store(_settings().signoff_database)
        try:
            verdict = await verify_store(store)
        finally:
            await store.close()
        typer.echo(verdict.describe(), err=not verdict.intact)
        return verdict.intact

    if not asyncio.run(go()):
        raise typer.Exit(1)


@app.command()
def report(
    since: Annotated[str, typer.Option(
        help="From this time: 2026-01-31, 2026-01-31T09:30 (UTC unless zoned), or 30d, 12h "
             "ago.")] = "30d",
    until: Annotated[str | None, typer.Option(help="Before this time (as --since); default "
                                              "now.")] = None,
    out: Annotated[Path, typer.Option(help="The HTML file to write.")] = Path("report.html"),
) -> None:
    """Write a self-contained HTML report of decisions, reviewers, timeouts, open requests
    and whether the audit chain verified; prints the file's path."""
    from bot.report import Report, read_report, render
    from bot.store import open_store

    now = datetime.now(UTC)
    start = _when("--since", since, now, command="report")
    end = _when("--until", until, now, command="report") or now
    if start is not None and start >= end:
        typer.echo("signoff report: --since must be before --until", err=True)
        raise typer.Exit(2)

    async def go() -> Report:
        store = await open_store(_settings().signoff_database)
        try:
            return await read_report(store, since=start, until=end, now=now)
        finally:
            await store.close()

    found = asyncio.run(go())
    try:
        out.write_text(render(found), encoding="utf-8")
    except OSError as exc:
        typer.echo(f"signoff report: --out: cannot write {out}: {exc.strerror}", err=True)
        raise typer.Exit(2) from None
    if not found.chain.intact:  # the page says so first; so does the terminal
        typer.echo(f"signoff report: audit chain {found.chain.text}", err=True)
    typer.echo(str(out))


def main() -> None:
    """Console-script entry point."""
    app()
