"""The `signoff` command: serve, dev, run, pending, audit (and audit verify), report, policy
(check, explain)."""

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
from bot.models import Grant

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
    except PolicyError as exc:
        for line in exc.lines():
            typer.echo(f"signoff: {line}", err=True)
        raise typer.Exit(2) from None
    except GraphLoadError as exc:
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
    from bot import thresholds
    from bot.store import open_store

    async def go() -> None:
        store = await open_store(_settings().signoff_database)
        try:
            for r in await store.pending_requests():
                sys.stdout.write(json.dumps({
                    "request_id": r.id, "run_id": r.run_id, "graph": r.graph, "node": r.node,
                    "tier": r.tier, "title": r.action.title, "requester": r.requester,
                    "approvals": (thresholds.progress_text(r) if thresholds.several(r)
                                  else f"{len(r.votes)}/{r.approvals_required}"),
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


policy_app = typer.Typer(add_completion=False, no_args_is_help=True,
                         help="Check a policy file, or explain what it does with a task.")
app.add_typer(policy_app, name="policy")


@policy_app.command("check")
def policy_check(
    file: Annotated[Path | None, typer.Argument(
        help="The policy file (TOML); default SIGNOFF_POLICY.")] = None,
) -> None:
    """Validate a policy file: exit 0 with a one-line summary, or 1 with every mistake
    (file: key: problem), one a line."""
    from bot.explain import summary
    from bot.policy_file import PolicyError, load_policy

    path = file if file is not None else _settings().signoff_policy
    if path is None:
        typer.echo("signoff policy check: no FILE given and SIGNOFF_POLICY is not set", err=True)
        raise typer.Exit(2)
    try:
        policy = load_policy(path)
    except PolicyError as exc:
        for line in exc.lines():
            typer.echo(line)
        raise typer.Exit(1) from None
    typer.echo(summary(policy, source=str(path)))


@policy_app.command("explain")
def policy_explain(
    graph: Annotated[str, typer.Argument(help="A registered graph, e.g. deploy.")],
    task: Annotated[list[str], typer.Argument(help="The task, as after /signoff GRAPH.")],
    policy_file: Annotated[Path | None, typer.Option(
        "--policy", help="The policy file; default SIGNOFF_POLICY, else the built-in "
                         "default.")] = None,
) -> None:
    """For a task: its tier and why, who may approve (roles and members), the timing, and
    whether a standing grant applies. Runs nothing."""
    from bot.explain import explain
    from bot.policy import Policy
    from bot.policy_file import PolicyError, load_policy
    from bot.service import registry_for
    from graphs.loader import GraphLoadError
    from graphs.registry import UnknownGraphError

    settings = _settings()
    path = policy_file or settings.signoff_policy
    try:
        policy = Policy.default() if path is None else load_policy(path)
        spec = registry_for(settings).get(graph)
    except PolicyError as exc:
        for line in exc.lines():
            typer.echo(f"signoff policy explain: {line}", err=True)
        raise typer.Exit(2) from None
    except (GraphLoadError, UnknownGraphError) as exc:
        typer.echo(f"signoff policy explain: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"policy: {path or 'the built-in default'}")
    grants = (asyncio.run(_active_grants(settings.signoff_database))
              if "signoff_database" in settings.model_fields_set else None)
    for line in explain(policy, spec, " ".join(task), grants):
        typer.echo(line)


async def _active_grants(database: str) -> list[Grant]:
    """The standing grants active now, read from the store at `database`."""
    from bot.store import open_store

    store = await open_store(database)
    try:
        return await store.active_grants(datetime.now(UTC))
    finally:
        await store.close()


def main() -> None:
    """Console-script entry point."""
    app()
