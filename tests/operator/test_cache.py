"""The watch cache: newest body wins, and label lookups follow relabels and deletions."""

from __future__ import annotations

from typing import Any

from kubevox_operator.cache import Cache
from kubevox_operator.store import merge_patch


def pod(name: str, rv: int, ns: str = "team", **labels: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": f"uid-{name}",
            "resourceVersion": str(rv),
            "labels": labels,
            "managedFields": [{"manager": "kube-controller-manager"}],
        }
    }


def names(objs: list[dict[str, Any]]) -> list[str]:
    return [o["metadata"]["name"] for o in objs]


def test_label_lookup_follows_puts_relabels_and_deletes() -> None:
    cache = Cache()
    cache.put("Pod", pod("b", 1, agent="support"))
    cache.put("Pod", pod("a", 2, agent="support"))
    cache.put("Pod", pod("c", 3, agent="sales"))
    cache.put("Pod", pod("d", 4, ns="other", agent="support"))
    assert names(cache.with_label("Pod", "team", "agent", "support")) == ["a", "b"]
    assert "managedFields" not in cache.get("Pod", "team", "a")["metadata"]  # type: ignore[index]

    cache.put("Pod", pod("a", 5, agent="sales"))  # relabelled
    assert names(cache.with_label("Pod", "team", "agent", "support")) == ["b"]
    assert names(cache.with_label("Pod", "team", "agent", "sales")) == ["a", "c"]

    cache.put("Pod", pod("c", 2, agent="support"))  # a stale event: the newer body stays
    assert names(cache.with_label("Pod", "team", "agent", "sales")) == ["a", "c"]

    cache.delete("Pod", "team", "a")
    assert names(cache.with_label("Pod", "team", "agent", "sales")) == ["c"]
    assert cache.with_label("Pod", "team", "agent", "nobody") == []
    assert names(cache.with_label("Pod", "other", "agent", "support")) == ["d"]


def test_a_pods_spec_is_not_kept_its_status_is() -> None:
    cache = Cache()
    body = {**pod("a", 1, agent="support"), "spec": {"containers": [{"name": "worker"}]}}
    body["status"] = {"phase": "Running", "containerStatuses": [{"name": "worker", "ready": True}]}
    cache.put("Pod", body)
    kept = cache.get("Pod", "team", "a")
    assert kept is not None
    assert "spec" not in kept
    assert kept["status"]["containerStatuses"][0]["ready"] is True
    cache.put("Deployment", {**pod("a", 1), "spec": {"replicas": 2}})
    deployment = cache.get("Deployment", "team", "a")  # other kinds keep it: it is compared
    assert deployment is not None
    assert deployment["spec"] == {"replicas": 2}


def test_a_status_patch_removes_what_the_new_status_no_longer_has_at_any_depth() -> None:
    current = {"phase": "A", "rollout": {"phase": "Progressing", "canaryHash": "x", "step": 1}}
    wanted = {"rollout": {"phase": "Promoted"}}
    assert merge_patch(current, wanted) == {
        "phase": None,
        "rollout": {"phase": "Promoted", "canaryHash": None, "step": None},
    }
