"""A VoiceAgent's conversation tests (its VoiceAgentTests) → the ConfigMap of the suites and the
Job that holds their conversations with the agent's current configuration, in text mode.

One Job per run: a run is the pair (configuration hash, suites hash), so a new configuration or
an edited suite is a new Job, and an unchanged pair is never run twice. The Job reads the agent's
own ConfigMap and the suites ConfigMap, both updated in place: the report it leaves in its
termination message names the hashes it really ran, and the operator keeps only a report whose
hashes are the run's. The pod has no API credentials (no token mounted) and no LiveKit keys."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from kubevox_api import KnowledgeBase, VoiceAgent, contract
from kubevox_api.runtime_config import (
    LIVEKIT_API_KEY_ENV,
    LIVEKIT_API_SECRET_ENV,
    credential_env,
    render_runtime_config,
    stable_hash,
)
from kubevox_api.voiceagenttest import VoiceAgentTest, suites_hash

from .agent import config_document, worker_env, worker_service_account
from .common import (
    IGNORE_DISRUPTION,
    Obj,
    agent_labels,
    agent_metadata,
    agent_name,
    agent_namespace,
    child_name,
    fail_job_on_exit,
    labels,
    metadata,
    placement,
    restricted_container_security,
    restricted_pod_security,
    secret_env,
)
from .sizing import worker_resources

NOT_FOR_TESTS = frozenset({LIVEKIT_API_KEY_ENV, LIVEKIT_API_SECRET_ENV, "PROMETHEUS_MULTIPROC_DIR"})
"""Worker environment a text-mode run does not need or must not have: it joins no LiveKit room,
and its metrics stay in its one process (the multiprocess directory is the worker's to make)."""
CALL_EVENTS_ENV_PREFIX = "KUBEVOX_CALL_EVENTS_"
"""Nor the call events' outbox and sinks: a test's conversations are no calls."""


@dataclass
class TestRun:
    """The objects of one run of an agent's suites."""

    __test__ = False  # not a pytest test class

    run: str
    """Hash of (config hash, suites hash): the Job's label and name suffix."""
    config_hash: str
    suites_hash: str
    job_name: str
    objects: list[Obj] = field(default_factory=list)


def tests_config_map_name(agent: VoiceAgent) -> str:
    return child_name(agent_name(agent), "-tests")


def test_selector(agent: VoiceAgent) -> dict[str, str]:
    """The agent's test pods (not kubevox.dev/voiceagent, which selects its workers)."""
    return {
        contract.LABEL_NAME: contract.APP_NAME,
        contract.LABEL_COMPONENT: "test",
        contract.LABEL_AGENT_TEST: agent_name(agent),
    }


def is_test_job(job: Obj) -> bool:
    return (job["metadata"].get("labels") or {}).get(contract.LABEL_COMPONENT) == "test"


def suites_document(suites: list[VoiceAgentTest]) -> str:
    """The suites as the Job reads them: one YAML (JSON) document each, by name."""
    docs = [
        {
            "apiVersion": contract.API_VERSION,
            "kind": contract.VOICE_AGENT_TEST_KIND,
            "metadata": {"name": s.metadata.get("name", "")},
            "spec": s.spec.model_dump(by_alias=True, mode="json", exclude_none=True),
        }
        for s in sorted(suites, key=lambda s: str(s.metadata.get("name", "")))
    ]
    return "---\n".join(json.dumps(d, sort_keys=True) + "\n" for d in docs)


def _judge_key_env(suites: list[VoiceAgentTest]) -> list[Obj]:
    """The judges' API key: one variable per run, from the first suite (by name) whose judge
    has credentials (the suites of one agent share a judge account)."""
    for s in sorted(suites, key=lambda s: str(s.metadata.get("name", ""))):
        judge = s.spec.judge
        if judge is not None and judge.credentials is not None:
            ref = judge.credentials.secret_key_ref
            return [secret_env(credential_env("judge"), ref.name, ref.key)]
    return []


def build_test_run(
    agent: VoiceAgent,
    owner: Obj,
    suites: list[VoiceAgentTest],
    knowledge_bases: dict[str, KnowledgeBase],
    image: str,
    digest: str,
) -> TestRun:
    """The suites ConfigMap and the Job testing configuration ``digest`` of ``agent``."""
    name = agent_name(agent)
    tested = suites_hash(suites)
    run = stable_hash([digest, tested], 10)
    job = child_name(name, f"-test-{run}")
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": agent_metadata(agent, owner, tests_config_map_name(agent), "test"),
        # The configuration under test travels with the suites: the workers' ConfigMap holds
        # the stable configuration while a canary runs, and the canary's is another.
        "data": {
            contract.TESTS_FILE: suites_document(suites),
            contract.CONFIG_FILE: config_document(render_runtime_config(agent, knowledge_bases)),
        },
    }
    env = [
        e
        for e in worker_env(agent, knowledge_bases)
        if e["name"] not in NOT_FOR_TESTS and not e["name"].startswith(CALL_EVENTS_ENV_PREFIX)
    ]
    env += _judge_key_env(suites)
    container = {
        "name": contract.TEST_CONTAINER,
        "image": image,
        "command": [contract.RUNTIME_COMMAND],
        "args": [
            "test",
            "--config",
            f"{contract.TESTS_DIR}/{contract.CONFIG_FILE}",
            "-f",
            f"{contract.TESTS_DIR}/{contract.TESTS_FILE}",
            "--output",
            "json",
            "--report-file",
            contract.TERMINATION_LOG,
        ],
        "env": env,
        "terminationMessagePath": contract.TERMINATION_LOG,
        # A run that crashed leaves no report: the end of its log says why.
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "resources": worker_resources(agent),  # the same models as a worker's
        "securityContext": restricted_container_security(),
        "volumeMounts": [
            {"name": "tests", "mountPath": contract.TESTS_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": contract.TMP_DIR},
        ],
    }
    pod_labels = labels(
        "test", name, {contract.LABEL_AGENT_TEST: name, contract.LABEL_TEST_RUN: run}
    )
    pod_spec: Obj = {
        "restartPolicy": "Never",
        "serviceAccountName": worker_service_account(agent),
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": restricted_pod_security(),
        "containers": [container],
        "volumes": [
            {"name": "tests", "configMap": {"name": tests_config_map_name(agent)}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
        ],
        **placement(agent, affinity=False),
    }
    job_obj = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(
            job,
            agent_namespace(agent),
            owner,
            {**agent_labels(agent, "test"), contract.LABEL_TEST_RUN: run},
        ),
        "spec": {
            "backoffLimit": 2,
            "activeDeadlineSeconds": sum(s.spec.timeout_seconds for s in suites),
            # 1: a case failed, 2: the suites or config are not valid. A retry would say the
            # same; other exits (a crash, out of memory) are retried.
            "podFailurePolicy": {
                "rules": [fail_job_on_exit(contract.TEST_CONTAINER, 1, 2), IGNORE_DISRUPTION]
            },
            "template": {"metadata": {"labels": pod_labels}, "spec": pod_spec},
        },
    }
    return TestRun(run, digest, tested, job, [config_map, job_obj])
