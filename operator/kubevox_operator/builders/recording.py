"""A VoiceAgent's recordings (``spec.recording``): the storage's key pair in the pods that need
it, and the daily CronJob that deletes the recordings older than ``retentionDays``.

The CronJob runs ``kubevox-agent recordings expire`` in the workers' image with the workers'
configuration (their ConfigMap), no ServiceAccount token, and an egress policy of its own (DNS
and the storage). Its pods do not carry kubevox.dev/voiceagent, which selects the workers.
"""

from __future__ import annotations

from kubevox_api import VoiceAgent, contract
from kubevox_api.runtime_config import stable_hash
from kubevox_api.voiceagent_recording import (
    STORAGE_ACCESS_KEY_ENV,
    STORAGE_SECRET_KEY_ENV,
    RecordingStorage,
)

from .common import (
    Obj,
    agent_metadata,
    agent_name,
    child_name,
    labels,
    livekit_env,
    placement,
    restricted_container_security,
    restricted_pod_security,
    secret_env,
)

EXPIRY_SUFFIX = "-recordings-expiry"
COMPONENT = "recordings"


def storage_key_env(storage: RecordingStorage) -> list[Obj]:
    """The storage's key pair, from its Secret keys (the workers' and the expiry's)."""
    return [
        secret_env(STORAGE_ACCESS_KEY_ENV, storage.access_key_ref.name, storage.access_key_ref.key),
        secret_env(STORAGE_SECRET_KEY_ENV, storage.secret_key_ref.name, storage.secret_key_ref.key),
    ]


def expiry_name(agent: VoiceAgent) -> str:
    return child_name(agent_name(agent), EXPIRY_SUFFIX)


def expiry_selector(agent: VoiceAgent) -> dict[str, str]:
    return {
        contract.LABEL_NAME: contract.APP_NAME,
        contract.LABEL_COMPONENT: COMPONENT,
        contract.LABEL_RECORDINGS: agent_name(agent),
    }


def expiry_schedule(agent: VoiceAgent) -> str:
    """Once a day, at a time of night drawn from the agent's name (01:00 to 05:59 UTC), so that
    a cluster's agents do not all list their buckets at once."""
    key = f"{agent.metadata.get('namespace')}/{agent_name(agent)}"
    minutes = int(stable_hash(key, 8), 16)
    return f"{minutes % 60} {1 + (minutes // 60) % 5} * * *"


def expiry_cronjob(agent: VoiceAgent, owner: Obj, image: str) -> Obj:
    recording = agent.spec.recording
    assert recording is not None
    pod_labels = {
        **labels(COMPONENT, agent_name(agent), {}),
        **expiry_selector(agent),
    }
    container = {
        "name": "expire",
        "image": agent.spec.image or image,
        "command": [contract.RUNTIME_COMMAND],
        "args": ["recordings", "expire"],
        # The config's path (and LiveKit's, unused), then the storage's key pair.
        "env": [
            *livekit_env(agent)[:1],
            *storage_key_env(recording.storage),
            {"name": "HOME", "value": contract.TMP_DIR},
        ],
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
        "securityContext": restricted_container_security(),
        "volumeMounts": [
            {"name": "config", "mountPath": contract.CONFIG_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": contract.TMP_DIR},
        ],
    }
    pod_spec: Obj = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": restricted_pod_security(),
        "containers": [container],
        "volumes": [
            {"name": "config", "configMap": {"name": child_name(agent_name(agent), "-config")}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
        ],
        **placement(agent, affinity=False),
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": agent_metadata(agent, owner, expiry_name(agent), COMPONENT),
        "spec": {
            "schedule": expiry_schedule(agent),
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 3600,
            "successfulJobsHistoryLimit": 1,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "spec": {
                    "backoffLimit": 2,
                    "activeDeadlineSeconds": 3600,
                    "template": {"metadata": {"labels": pod_labels}, "spec": pod_spec},
                }
            },
        },
    }
