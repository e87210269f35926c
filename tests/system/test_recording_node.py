"""Call recordings on the real node: the offline sample with ``spec.recording`` (consent
``notice``: every call is recorded from the notice on) in a namespace of its own, applied with
kubectl through the Helm-installed operator. The worker pod uploads a caller's call, both
sides, to an S3-compatible server on the host (S3Proxy, on the bridge's address the pods reach),
with the key pair the operator put in its environment from a Secret; then the operator's expiry
CronJob, run now as a Job pod, deletes it once it is older than ``retentionDays``."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubevox_api import contract
from kubevox_devenv import install as installmod
from kubevox_devenv.fleet import sample_for_this_node
from kubevox_devenv.nodenet import NODE_IP
from kubevox_devenv.s3 import S3Server

from agent_runtime.caller import SimulatedCall
from agent_runtime.caller.audio import synthesize
from tests.support.recordings import channel_levels, stored

from .conftest import System, await_until, wait_until
from .helpers import PHARMACY, condition

BUCKET = "node-calls"
NOTICE = "This call is recorded to improve our service."
RETENTION_DAYS = 7


@pytest.fixture(scope="module")
def storage(system: System) -> Iterator[S3Server]:
    """On the node's bridge address (it exists while the node does): the pods reach it."""
    with S3Server(host=NODE_IP) as s3:
        s3.make_bucket(BUCKET)
        yield s3


@pytest.fixture(scope="module")
def recording_namespace(system: System, storage: S3Server) -> Iterator[str]:
    ns = f"rec-{uuid.uuid4().hex[:6]}"
    installmod.dev_secrets(system.kube, ns, system.keys)
    keys = {"accessKey": storage.access_key, "secretKey": storage.secret_key}
    system.kube.apply([installmod.secret("call-storage", ns, keys)])
    docs = list(yaml.safe_load_all(sample_for_this_node()))
    agent = next(d for d in docs if d["kind"] == contract.VOICE_AGENT_KIND)
    agent["spec"]["scaling"] |= {"minReplicas": 1, "maxReplicas": 1}
    agent["spec"]["recording"] = {
        "consent": "notice",
        "notice": NOTICE,
        "retentionDays": RETENTION_DAYS,
        "storage": {
            "endpoint": storage.endpoint,
            "bucket": BUCKET,
            "accessKeyRef": {"name": "call-storage", "key": "accessKey"},
            "secretKeyRef": {"name": "call-storage", "key": "secretKey"},
        },
    }
    system.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump_all(docs))
    yield ns
    system.kubectl("delete", "namespace", ns, "--wait=false")


def _objects(s3: S3Server) -> list[str]:
    return [o.object_name or "" for o in s3.client().list_objects(BUCKET, recursive=True)]


@pytest.mark.timeout(900)
async def test_a_pod_uploads_the_call_and_the_expiry_deletes_it_once_old(
    system: System, storage: S3Server, recording_namespace: str
) -> None:
    ns = recording_namespace

    def ready_pod() -> dict[str, Any] | None:
        selector = f"{contract.LABEL_VOICE_AGENT}=offline"
        out = system.kubectl("get", "pods", "-n", ns, "-l", selector, "-o=json")
        ready = [
            p for p in json.loads(out)["items"] if condition(p, "Ready").get("status") == "True"
        ]
        return ready[0] if ready else None

    pod = wait_until("the recording agent's worker Ready", ready_pod, 600)
    ip = pod["status"]["podIP"]
    wait_until("the worker registered", lambda: installmod.worker_registered(ip), 300)

    call = SimulatedCall(installmod.host_caller(system.kube, system.workdir, ns, "offline"))
    try:
        result = await call.start()
        assert "recorded" in (result.greeting or "").lower(), result.greeting  # the notice
        await call.turn(synthesize(PHARMACY))
    finally:
        await call.hang_up()

    name, data = await await_until(
        "the call's recording in the bucket",
        lambda: stored(storage.client(), BUCKET, f"{ns}/offline/"),
        180,
    )
    channels, levels = channel_levels(data)
    assert channels == 2
    assert min(levels) > 0.005, levels  # the caller's question and the agent's voice

    # Older than retentionDays (dated back on the server's disk), then the expiry runs.
    then = time.time() - (RETENTION_DAYS + 1) * 86400
    os.utime(storage.basedir / BUCKET / name, (then, then))
    cronjob = "offline-recordings-expiry"
    system.kubectl("create", "job", "--from", f"cronjob/{cronjob}", "expire-now", "-n", ns)

    def finished() -> dict[str, Any] | None:
        job = system.get("job", "expire-now", ns)
        ended = [
            c
            for c in (job.get("status") or {}).get("conditions") or []
            if c["type"] in ("Complete", "Failed") and c["status"] == "True"
        ]
        return ended[0] if ended else None

    done = wait_until("the expiry Job finished", finished, 300)
    log = system.kubectl("logs", "-n", ns, "job/expire-now")
    assert done["type"] == "Complete", (done, log)
    assert json.loads(log.strip().splitlines()[-1])["deleted"] == [name], log
    assert storage.secret_key not in log
    assert name not in _objects(storage)
