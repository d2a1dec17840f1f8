"""Pending requests made through the gateway's own API: `gateway.start_run` on the deploy graph
with a staging task (it pauses for one approval), in batches, each drained before the next.

`python -m bench.seed DATABASE N API_URL` does it in a process of its own (the bench's emulator
stays in the bench's process), so that seeding 10,000 runs uses both cores.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

from pydantic import SecretStr

from bench.harness import APPROVALS, BOT_TOKEN, REQUESTER, SIGNING_SECRET
from bot.config import Settings
from bot.gateway import Gateway
from bot.service import open_service

__all__ = ["seed", "seed_in_process", "seed_subprocess"]


async def seed(gateway: Gateway, n: int, *, batch: int = 100, first: int = 0) -> None:
    """Start `n` staging deploys and wait until every one has paused and been posted."""
    for start in range(first, first + n, batch):
        for i in range(start, min(first + n, start + batch)):
            await gateway.start_run(graph="deploy", task=f"Ship service {i} to staging",
                                    requester=REQUESTER, channel=APPROVALS)
        await gateway.drain()


async def seed_in_process(database: str, n: int, api_url: str) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        SLACK_BOT_TOKEN=SecretStr(BOT_TOKEN),
        SLACK_SIGNING_SECRET=SecretStr(SIGNING_SECRET),
        SLACK_API_URL=api_url,
        SIGNOFF_CHANNEL=APPROVALS,
        SIGNOFF_DATABASE=database,
    )
    async with open_service(settings) as service:
        await seed(service.gateway, n)


def seed_subprocess(*, api_url: str, database: Path | str, n: int, log: Path) -> float:
    """Seed `database` from a process of its own; seconds it took (imports excluded)."""
    with log.open("ab") as out:
        done = subprocess.run([sys.executable, "-m", "bench.seed", str(database), str(n),
                               api_url], cwd=Path(__file__).resolve().parent.parent,
                              stdout=subprocess.PIPE, stderr=out, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"seeding {database} failed; see {log}")
    return float(done.stdout.decode().split()[-1])


if __name__ == "__main__":
    database, count, api_url = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    started = time.perf_counter()
    asyncio.run(seed_in_process(database, count, api_url))
    print(f"{time.perf_counter() - started:.3f}")
