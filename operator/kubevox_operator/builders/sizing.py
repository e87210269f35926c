"""A worker pod's resources: what spec.resources sets, the rest sized for the agent's calls
(kubevox_api/sizing.py), and whether the result holds scaling.maxCallsPerPod calls."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kubernetes.utils.quantity import parse_quantity
from kubevox_api import VoiceAgent, sizing

Obj = dict[str, Any]
MIB = Decimal(2**20)


def worker_resources(agent: VoiceAgent) -> Obj:
    """spec.resources, each amount it leaves unset sized from the spec; a derived request never
    exceeds a limit that is set, nor a derived limit a request that is."""
    given = agent.spec.resources.to_k8s()
    requests: Obj = dict(given.get("requests") or {})
    limits: Obj = dict(given.get("limits") or {})
    size = agent.spec.pod_size()
    if "cpu" not in requests:
        requests["cpu"] = _least(size.cpu, limits.get("cpu"))
    if "memory" not in requests:
        requests["memory"] = _least(size.memory_request, limits.get("memory"))
    if "memory" not in limits:
        limits["memory"] = _most(size.memory_limit, requests["memory"])
    return {"requests": requests, "limits": limits}


def _quantity(amount: str) -> Decimal:
    value: Decimal = parse_quantity(amount)  # type: ignore[no-untyped-call]
    return value


def _least(derived: str, bound: str | None) -> str:
    return bound if bound is not None and _quantity(bound) < _quantity(derived) else derived


def _most(derived: str, floor: str) -> str:
    return floor if _quantity(floor) > _quantity(derived) else derived


@dataclass(frozen=True)
class _Bound:
    what: str
    """``spec.resources.limits.memory 2Gi``: the amount that bounds the calls."""
    budget: float
    """What the calls may use by it: cores, or MiB of working set."""


def _bound(resources: Obj, name: str, unit: Decimal, shares: tuple[float, float]) -> _Bound:
    """The limit if set, else the request, times its share (``shares``: of a limit, of a
    request) that the calls may use."""
    for kind, share in zip(("limits", "requests"), shares, strict=True):
        amount = (resources.get(kind) or {}).get(name)
        if amount is not None:
            usable = float(_quantity(amount) / unit) * share
            return _Bound(f"spec.resources.{kind}.{name} {amount}", usable)
    return _Bound("", math.inf)


def resources_fit(agent: VoiceAgent, resources: Obj) -> tuple[bool, str, str]:
    """The ResourcesFit condition: do the pod's resources hold maxCallsPerPod calls by the
    measured figures? Their CPU below CPU_FULL of the pod's (its limit, else its request); their
    working set below MEMORY_FULL of the memory limit (where the worker stops taking calls),
    else below the request."""
    spec = agent.spec
    want = spec.scaling.max_calls_per_pod
    cpu = _bound(resources, "cpu", Decimal(1), (sizing.CPU_FULL, sizing.CPU_FULL))
    memory = _bound(resources, "memory", MIB, (sizing.MEMORY_FULL, 1.0))

    def held(cores: float, working_set_mib: float) -> int:
        return sizing.calls_held(
            spec.local_models, spec.scaling.executor, want, cores, working_set_mib
        )

    stack = f"{sizing.stack_of(spec.local_models)} providers, {spec.scaling.executor} executor"
    n = held(cpu.budget, memory.budget)
    if n >= want:
        return True, "ResourcesHoldMaxCalls", f"the resources hold {want} calls ({stack})"
    short = [cpu.what] if held(cpu.budget, math.inf) < want else []
    short += [memory.what] if held(math.inf, memory.budget) < want else []
    size = spec.pod_size()
    return (
        False,
        "ResourcesBelowMaxCalls",
        f"{' and '.join(short)} hold {n} of the {want} calls of spec.scaling.maxCallsPerPod "
        f"({stack}); {want} calls need requests.cpu {size.cpu} and limits.memory "
        f"{size.memory_limit} (docs/benchmarks.md, Capacity)",
    )
