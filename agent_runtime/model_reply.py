"""Asking a language model for a whole reply held to a JSON schema, and reading the object out
of it: what the conversation tests' judge and the calls' analysis share."""

from __future__ import annotations

import json
import re
from typing import Any

from livekit.agents import NOT_GIVEN, llm

_OBJECT = re.compile(r"\{.*\}", re.S)


def json_schema_format(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` as an OpenAI ``response_format`` (structured outputs, strict): OpenAI holds
    its reply to it, and llama.cpp-based servers (the local model, vLLM, Ollama) turn it into a
    grammar, so even a small model answers with the object asked for, not prose."""
    return {"type": "json_schema", "json_schema": {"name": name, "strict": True, "schema": schema}}


def strict_object(properties: dict[str, Any]) -> dict[str, Any]:
    """An object schema as strict mode wants it: every key required, no other key (a value
    that may be absent is typed with ``null``)."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


VERDICT_SCHEMA = strict_object(
    {"verdict": {"type": "string", "enum": ["pass", "fail"]}, "reason": {"type": "string"}}
)
"""A verdict against a rubric, with its one-sentence reason: the judge's, and the analysis's
success evaluation."""


async def ask(
    model: llm.LLM[Any],
    chat_ctx: llm.ChatContext,
    response_format: dict[str, Any] | None = None,
) -> str:
    """The model's whole reply to ``chat_ctx`` (its streamed text, joined); with
    ``response_format``, an OpenAI ``response_format`` object, sent as the request's own."""
    parts = []
    # livekit's own response_format takes a pydantic type only: a schema built from the
    # agent's declaration goes as the request's extra field, as OpenAI reads it.
    extra = {"response_format": response_format} if response_format else NOT_GIVEN
    async with model.chat(chat_ctx=chat_ctx, extra_kwargs=extra) as stream:
        async for chunk in stream:
            if chunk.delta and chunk.delta.content:
                parts.append(chunk.delta.content)
    return "".join(parts)


def json_object(text: str) -> dict[str, Any] | None:
    """The JSON object in a model's reply (from its first ``{`` to its last ``}``: models wrap
    it in prose or code fences), or None."""
    match = _OBJECT.search(text)
    try:
        data = json.loads(match.group(0)) if match else None
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None
