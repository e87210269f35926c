"""Bounding what the language model sees of a long call.

livekit keeps the whole conversation and sends all of it on every turn: an hour's call would
outgrow any model's window (the local model's slot holds 2,048 tokens) and make every answer
slower and dearer. Each turn's prompt keeps the instructions and the greeting, then the most
recent caller turns that fit the budget; the session's own history (the call record, the
transcript) is not touched.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubevox_api import VoiceAgentSpec
from livekit.agents import llm

from .plugins.local_llm import DEFAULT_CONTEXT_BUDGET, history_token_budget
from .text import estimate_tokens


@dataclass(frozen=True)
class HistoryBudget:
    max_turns: int
    """Caller turns kept (the current one included)."""
    max_tokens: int | None = None
    """Estimated tokens of the whole prompt (None: no token bound)."""


def history_budget(spec: VoiceAgentSpec) -> HistoryBudget:
    """The spec's bounds: ``maxHistoryTurns``, and ``maxHistoryTokens`` or else the smallest
    window among the agent's models (a fallback serves the same conversation)."""
    tokens: list[int] = []
    if spec.max_history_tokens is not None:
        tokens.append(spec.max_history_tokens)
    for endpoint in (spec.llm, *spec.llm.fallbacks):
        if endpoint.provider == "local":
            excerpts = endpoint.options.get("context_budget", DEFAULT_CONTEXT_BUDGET)
            tokens.append(history_token_budget(endpoint.max_tokens, context_budget=int(excerpts)))
    return HistoryBudget(spec.max_history_turns, min(tokens) if tokens else None)


def item_tokens(item: llm.ChatItem) -> int:
    """Estimated prompt tokens of one history item (text, tool call or tool output)."""
    if item.type == "message":
        return estimate_tokens(item.text_content or "") + 4  # role and template markers
    if item.type == "function_call":
        return estimate_tokens(item.name + item.arguments) + 4
    if item.type == "function_call_output":
        return estimate_tokens(item.output) + 4
    return 0  # handoffs and config updates are not sent as text


def _split_turns(
    items: list[llm.ChatItem], greeting: str | None
) -> tuple[list[llm.ChatItem], list[list[llm.ChatItem]]]:
    """The items before the caller's first message (instructions) and the greeting, wherever
    it landed (a caller who speaks over it is recorded first), then the turns: each caller
    message with everything after it up to the next one. A tool call and its output are never
    split apart this way."""
    head: list[llm.ChatItem] = []
    turns: list[list[llm.ChatItem]] = []
    for item in items:
        said = item.text_content if isinstance(item, llm.ChatMessage) else None
        if greeting and item.type == "message" and item.role == "assistant" and said == greeting:
            head.append(item)
            greeting = None  # the first one only
            continue
        if item.type == "message" and item.role == "user":
            turns.append([item])
        elif turns:
            turns[-1].append(item)
        else:
            head.append(item)
    return head, turns


LOW_WATER = 0.75
"""Share of the budget a cut leaves: the turns after it append to the same prefix, which
llama.cpp's prompt cache (and a hosted API's) reuses, instead of every turn shifting it."""


class HistoryWindow:
    """The part of a call's history each turn's prompt shows, within ``budget``.

    It remembers where the shown conversation starts, so successive prompts share their
    prefix; when a prompt would exceed the budget it moves the start forward, whole turns at
    a time, down to :data:`LOW_WATER` of the budget.
    """

    def __init__(self, budget: HistoryBudget, greeting: str | None = None) -> None:
        self.budget = budget
        self.greeting = greeting
        self._start: str | None = None  # id of the first shown caller message

    def _over(self, head: int, turns: list[int], low_water: bool) -> bool:
        share = LOW_WATER if low_water else 1.0
        if len(turns) > max(1, int(self.budget.max_turns * share)):
            return True
        limit = self.budget.max_tokens
        return limit is not None and head + sum(turns) > limit * share

    def __call__(self, chat_ctx: llm.ChatContext) -> llm.ChatContext:
        head, turns = _split_turns(list(chat_ctx.items), self.greeting)
        first = next((i for i, t in enumerate(turns) if t[0].id == self._start), 0)
        kept = turns[first:]
        head_cost = sum(item_tokens(i) for i in head)
        cost = [sum(item_tokens(i) for i in turn) for turn in kept]
        if self._over(head_cost, cost, low_water=False):
            # The current turn always stays, whatever it costs: it is what the model answers.
            while len(kept) > 1 and self._over(head_cost, cost, low_water=True):
                kept.pop(0)
                cost.pop(0)
        self._start = kept[0][0].id if kept and len(kept) < len(turns) else None
        if len(kept) == len(turns) and all(
            a is b
            for a, b in zip(chat_ctx.items, [*head, *(i for t in kept for i in t)], strict=True)
        ):
            return chat_ctx
        return llm.ChatContext([*head, *(i for turn in kept for i in turn)])


def prompt_tokens(chat_ctx: llm.ChatContext) -> int:
    """Estimated tokens of a whole prompt (what :func:`bound_history` bounds)."""
    return sum(item_tokens(i) for i in chat_ctx.items)
