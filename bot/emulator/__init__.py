"""An offline stand-in for Slack's servers, for end-to-end tests and `signoff dev`."""

from bot.emulator.blockkit import validate_message_blocks, validate_view
from bot.emulator.client import (
    TRANSPORTS,
    ButtonNotFoundError,
    EmulatorError,
    SlackEventsClient,
    Transport,
    sign_request,
)
from bot.emulator.ratelimits import RateLimits, rate_limits_from_env
from bot.emulator.runner import EmulatorServer, ThreadedUvicorn, wait_for
from bot.emulator.socket_mode import AckTimeoutError, SocketAck, SocketModeHub
from bot.emulator.state import ApiError, Call, Delivery, EmulatorState
from bot.emulator.workspace import EXTERNAL_TEAM_ID, SlackChannel, SlackUser, Workspace

__all__ = [
    "EXTERNAL_TEAM_ID",
    "TRANSPORTS",
    "AckTimeoutError",
    "ApiError",
    "ButtonNotFoundError",
    "Call",
    "Delivery",
    "EmulatorError",
    "EmulatorServer",
    "EmulatorState",
    "RateLimits",
    "SlackChannel",
    "SlackEventsClient",
    "SlackUser",
    "SocketAck",
    "SocketModeHub",
    "ThreadedUvicorn",
    "Transport",
    "Workspace",
    "sign_request",
    "validate_message_blocks",
    "validate_view",
    "rate_limits_from_env",
    "wait_for",
]
