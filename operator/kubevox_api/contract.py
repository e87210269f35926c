"""The contract between the operator and the runtime image, named once.

The API's group, version and kinds, the labels and annotations, the pod's ports, paths and
environment: the operator and the runtime both import these names (``from kubevox_api.contract
import ...``), so the pod the operator builds and the process inside it can never disagree about
a port, a path or the metric the autoscaler reads. This module imports nothing: every other
module of kubevox_api may use it.
"""

from __future__ import annotations

from typing import Final

# --- The API -----------------------------------------------------------------------------------
API_VERSION: Final = "kubevox.dev/v1alpha1"
"""Written out (not joined from GROUP and VERSION): the models' Literal types take its value."""
GROUP: Final = API_VERSION.partition("/")[0]
VERSION: Final = API_VERSION.partition("/")[2]
VOICE_AGENT_KIND: Final = "VoiceAgent"
KNOWLEDGE_BASE_KIND: Final = "KnowledgeBase"
VOICE_AGENT_TEST_KIND: Final = "VoiceAgentTest"
VOICE_AGENT_PLURAL: Final = "voiceagents"
KNOWLEDGE_BASE_PLURAL: Final = "knowledgebases"
VOICE_AGENT_TEST_PLURAL: Final = "voiceagenttests"

# --- The runtime's configuration ---------------------------------------------------------------
CONFIG_ENV: Final = "KUBEVOX_CONFIG"
"""Environment variable with the path of the rendered config file in the worker pod."""
CONFIG_FILE: Final = "agent.json"
"""Key of the rendered config in the agent's ConfigMap (and its file name when mounted)."""

# --- The worker pod ----------------------------------------------------------------------------
ACTIVE_CALLS_METRIC: Final = "kubevox_active_calls"
"""Calls in progress per worker pod, the metric the autoscaler (HPA or KEDA ScaledObject) scales
on (exported by the worker on METRICS_PORT)."""
CALLS_TOTAL_METRIC: Final = "kubevox_calls_total"
TURNS_TOTAL_METRIC: Final = "kubevox_turns_total"
APOLOGIES_TOTAL_METRIC: Final = "kubevox_turn_apologies_total"
VOICE_TO_VOICE_METRIC: Final = "kubevox_turn_e2e_seconds"
"""Call metrics a canary rollout reads per configuration (label ``config_hash``)."""
WAITING_CALLS_METRIC: Final = "kubevox_waiting_calls"
"""Callers no worker has taken yet, per agent (exported by the operator, see waiting.py)."""
AGENT_CALLS_METRIC: Final = "kubevox_agent_calls"
"""Calls per agent as the operator counts them in one look: those in progress on its workers
that are not terminating (their pods' annotations) plus the callers waiting. The KEDA query
scales on it, so that a waiting call wakes an agent scaled to zero, and a call a worker has
just taken is never counted twice (as waiting in one scrape and active in another)."""
HEALTH_PORT: Final = 8081
"""LiveKit Agents' health server: ``/`` answers 503 once the connection to LiveKit has failed
(and 200 already in the moment before registration: ``kubevox_worker_registered`` is exact)."""
HEALTH_PORT_NAME: Final = "health"
METRICS_PORT: Final = 9100
"""Prometheus exposition of the worker (``/metrics``)."""
METRICS_PORT_NAME: Final = "metrics"

CONFIG_DIR: Final = "/etc/kubevox"
CONFIG_PATH: Final = f"{CONFIG_DIR}/{CONFIG_FILE}"
"""Where the agent's ConfigMap is mounted; also in env KUBEVOX_CONFIG."""
RUNTIME_COMMAND: Final = "kubevox-agent"
WORKER_ARGS: Final = ("start", "--config", CONFIG_PATH)

ROLLOUT_DIR: Final = "/etc/kubevox-rollout"
ROLLOUT_FILE: Final = "split.json"
"""ConfigMap ``<agent>-rollout``, mounted (optional) in both pools of a Canary agent: which
share of new calls each pool takes (agent_runtime/traffic_split.py)."""
ROLLOUT_TRACK_ENV: Final = "KUBEVOX_ROLLOUT_TRACK"
"""``canary`` in the canary pool's pods; absent (stable) elsewhere."""
CONFIG_HASH_ATTRIBUTE: Final = "kubevox.dev/config-hash"
"""Set by the worker on its room participant: the configuration that serves the call."""
OVERFLOW_ATTRIBUTE: Final = "kubevox.dev/overflow"
"""Set (``"true"``) by a stable worker on its room participant when it took a call of the
canary's share that had waited for the canary's workers (agent_runtime/traffic_split.py)."""

TMP_DIR: Final = "/tmp"
RUN_DIR: Final = "/var/run/kubevox"
"""Writable in-memory dir (the root filesystem is read-only)."""
PROMETHEUS_MULTIPROC_DIR: Final = f"{RUN_DIR}/prometheus"

POD_NAME_ENV: Final = "POD_NAME"
POD_NAMESPACE_ENV: Final = "POD_NAMESPACE"
"""Downward-API env vars: the worker patches its own pod's annotations through them."""

DELETION_COST_ANNOTATION: Final = "controller.kubernetes.io/pod-deletion-cost"
AGENT_NAME_ATTRIBUTE: Final = "lk.agent.name"
"""Set by LiveKit Agents on the room participant of a worker's job: which agent it serves."""
ACTIVE_CALLS_ANNOTATION: Final = f"{GROUP}/active-calls"
"""The worker keeps both annotations of its own pod equal to its active calls (see
docs/operator.md, "Pod deletion cost"); the operator sums the second into status.activeCalls."""
DISPATCHES_ANNOTATION: Final = f"{GROUP}/dispatches"
"""The LiveKit dispatch ids of the worker's calls in progress, comma-separated, written with the
two above: a call whose dispatch a worker holds is no longer waiting, even before its agent has
joined the room (see waiting.py)."""
CONFIG_HASH_ANNOTATION: Final = f"{GROUP}/config-hash"
WORKER_CLUSTER_ROLE: Final = "kubevox-agent-worker"
"""ClusterRole (manifests/base/rbac.yaml) bound per VoiceAgent to its worker ServiceAccount."""

DRAIN_MARGIN_SECONDS: Final = 30
"""terminationGracePeriodSeconds = drainTimeoutSeconds + this: the drain always completes."""

# --- The web gateway (spec.web) ---------------------------------------------------------------
WEB_PORT: Final = 8080
"""The gateway's HTTP port in its pod: the call page, ``POST /v1/calls``, ``/healthz``."""
WEB_PORT_NAME: Final = "http"
WEB_SERVICE_PORT: Final = 80
WEB_ARGS: Final = ("web", "--config", CONFIG_PATH, "--port", str(WEB_PORT))
WEB_SHARED_KEY_ENV: Final = "KUBEVOX_WEB_SHARED_KEY"
"""The value of spec.web.auth.sharedKeySecretRef, from its Secret."""

# --- The ingestion Job -------------------------------------------------------------------------
INGEST_CONTAINER: Final = "ingest"
KB_MANIFEST_DIR: Final = "/etc/kubevox"
KB_MANIFEST_FILE: Final = "knowledgebase.yaml"
SOURCES_DIR: Final = f"{RUN_DIR}/sources"
"""ConfigMap sources at <dir>/configmap/<name>/<key>, Secrets at <dir>/secret/<name>/<key>."""
TERMINATION_LOG: Final = "/dev/termination-log"
"""``kubevox-agent ingest --termination-log`` writes its result JSON here; the operator reads it
from the pod's ``state.terminated.message``."""
REDIS_URL_ENV: Final = "REDIS_URL"

# --- The conversation-test Job (VoiceAgentTest) ---------------------------------------------------
TEST_CONTAINER: Final = "test"
TESTS_DIR: Final = "/etc/kubevox-tests"
TESTS_FILE: Final = "suites.yaml"
"""The agent's VoiceAgentTests, one YAML document each, in the tests ConfigMap."""
EMBEDDING_API_KEY_ENV: Final = "KUBEVOX_EMBEDDING_API_KEY"
INGEST_ALLOWED_CIDRS_ENV: Final = "KUBEVOX_INGEST_ALLOWED_CIDRS"
"""The operator's allow list of internal networks URL sources may reach (operator flag
``--ingest-allowed-cidrs``), passed to the ingestion Job in this variable."""
KNOWLEDGE_INDEX_FORMAT: Final = 2
"""The layout of a knowledge base's Redis index (its schema, the fields of its passages, what
its metadata records). Ingestion hashes it with the content, and the operator with the inputs
it hashes to decide on a Job: a new layout re-indexes every KnowledgeBase once, the old index
serving until the new one replaces it. 2: per-passage languages (``language`` and RediSearch's
``LANGUAGE_FIELD``), passages indexed as ``agent_runtime.text.index_text`` writes them."""
INGEST_OOM_EXIT_CODE: Final = 137
"""SIGKILL, what the kernel's OOM killer leaves: a rerun with the same sources would die again."""

# --- Labels ------------------------------------------------------------------------------------
APP_NAME: Final = "kubevox"
"""The value of app.kubernetes.io/name and app.kubernetes.io/part-of on what kubevox makes."""
MANAGED_BY: Final = "kubevox-operator"
LABEL_NAME: Final = "app.kubernetes.io/name"
LABEL_INSTANCE: Final = "app.kubernetes.io/instance"
LABEL_COMPONENT: Final = "app.kubernetes.io/component"
LABEL_PART_OF: Final = "app.kubernetes.io/part-of"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
LABEL_VOICE_AGENT: Final = f"{GROUP}/voiceagent"
LABEL_KNOWLEDGE_BASE: Final = f"{GROUP}/knowledgebase"
LABEL_WEB_GATEWAY: Final = f"{GROUP}/web-gateway"
"""On a VoiceAgent's web gateway pods, instead of kubevox.dev/voiceagent: that label selects
the agent's workers (their Deployment, PDB and metrics Service, the active-call count)."""
LABEL_AGENT_TEST: Final = f"{GROUP}/agent-test"
"""On a VoiceAgent's conversation-test pods, instead of kubevox.dev/voiceagent (for the same
reason as the web gateway's): the agent's name."""
LABEL_RECORDINGS: Final = f"{GROUP}/recordings"
"""On a VoiceAgent's recordings-expiry pods, instead of kubevox.dev/voiceagent (for the same
reason as the web gateway's): the agent's name."""
LABEL_TEST_RUN: Final = f"{GROUP}/test-run"
"""On a test Job and its pods: the run, a hash of the agent configuration and suites tested."""
LABEL_CONFIG_HASH: Final = f"{GROUP}/config-hash"
"""On a VoiceAgent's ControllerRevision: the configuration whose spec it keeps."""
LABEL_TRACK: Final = f"{GROUP}/track"
"""``canary`` on the canary pool's pods and Deployment (their selector has it; the stable pool's
selector, older and immutable, does not)."""
LABEL_CONTENT_HASH: Final = f"{GROUP}/content-hash"
"""On an ingestion Job: the hash of the KnowledgeBase's sources and settings it indexes."""
LABEL_INGEST_RUN: Final = f"{GROUP}/ingest-run"
"""On an ingestion Job: which run (a forced refresh) of those contents it is."""
SIP_FINALIZER: Final = f"{GROUP}/sip"
"""The operator's finalizer, only on VoiceAgents with telephony: LiveKit state (the SIP trunk and
dispatch rule) is the one thing garbage collection cannot remove."""
FIELD_MANAGER: Final = "kubevox-operator"
