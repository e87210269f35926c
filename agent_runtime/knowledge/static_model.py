"""A static embedding model distilled from the bundled all-MiniLM-L6-v2, Model2Vec style.

Every WordPiece token is run through the ONNX transformer once, as ``[CLS] token [SEP]``; its
output vector is kept, the matrix is reduced with PCA and each row is scaled by a Zipf/SIF
weight of its vocabulary rank. A passage's vector is then the mean of its tokens' rows: no
transformer at embedding time, thousands of passages per second on one core.

The build is deterministic and torch-free (onnxruntime + numpy) and takes about a minute on
2 cores, so it runs at install or image build time (agent_runtime/commands/build_static_model.py)::

    kubevox-agent build-static-model [--out DIR]

The matrix is cached under a key hashed from the source model, the tokenizer and the method, so
a changed source or method never reuses a stale matrix (and the model id, part of the content
hash, changes with it: such a change re-indexes).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt

from .errors import EmbeddingError
from .minilm import minilm_session, model_path
from .tokenizer import wordpiece

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Method:
    """Everything that shapes the matrix besides the source model; part of the cache key."""

    version: int = 1
    pooling: str = "token"  # the token's own output; the mean over [CLS] t [SEP] measured worse
    pca_dims: int = 256
    sif: float = 1e-4
    dtype: str = "float16"  # halves the file; no measurable effect on scores


METHOD = Method()
MODEL_DIR_ENV = "KUBEVOX_MODEL_DIR"
CLS, SEP, UNK = 101, 102, 100
_BATCH = 1024

Matrix = npt.NDArray[np.float32]


@functools.cache
def model_key() -> str:
    """Hash of what the matrix is derived from: ONNX weights, tokenizer, method."""
    h = hashlib.sha256(json.dumps(dataclasses.asdict(METHOD), sort_keys=True).encode())
    with model_path().open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    h.update(resources.files(__package__).joinpath("data/minilm-tokenizer.json").read_bytes())
    return h.hexdigest()[:16]


def file_name() -> str:
    return f"minilm-static-{model_key()}.npy"


def search_dirs() -> list[Path]:
    """Where a built matrix is looked for, in order: $KUBEVOX_MODEL_DIR, the Python environment
    (the image builds it there: the pod's root filesystem is read-only), the user's cache."""
    dirs = [Path(os.environ[MODEL_DIR_ENV])] if os.environ.get(MODEL_DIR_ENV) else []
    dirs.append(Path(sys.prefix) / "share" / "kubevox" / "models")
    try:
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    except (RuntimeError, KeyError):  # no HOME and no passwd entry (an arbitrary pod uid)
        return dirs
    dirs.append(cache / "kubevox" / "models")
    return dirs


def default_dir() -> Path:
    return search_dirs()[0 if os.environ.get(MODEL_DIR_ENV) else -2]


def find() -> Path | None:
    return next((d / file_name() for d in search_dirs() if (d / file_name()).is_file()), None)


def token_outputs(token_ids: Sequence[int], threads: int = 2) -> Matrix:
    """The transformer's output at each token's own position, for ``[CLS] token [SEP]``."""
    session = minilm_session(threads)
    ids = np.asarray(token_ids, np.int64)
    out = np.zeros((len(ids), 384), np.float32)
    for b in range(0, len(ids), _BATCH):
        tok = ids[b : b + _BATCH]
        x = np.stack([np.full_like(tok, CLS), tok, np.full_like(tok, SEP)], axis=1)
        feeds = {"input_ids": x, "attention_mask": np.ones_like(x), "token_type_ids": 0 * x}
        out[b : b + len(tok)] = session.run(None, feeds)[0][:, 1]
    return out


def pca(x: Matrix, dims: int) -> Matrix:
    """Project onto the top principal components; signs fixed so the result is reproducible."""
    centred = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
    comps = vt[:dims]
    comps *= np.sign(comps[np.arange(len(comps)), np.abs(comps).argmax(axis=1)])[:, None]
    out: Matrix = (centred @ comps.T).astype(np.float32)
    return out


def zipf_weights(n: int, sif: float) -> Matrix:
    """SIF weight ``a / (a + p(rank))`` with a Zipf estimate of p: frequent tokens count less.
    BERT's vocabulary is frequency-ordered from id 1996 on (characters and [unused] come first);
    treating the id as the rank measured as well as skipping those first ids."""
    inv = 1.0 / np.arange(2, n + 2, dtype=np.float64)
    p = inv / inv.sum()
    out: Matrix = (sif / (sif + p)).astype(np.float32)
    return out


def distill(token_ids: Sequence[int] | None = None, threads: int = 2) -> Matrix:
    """The static matrix: one row per token id (``token_ids``: a subset, for tests)."""
    vocab = wordpiece().get_vocab_size()
    ids = list(range(vocab)) if token_ids is None else list(token_ids)
    reduced = pca(token_outputs(ids, threads), METHOD.pca_dims)
    out: Matrix = reduced * zipf_weights(vocab, METHOD.sif)[ids][:, None]
    return out


def build(out_dir: Path | None = None, threads: int = 2) -> Path:
    """Distil and write the matrix atomically (concurrent builders never see half a file)."""
    target_dir = out_dir or default_dir()
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / file_name()
    matrix = distill(threads=threads).astype(METHOD.dtype)
    fd, tmp = tempfile.mkstemp(dir=target_dir, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        np.save(f, matrix)
    os.chmod(tmp, 0o644)  # mkstemp makes it 0600: the image's non-root user must read it
    os.replace(tmp, target)
    return target


def load() -> Matrix:
    """The matrix, built on demand when missing and some search dir is writable; otherwise a
    fast failure that says how to build it."""
    path = find()
    if path is None:
        log.warning("static embedding matrix missing: building it (about a minute)")
        errors = []
        for d in search_dirs():
            try:
                path = build(d)
                break
            except OSError as exc:
                errors.append(f"{d}: {exc.strerror or exc}")
        else:
            raise EmbeddingError(
                f"static embedding matrix {file_name()} not found and not buildable here "
                f"({'; '.join(errors)}); run `kubevox-agent build-static-model` at install or "
                "image build time"
            )
    matrix: Matrix = np.load(path).astype(np.float32)
    return matrix
