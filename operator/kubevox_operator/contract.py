"""The contract between the operator and the runtime image, named once.

The runtime imports these names too (``from kubevox_operator.contract import ...``), so the pod
the operator builds and the process inside it can never disagree about a port, a path or the
metric the autoscaler reads.
"""

from __future__ import annotations

from typing import Final

from .api import CONFIG_FILE

# --- The worker pod ----------------------------------------------------------------------------
ACTIVE_CALLS_METRIC: Final = "kubevox_active_calls"
"""Calls in progress per worker pod, the metric the autoscaler (HPA or KEDA ScaledObject) scales
on (exported by the worker on METRICS_PORT)."""
WAITING_CALLS_METRIC: Final = "kubevox_waiting_calls"
"""Callers no worker has taken yet, per agent (exported by the operator, see waiting.py): the
KEDA query adds them to the active calls, so that a call wakes an agent scaled to zero."""
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
ACTIVE_CALLS_ANNOTATION: Final = "kubevox.dev/active-calls"
"""The worker keeps both annotations of its own pod equal to its active calls (see
docs/operator.md, "Pod deletion cost"); the operator sums the second into status.activeCalls."""
CONFIG_HASH_ANNOTATION: Final = "kubevox.dev/config-hash"
WORKER_CLUSTER_ROLE: Final = "kubevox-agent-worker"
"""ClusterRole (manifests/base/rbac.yaml) bound per VoiceAgent to its worker ServiceAccount."""

DRAIN_MARGIN_SECONDS: Final = 30
"""terminationGracePeriodSeconds = drainTimeoutSeconds + this: the drain always completes."""

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
EMBEDDING_API_KEY_ENV: Final = "KUBEVOX_EMBEDDING_API_KEY"
INGEST_ALLOWED_CIDRS_ENV: Final = "KUBEVOX_INGEST_ALLOWED_CIDRS"
"""The operator's allow list of internal networks URL sources may reach (operator flag
``--ingest-allowed-cidrs``), passed to the ingestion Job in this variable."""
INGEST_OOM_EXIT_CODE: Final = 137
"""SIGKILL, what the kernel's OOM killer leaves: a rerun with the same sources would die again."""

# --- Labels ------------------------------------------------------------------------------------
MANAGED_BY: Final = "kubevox-operator"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
LABEL_VOICE_AGENT: Final = "kubevox.dev/voiceagent"
LABEL_KNOWLEDGE_BASE: Final = "kubevox.dev/knowledgebase"
FIELD_MANAGER: Final = "kubevox-operator"
