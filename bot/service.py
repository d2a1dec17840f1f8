"""The composition root: builds every part once, in order, and closes them in reverse."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import aiohttp
from langgraph.checkpoint.base import BaseCheckpointSaver
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import executors
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.gateway import Gateway
from bot.metrics import Metrics
from bot.policy import Policy
from bot.scheduler import DeadlineScheduler
from bot.slack.client import make_web_client
from bot.slack.directory import SlackDirectory
from bot.slack.home_tabs import HomeTabs, HomeWatch
from bot.slack.notifier import SlackNotifier
from bot.store import ApprovalStore, open_backend, probe, redact_url
from graphs.loader import GraphLoadError, parse_graphs
from graphs.registry import GraphRegistry, default_registry

__all__ = [
    "Deps",
    "Service",
    "StartupError",
    "load_policy_for",
    "open_service",
    "preflight",
    "registry_for",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Deps:
    """Collaborators a caller (a test, a bench) may replace; None means the default."""

    policy: Policy | None = None
    registry: GraphRegistry | None = None
    clock: Clock = field(default_factory=SystemClock)
    scheduler_max_sleep: float = 30.0


@dataclass(frozen=True)
class Service:
    """Everything a running bot holds."""

    settings: Settings
    store: ApprovalStore
    checkpointer: BaseCheckpointSaver[Any]
    client: AsyncWebClient
    gateway: Gateway
    scheduler: DeadlineScheduler
    policy: Policy
    metrics: Metrics = field(default_factory=Metrics)
    home: HomeTabs | None = None


def load_policy_for(settings: Settings) -> Policy:
    """The policy file's rules, or the built-in default when no file is named."""
    if settings.signoff_policy is None:
        return Policy.default()
    from bot.policy_file import load_policy

    return load_policy(settings.signoff_policy)


def registry_for(settings: Settings) -> GraphRegistry:
    """The bundled graphs plus those SIGNOFF_GRAPHS names; raises GraphLoadError."""
    registry = default_registry()
    for spec in parse_graphs(settings.signoff_graphs):
        if spec.name in registry:  # case-insensitive: `Deploy` would shadow `deploy`
            taken = registry.get(spec.name).name
            same = "" if taken == spec.name else " (graph names are case-insensitive)"
            raise GraphLoadError(spec.name, f"that name is already taken by the graph "
                                 f"{taken!r}{same}")
        registry.register(spec)
    return registry


class StartupError(RuntimeError):
    """Slack answered in a way that makes serving pointless; the message names the setting."""


async def _check_slack(*, client: AsyncWebClient, directory: SlackDirectory,
                       settings: Settings) -> None:
    """Learn our workspace (auth.test) and make sure the bot can post to SIGNOFF_CHANNEL."""
    try:
        team = await directory.workspace_team()
    except SlackApiError as exc:
        raise StartupError(f"SLACK_BOT_TOKEN: Slack refused it ({exc.response.get('error')})"
                           ) from None
    log.info("workspace learned", extra={"team": team})
    channel = settings.signoff_channel
    if channel is None:
        return
    try:
        info = await client.conversations_info(channel=channel)
    except SlackApiError as exc:
        raise StartupError(f"SIGNOFF_CHANNEL: the bot cannot see channel {channel} "
                           f"({exc.response.get('error')})") from None
    found = info.get("channel") or {}
    if found.get("is_archived"):
        raise StartupError(f"SIGNOFF_CHANNEL: channel {channel} is archived")
    if found.get("is_member") is False and not found.get("is_im"):
        raise StartupError(f"SIGNOFF_CHANNEL: the bot is not in channel {channel}; "
                           f"invite it with /invite")


async def _check_app_token(client: AsyncWebClient, app_token: str) -> None:
    """Socket Mode: Slack hands this token a websocket URL (left unused; a URL expires)."""
    try:
        await client.apps_connections_open(app_token=app_token)
    except SlackApiError as exc:
        raise StartupError(f"SLACK_APP_TOKEN: Slack refused it ({exc.response.get('error')})"
                           ) from None


async def preflight(settings: Settings) -> None:
    """Check the database and Slack before serving (SIGNOFF_DATABASE reachable; token,
    workspace, SIGNOFF_CHANNEL; the app token in Socket Mode); raises StartupError."""
    try:
        await probe(settings.signoff_database)
    except ValueError as exc:
        raise StartupError(str(exc)) from None
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else ""
    async with aiohttp.ClientSession() as session:
        client = make_web_client(token=token, base_url=settings.slack_api_url, session=session)
        directory = SlackDirectory(client=client, clock=SystemClock())
        try:
            await _check_slack(client=client, directory=directory, settings=settings)
            if settings.slack_app_token is not None:
                await _check_app_token(client, settings.slack_app_token.get_secret_value())
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise StartupError(f"SLACK_API_URL: cannot reach Slack at {settings.slack_api_url} "
                               f"({type(exc).__name__})") from None


@asynccontextmanager
async def open_service(settings: Settings, deps: Deps | None = None) -> AsyncIterator[Service]:
    """Open the database, the checkpointer and the Slack client; start the deadlines."""
    deps = deps or Deps()
    policy = deps.policy or load_policy_for(settings)
    registry = deps.registry or registry_for(settings)
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else ""
    async with open_backend(settings.signoff_database,
                            pool_size=settings.signoff_db_pool_size) as backend:
        store, checkpointer = backend.store, backend.checkpointer
        session = aiohttp.ClientSession()
        metrics = Metrics()  # this process's own figures, at GET /metrics
        try:
            client = make_web_client(token=token, base_url=settings.slack_api_url,
                                     session=session, metrics=metrics)
            directory = SlackDirectory(client=client, clock=deps.clock)
            await _check_slack(client=client, directory=directory, settings=settings)
            # Sync graph nodes get threads of their own (a couple per resume slot, for
            # parallel branches), apart from the ones DNS lookups use.
            executors.install(node_threads=2 * settings.signoff_max_resumes)
            notifier = SlackNotifier(client=client, policy=policy, metrics=metrics)
            # What the gateway tells people also tells the Home tabs what changed.
            watch = HomeWatch(notifier)
            gateway = Gateway(
                store=store,
                checkpointer=checkpointer,
                registry=registry,
                policy=policy,
                notifier=watch,
                directory=directory,
                clock=deps.clock,
                lease=timedelta(seconds=settings.signoff_lease),
                max_resumes=settings.signoff_max_resumes,
                metrics=metrics,
            )
            home = HomeTabs(client=client, store=store, decisions=gateway.decisions,
                            policy=policy, clock=deps.clock)
            watch.observe(home.changed)
            scheduler = DeadlineScheduler(gateway=gateway, clock=deps.clock,
                                          max_sleep=deps.scheduler_max_sleep)
            # Another replica's new request or decision wakes our deadline watch at once
            # (PostgreSQL's NOTIFY; on SQLite the watch looks again within max_sleep).
            await store.listen(scheduler.wake)
            scheduler.start()
            log.info("signoff started",
                     extra={"database": redact_url(settings.signoff_database),
                            "backend": backend.name,
                            "slack_api_url": settings.slack_api_url,
                            "graphs": registry.names()})
            try:
                yield Service(settings=settings, store=store, checkpointer=checkpointer,
                              client=client, gateway=gateway, scheduler=scheduler,
                              policy=policy, metrics=metrics, home=home)
            finally:
                await scheduler.stop()
                await gateway.shutdown(grace=settings.signoff_shutdown_grace)
                await home.close()
                await notifier.close()
        finally:
            await session.close()
