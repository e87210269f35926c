"""The openai plugin as kubevox uses it for every OpenAI-compatible endpoint: a timeout per
endpoint, and one TLS context per process."""

from __future__ import annotations

import dataclasses
import functools
import ssl
from typing import Any

import httpx2 as httpx
import openai as openai_sdk
from livekit.agents import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from livekit.agents.llm import ChatContext, Tool, ToolChoice
from livekit.agents.types import NOT_GIVEN, NotGivenOr
from livekit.plugins import openai


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One per process, made in prewarm (the openai provider's): each HTTP client would
    otherwise read the CA bundle again, about 25 ms of CPU with the GIL held at every call's
    start (livekit's loop monitor saw 100-200 ms stalls there on a busy core)."""
    return httpx.create_ssl_context()


class EndpointLLM(openai.LLM):
    """The openai plugin with a per-endpoint timeout.

    livekit's FallbackAdapter applies one ``attempt_timeout`` to every LLM; each kubevox
    endpoint has its own ``timeoutSeconds``, which this applies to every request it serves.
    """

    def __init__(self, *, timeout_seconds: float, **kwargs: Any) -> None:
        timeout = kwargs.pop("timeout")
        client = openai_sdk.AsyncClient(
            api_key=kwargs["api_key"],
            base_url=kwargs.get("base_url") or None,
            max_retries=0,
            # The plugin's own client, but on the process's one TLS context.
            http_client=httpx.AsyncClient(
                verify=tls_context(),
                timeout=timeout,
                follow_redirects=True,
                limits=httpx.Limits(
                    max_connections=50, max_keepalive_connections=50, keepalive_expiry=120
                ),
            ),
        )
        super().__init__(client=client, **kwargs)
        self._timeout_seconds = timeout_seconds

    async def aclose(self) -> None:
        await super().aclose()
        await self._client.close()  # ours, not the plugin's: it closes only clients it made

    @property
    def timeout_seconds(self) -> float:
        return self._timeout_seconds

    def chat(
        self,
        *,
        chat_ctx: ChatContext,
        tools: list[Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN,
        tool_choice: NotGivenOr[ToolChoice] = NOT_GIVEN,
        response_format: NotGivenOr[Any] = NOT_GIVEN,
        extra_kwargs: NotGivenOr[dict[str, Any]] = NOT_GIVEN,
    ) -> openai.llm.LLMStream:
        return super().chat(
            chat_ctx=chat_ctx,
            tools=tools,
            conn_options=dataclasses.replace(conn_options, timeout=self._timeout_seconds),
            parallel_tool_calls=parallel_tool_calls,
            tool_choice=tool_choice,
            response_format=response_format,
            extra_kwargs=extra_kwargs,
        )
