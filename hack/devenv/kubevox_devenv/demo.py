"""`make run`: kubevox end to end on this machine, with nothing from the cloud.

Where this machine can run a node, the demo is kubevox_devenv.nodedemo (worker pods, the
autoscaler following calls). Elsewhere, or with KUBEVOX_RUN=control-plane:

1. A local Kubernetes control plane (the one of `make cluster-up`), the CRDs, the operator, and
   the samples: what a platform team sees with kubectl.
2. A call: LiveKit server, Redis with search, the sample KnowledgeBase ingested, a worker for
   the sample offline VoiceAgent (Whisper, SmolLM2, Piper — all in-process), and a simulated
   caller asking a question whose answer lives in the knowledge base.

The control plane keeps running afterwards so the objects can be explored; `make cluster-down`
stops it. Everything else stops when the demo ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import yaml
from kubevox_api import contract

from .cluster import up
from .controlplane import REPO, install_crds
from .knowledge import IngestError, ingest_manifest
from .livekit import LiveKitServer
from .procs import ManagedProcess, free_port
from .redis import RedisSearchServer
from .worker import AgentWorker, call_record

STATE = REPO / ".kubevox"
NAMESPACE = "kubevox-demo"
SAMPLES = REPO / "manifests" / "samples"
QUESTION = "When does the pharmacy open on Saturdays?"

# Placeholder credentials so the samples' Secret references resolve; nothing here is real.
DEMO_SECRETS = {
    "livekit-credentials": {"apiKey": "demo-key", "apiSecret": "demo-secret-not-real"},
    "voice-providers": {"deepgram": "demo", "openai": "demo", "cartesia": "demo"},
    "redis": {"url": "redis://redis.kubevox-demo.svc:6379/0"},
    "sip-trunk-auth": {"username": "demo", "password": "demo"},
}


def _step(title: str) -> None:
    print(f"\n\033[1m==> {title}\033[0m", flush=True)


def _kubectl_argv(*args: str) -> list[str]:
    return [str(STATE / "kubectl"), f"--kubeconfig={STATE / 'kubeconfig'}", *args]


def kubectl(*args: str, input: str | None = None, show: bool = True) -> str:
    if show:
        print(f"$ kubectl {' '.join(args)}", flush=True)
    out = subprocess.run(_kubectl_argv(*args), input=input, capture_output=True, text=True)
    text = out.stdout if out.returncode == 0 else out.stderr
    if show:
        print(text.rstrip(), flush=True)
    return text


def _apply_secrets() -> None:
    items = [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "stringData": data,
        }
        for name, data in DEMO_SECRETS.items()
    ]
    faq = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "support-faq", "namespace": NAMESPACE},
        "data": {"faq.md": "# FAQ\nAppointments can be booked online or by phone."},
    }
    kubectl(
        "apply",
        "-f",
        "-",
        show=False,
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [*items, faq]}),
    )


@contextlib.contextmanager
def _operator(workdir: Path) -> Iterator[ManagedProcess]:
    env = {**os.environ, "KUBECONFIG": str(STATE / "kubeconfig")}
    proc = ManagedProcess(
        "kubevox-operator",
        [
            sys.executable,
            "-m",
            "kubevox_operator",
            "--standalone",
            "--log-format",
            "json",
            "--metrics-port",
            str(free_port()),
            "--liveness",
            "",
            "--resync-seconds",
            "10",
        ],
        workdir / "operator.log",
        env=env,
    )
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def _settled() -> bool:
    """Every VoiceAgent has its Deployment and a status for its current generation."""
    agents = json.loads(
        kubectl("get", contract.VOICE_AGENT_PLURAL, "-n", NAMESPACE, "-o", "json", show=False)
    )
    deployments = json.loads(
        kubectl("get", "deployments", "-n", NAMESPACE, "-o", "json", show=False)
    )
    names = {d["metadata"]["name"] for d in deployments["items"]}
    return bool(agents["items"]) and all(
        a.get("status", {}).get("observedGeneration") == a["metadata"]["generation"]
        and a["status"].get("conditions")
        and any(n.startswith(a["metadata"]["name"]) for n in names)
        for a in agents["items"]
    )


def platform_demo(workdir: Path) -> None:
    _step("Local Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager)")
    up(STATE, crds=False)

    _step("The kubevox CRDs, generated from the API's pydantic models")
    install_crds(lambda *a: subprocess.run(_kubectl_argv(*a), capture_output=True, text=True))
    kubectl("get", "crd", "-l", f"{contract.LABEL_PART_OF}={contract.APP_NAME}")

    _step("The operator, and the samples of manifests/samples")
    kubectl("create", "namespace", NAMESPACE, show=False)
    _apply_secrets()
    with _operator(workdir) as operator:
        kubectl("apply", "-n", NAMESPACE, "-f", str(SAMPLES))
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and operator.alive() and not _settled():
            time.sleep(1)
        if not operator.alive():
            print(operator.log_tail())
            raise SystemExit("the operator exited")

        _step("What the operator made of them (no kubelet here: pods are created, never run)")
        kubectl(
            "get",
            "deployments,hpa,services,pdb,configmaps,jobs",
            "-n",
            NAMESPACE,
            "-l",
            f"{contract.LABEL_MANAGED_BY}={contract.MANAGED_BY}",
        )
        kubectl("get", "voiceagents,knowledgebases", "-n", NAMESPACE)
        print("$ kubectl get voiceagent offline -o yaml  # its status", flush=True)
        agent = json.loads(
            kubectl("get", "voiceagent", "offline", "-n", NAMESPACE, "-o", "json", show=False)
        )
        print(yaml.safe_dump({"status": agent.get("status", {})}, sort_keys=False).rstrip())

    _step("A bad VoiceAgent is refused at admission, naming the field")
    bad = (SAMPLES / "offline-agent.yaml").read_text().split("---")[0]
    bad = bad.replace("name: offline", "name: too-small").replace(
        "minReplicas: 1", "minReplicas: 5"
    )
    print("$ kubectl apply -f -   # the offline sample with scaling.minReplicas 5 > maxReplicas 4")
    print(kubectl("apply", "-n", NAMESPACE, "-f", "-", input=bad, show=False).rstrip())


def call_demo(workdir: Path) -> int:
    from kubevox_api import KnowledgeBase, VoiceAgent, render_runtime_config

    from agent_runtime.caller import CallOptions, SimulatedCall
    from agent_runtime.caller.audio import synthesize
    from agent_runtime.caller.report import table

    agent_doc, kb_doc = yaml.safe_load_all((SAMPLES / "offline-agent.yaml").read_text())
    for doc in (agent_doc, kb_doc):
        doc["metadata"]["namespace"] = NAMESPACE

    _step("A call: Redis with search, and the sample KnowledgeBase ingested into it")
    with RedisSearchServer() as redis, LiveKitServer(redis_url=redis.url) as livekit:
        print(f"$ kubevox-agent ingest -f {kb_doc['metadata']['name']}.yaml --redis-url ...")
        try:
            result = ingest_manifest(kb_doc, redis.url, workdir)
        except IngestError as e:
            print(e)
            return 1
        print(
            f"indexed {result['documents']} document(s), {result['chunks']} chunk(s) "
            f"in {result['durationSeconds']:.1f} s"
        )

        _step(
            "LiveKit server, and a worker for the sample offline VoiceAgent "
            "(Whisper, SmolLM2-135M, Piper: no cloud)"
        )
        agent = VoiceAgent.model_validate(agent_doc)
        config = render_runtime_config(
            agent, {kb_doc["metadata"]["name"]: KnowledgeBase.model_validate(kb_doc)}
        )
        config_file = workdir / "agent.json"
        config_file.write_text(config.model_dump_json(by_alias=True))
        started = time.monotonic()
        worker = AgentWorker(
            config_file,
            {
                **livekit.env(),
                "KUBEVOX_KB_0_REDIS_URL": redis.url,
                "KUBEVOX_CPU_LOAD_WEIGHT": "0",
            },  # this machine also runs the caller
            workdir / "worker.log",
        ).start()
        print(
            f"worker registered with LiveKit as {config.agent_name!r} "
            f"after {time.monotonic() - started:.0f} s (models loaded once per process)"
        )
        try:
            _step(f"A simulated caller dials the agent and asks: {QUESTION!r}")
            options = CallOptions(
                url=livekit.url,
                api_key=livekit.api_key,
                api_secret=livekit.api_secret,
                agent_name=config.agent_name,
                reply_timeout=60,
                greeting_timeout=60,
            )
            call = asyncio.run(SimulatedCall(options).run([synthesize(QUESTION)]))
            print(table([call]))
            log = workdir / "worker.log"
            deadline = time.monotonic() + 30  # logged once the call's job has shut down
            record = None
            while record is None and time.monotonic() < deadline:
                record = call_record(log.read_text().splitlines(), call.room)
                time.sleep(0.5)
            print(f"\nthe call record, from the worker's log ({log}):")
            print(json.dumps(record, indent=2) if record else "(not logged within 30 s)")
            return 0 if call.error is None and all(t.heard for t in call.turns) else 1
        finally:
            worker.stop()


def main() -> int:
    from .node import why_not

    reason = why_not()
    if reason is None and os.environ.get("KUBEVOX_RUN") != "control-plane":
        from .nodedemo import main as node_demo

        return node_demo()
    print(
        f"no node on this machine ({reason or 'KUBEVOX_RUN=control-plane'}): the worker runs "
        "as a process beside a control plane",
        flush=True,
    )
    workdir = Path(tempfile.mkdtemp(prefix="kubevox-run-"))
    platform_demo(workdir)
    status = call_demo(workdir)
    print(
        "\nThe control plane keeps running. Explore it with:\n"
        f"  export KUBECONFIG={(STATE / 'kubeconfig').resolve()}\n"
        "  .kubevox/kubectl get kubevox -A\n"
        "Stop it with: make cluster-down"
    )
    return status


if __name__ == "__main__":
    sys.exit(main())
