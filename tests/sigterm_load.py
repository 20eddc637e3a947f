"""A process under load for the SIGTERM test: serves requests until told to stop.

Run as ``python -m tests.sigterm_load DATA_DIR DATABASE_URL``. Prints ``READY``, then ``SENT`` before
every request, ``DONE`` when it is answered and ``REFUSED`` when shutdown turned it away. On SIGTERM
the orchestrator refuses new requests, lets the ones under way finish, writes every record, and the
process ends by SIGTERM.
"""

from __future__ import annotations

import asyncio
import sys

from podium import Orchestrator
from podium.errors import ShuttingDown
from podium.testing import SimulatedOpenAI


async def worker(orch: Orchestrator, n: int) -> None:
    i = 0
    while True:
        i += 1
        print("SENT", flush=True)
        try:
            if i % 2:
                await orch.chat(f"w{n} r{i}", tenant="load")
            else:
                async for _ in orch.stream(f"w{n} r{i}", tenant="load"):
                    pass
        except ShuttingDown:
            print("REFUSED", flush=True)
            return
        print("DONE", flush=True)


async def main(data_dir: str, db_url: str) -> None:
    async with SimulatedOpenAI("load", chunk_delay=0.002) as up:
        orch = await Orchestrator.from_config(
            None,
            framework={"data_dir": data_dir},
            storage={"database_url": db_url, "flush_interval": 0.2, "batch_size": 50},
            config_store={"encryption_key": "k" * 32},
        )
        await orch.create_provider(
            type="openai",
            name="gpt",
            tenant="load",
            api_key="sk-load-test",
            base_url=up.base_url,
            default_model="gpt-4o-mini",
        )
        orch.install_sigterm()
        print("READY", flush=True)
        await asyncio.gather(*(worker(orch, n) for n in range(16)))
        await asyncio.sleep(60)  # SIGTERM ends the process once shutdown is done


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
