"""The WordPiece tokenizer of all-MiniLM-L6-v2, shared by chunking and the local embedder."""

from __future__ import annotations

import functools
from importlib import resources

from tokenizers import Tokenizer


@functools.cache
def wordpiece() -> Tokenizer:
    """A fresh-config tokenizer without padding or truncation (callers set what they need)."""
    data = resources.files(__package__).joinpath("data/minilm-tokenizer.json").read_text()
    tok = Tokenizer.from_str(data)
    tok.no_padding()
    tok.no_truncation()
    return tok
