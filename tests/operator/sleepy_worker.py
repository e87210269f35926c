"""A LiveKit Agents worker that takes calls and does nothing with them: the smallest real worker
(registration, job request, room join) for tests of dispatch, without the voice stack's models.

    python sleepy_worker.py AGENT_NAME HEALTH_PORT [FULL_FLAG]
    (LIVEKIT_URL/_API_KEY/_API_SECRET in env)

Prints ``JOB <room>`` once it has joined a room. While the file FULL_FLAG exists, the worker
reports itself full (load 1) and refuses calls, as a busy worker does.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from livekit.agents import AgentServer, JobContext, JobExecutorType
from livekit.agents.cli import proto
from livekit.agents.cli.cli import _run_worker


async def entrypoint(ctx: JobContext) -> None:
    await ctx.connect()
    print("JOB", ctx.room.name, flush=True)
    await asyncio.Event().wait()  # stay in the call until the worker or the room ends it


def main() -> None:
    agent_name, port = sys.argv[1], int(sys.argv[2])
    full_flag = Path(sys.argv[3]) if len(sys.argv) > 3 else None

    def load() -> float:
        # Else never full: livekit's default load is the machine's CPU, which a busy test
        # machine fills.
        return 1.0 if full_flag is not None and full_flag.exists() else 0.0

    server = AgentServer(job_executor_type=JobExecutorType.THREAD, port=port, load_fnc=load)
    server.rtc_session(entrypoint, agent_name=agent_name)
    _run_worker(server, proto.CliArgs(log_level="INFO", log_format="json"))


if __name__ == "__main__":
    main()
