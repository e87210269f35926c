"""A browser caller's path, without the browser: the agent's web gateway (`kubevox-agent web`,
a subprocess) mints a token for a new room with the agent dispatched; a caller joins with only
that token (no API key, no dispatch of its own) through a real LiveKit server, and a real
`kubevox-agent start` worker, dispatched by the token, greets and answers from the knowledge
base."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from kubevox_api import KnowledgeBase
from kubevox_devenv.livekit import LiveKitServer
from kubevox_devenv.redis import RedisSearchServer
from kubevox_devenv.worker import AgentWorker

from agent_runtime.caller import CallOptions, SimulatedCall
from agent_runtime.caller.audio import synthesize
from tests.support.servers.openai_server import OpenAIServer
from tests.support.voice import start_worker, web_gateway, write_config
from tests.support.waits import until

pytestmark = [pytest.mark.e2e, pytest.mark.voice]

SITE = "https://www.clinic.example"


@pytest.fixture(scope="module")
def web_config(
    tmp_path_factory: pytest.TempPathFactory, clinic_kb: KnowledgeBase, llm_primary: OpenAIServer
) -> Path:
    llm = {"provider": "openai", "model": "clinic", "baseURL": llm_primary.base_url}
    web = {"allowedOrigins": [SITE], "metadataKeys": ["customerId"], "title": "Northwind Clinic"}
    return write_config(
        tmp_path_factory.mktemp("web"), clinic_kb, llm, agentName="e2e-web", web=web
    )


@pytest.fixture(scope="module")
def worker(
    web_config: Path, livekit: LiveKitServer, redis_server: RedisSearchServer
) -> Iterator[AgentWorker]:
    w = start_worker(web_config.parent, web_config, livekit, redis_server)
    yield w
    w.stop()


@pytest.fixture(scope="module")
def gateway(web_config: Path, livekit: LiveKitServer) -> Iterator[str]:
    with web_gateway(web_config, livekit, web_config.with_suffix(".gateway.log")) as url:
        yield url


async def test_a_caller_with_only_the_gateway_s_token_is_answered(
    worker: AgentWorker, gateway: str, livekit: LiveKitServer
) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{gateway}/v1/calls",
            json={"metadata": {"customerId": "C-42"}},
            headers={"Origin": SITE},
        ) as resp,
    ):
        assert resp.status == 201, await resp.text()
        call = await resp.json()
    assert call["url"] == livekit.url

    options = CallOptions(
        url=call["url"], api_key="", api_secret="", agent_name="",
        grant=(call["room"], call["token"]), greeting_timeout=60.0, reply_timeout=45.0,
    )  # fmt: skip
    result = await SimulatedCall(options).run(
        [synthesize("When does the pharmacy open on Saturdays?")]
    )
    assert result.error is None, result.error
    assert result.room == call["room"]
    assert "clinic" in (result.greeting or "").lower(), "the dispatched agent did not greet"
    heard = result.turns[0].heard.lower()
    assert "saturday" in heard, heard
    await until("the call ended on the worker", lambda: worker.active_calls() == 0, within=30)
