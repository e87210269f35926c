"""``kubevox-agent test --audio``: a suite held as real calls through a real LiveKit server with
a real `kubevox-agent start` worker (the offline sample: Whisper, Piper, grounded by Redis); the
simulated caller speaks each turn and checks what it hears."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubevox_api import KnowledgeBase
from kubevox_devenv.livekit import LiveKitServer
from kubevox_devenv.redis import RedisSearchServer
from kubevox_devenv.worker import AgentWorker

from tests.support.servers.openai_server import OpenAIServer
from tests.support.voice import sample_docs, stand_in_worker

pytestmark = [pytest.mark.e2e, pytest.mark.voice]

SUITE = {
    "apiVersion": "kubevox.dev/v1alpha1",
    "kind": "VoiceAgentTest",
    "metadata": {"name": "offline"},
    "spec": {
        "agentRef": "offline",
        "cases": [
            {
                "name": "pharmacy",
                "turns": [
                    {
                        "say": "When does the pharmacy open on Saturdays?",
                        "expect": {
                            "contains": ["saturday"],
                            "notContains": ["parking"],
                            "groundedIn": ["clinic"],
                            "maxLatencyMs": 30000,
                        },
                    }
                ],
            },
            {
                "name": "parking-asked-wrongly",
                "turns": [
                    {
                        "say": "When does the pharmacy open on Saturdays?",
                        "expect": {"contains": ["Elm Street"]},
                    }
                ],
            },
        ],
    },
}


@pytest.fixture(scope="module")
def worker(
    tmp_path_factory: pytest.TempPathFactory,
    livekit: LiveKitServer,
    redis_server: RedisSearchServer,
    clinic_kb: KnowledgeBase,
    llm_primary: OpenAIServer,
) -> Iterator[AgentWorker]:
    workdir = tmp_path_factory.mktemp("audio-tests")
    with stand_in_worker(workdir, clinic_kb, llm_primary, livekit, redis_server) as worker:
        yield worker


async def test_a_suite_held_as_real_calls(
    worker: AgentWorker, livekit: LiveKitServer, tmp_path: Path
) -> None:
    agent, kb = sample_docs()
    agent["metadata"]["namespace"] = kb["metadata"]["namespace"] = "e2e"
    files = tmp_path / "offline.yaml"
    files.write_text(yaml.safe_dump_all([agent, kb, SUITE]))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "agent_runtime", "test", "--audio", "-f", str(files)),
        *("--url", livekit.url, "--reply-timeout", "60"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        # The keys as a CI job passes them: in the environment, not on the command line (where
        # any process can read them, and a secret starting with "-" reads as an option).
        env={
            **os.environ,
            "LIVEKIT_API_KEY": livekit.api_key,
            "LIVEKIT_API_SECRET": livekit.api_secret,
        },
    )
    raw_out, raw_err = await asyncio.wait_for(proc.communicate(), 280)
    out, err = raw_out.decode(), raw_err.decode()
    assert proc.returncode == 1, out + err  # the second case expects what the agent never says
    assert "not checked over audio (a caller cannot observe them" in err
    assert "groundedIn" in err
    assert re.search(r"^pharmacy\s+1\s+pass\s+\d+ ms\s+.*saturday", out, re.M | re.I), out
    assert re.search(r"^parking-asked-wrongly\s+1\s+FAIL\s+.*contains 'Elm Street'", out, re.M), out
    assert re.search(r"^\s+the reply: .*saturday", out, re.M | re.I), out
    assert out.rstrip().endswith("2 cases: 1 passed, 1 failed")
