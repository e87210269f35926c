"""``kubevox-agent ingest`` / ``query`` as the ingestion Job and a platform team run them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from kubevox_devenv.redis import RedisSearchServer

from .helpers import cli

pytestmark = pytest.mark.redis

MANIFEST = """\
apiVersion: kubevox.dev/v1alpha1
kind: KnowledgeBase
metadata: {name: concierge, namespace: hotel}
spec:
  sources:
    - name: faq
      configMap: {name: concierge-docs}
    - name: inline-note
      inline: "Pets are welcome for 15 euros per night."
  chunking: {sizeTokens: 128, overlapTokens: 16}
  store:
    redisUrlSecretRef: {name: redis, key: url}
"""


def test_ingest_then_query_from_the_command_line(
    redis_server: RedisSearchServer, tmp_path: Path
) -> None:
    (tmp_path / "kb.yaml").write_text(MANIFEST)
    docs = tmp_path / "mnt" / "configmap" / "concierge-docs"
    docs.mkdir(parents=True)
    (docs / "late-checkout.md").write_text(
        "# Late check-out\n\nLate check-out until 2 pm costs 30 euros."
    )
    env = {**os.environ, "REDIS_URL": redis_server.url}
    term = tmp_path / "termination-log"

    done = cli("ingest", "-f", str(tmp_path / "kb.yaml"), "--sources-dir", str(tmp_path / "mnt"),
               "--termination-log", str(term), env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["ok"]
    assert result["indexName"] == "kb_hotel_concierge"
    assert result["documents"] == 2
    assert result["chunks"] == 2
    assert result["sourceErrors"] == []
    assert json.loads(term.read_text())["contentHash"] == result["contentHash"]

    asked = cli("query", "-f", str(tmp_path / "kb.yaml"), "can I bring my dog?", env=env)
    assert asked.returncode == 0, asked.stderr
    assert "source=inline-note" in asked.stdout.split("[2]")[0]
    assert "Pets are welcome" in asked.stdout

    broken = cli("ingest", "-f", str(tmp_path / "kb.yaml"), env=env)  # ConfigMap not mounted
    assert broken.returncode == 1
    failed = json.loads(broken.stdout)
    assert not failed["ok"]
    assert failed["activeIndex"] == result["activeIndex"]
    assert failed["sourceErrors"][0]["source"] == "faq"
    assert "needs --sources-dir" in failed["sourceErrors"][0]["message"]
