"""Models loaded once per pod for every job process (issue 20).

livekit's forkserver imports this module once, before it forks any job process
(``worker.JOB_MODULES``, the ``process`` executor); a call never imports it. What it loads, each
job process then shares copy-on-write, and its prewarm finds already loaded, instead of loading a
private copy per call.

It loads the knowledge bases' local embedding models: about 170 MiB of a job process's private
memory otherwise, most of what a call with cloud providers costs. The offline STT, LLM and TTS
models are not loaded here: their runtimes start thread pools as they load, and a fork carries
no thread over.

Nothing here may stop the forkserver, which would take every call with it: on any failure each
job process's prewarm loads its own, and reports a real error, as without this module.
"""

from __future__ import annotations

import logging
import os

from kubevox_api import CONFIG_ENV

from .config import load_runtime_config
from .knowledge.runtime import prewarm_embedders

log = logging.getLogger("kubevox.worker")


def load_shared_models() -> None:
    path = os.environ.get(CONFIG_ENV)
    if not path:
        return
    try:
        config = load_runtime_config(path)
        local = [kb for kb in config.knowledge_bases if kb.embedding.provider == "local"]
        # One ONNX Runtime thread: a pool's threads would not exist in the forked job processes.
        prewarm_embedders(local, os.environ, threads=1)
    except Exception:
        log.warning("shared models not loaded: each job process loads its own", exc_info=True)


load_shared_models()
