"""Structured JSON logs: one object per line, with the kopf object reference when there is one."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        ref = getattr(record, "k8s_ref", None)
        if ref:
            out["object"] = ref
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def setup(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Python's warnings (a library's InsecureKeyLengthWarning, a DeprecationWarning) would go
    # raw to stderr, breaking the one-JSON-object-per-line stream: logged like the rest.
    logging.captureWarnings(True)
    # kopf logs every watch event at debug; keep its info and above.
    logging.getLogger("kopf").setLevel(max(logging.INFO, root.level))
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # "Handler succeeded" for every watch event: noise at scale.
    logging.getLogger("kopf.objects").setLevel(max(logging.WARNING, root.level))
