"""What one VoiceAgent write costs the API server, next to one child apply.

    .venv/bin/python bench/crd_write_cost.py [--n 500] [--rounds 3]

The operator's run differs from the direct apply (operator_bench.py) by the VoiceAgents'
creation and one status patch per agent; this measures the API server's CPU seconds for N
concurrent VoiceAgent creates and N status patches (merge patch on /status, as the operator
does), for N ConfigMap server-side applies, and at the end for the children of N agents applied
as operator_bench.py's lower bound does, on a fresh local control plane. The VoiceAgent
is measured with three CRDs served side by side, to see what the cost follows:

* ``kubevox.dev``: the CRD as shipped (crds/);
* ``nocel.kubevox.dev``: the same schema without its CEL rules;
* ``tiny.kubevox.dev``: ``spec`` as an unchecked object (no schema, no defaults, no CEL).

Rounds alternate the variants so that all see the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import statistics
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml
from kubevox_api import VoiceAgent, contract
from kubevox_devenv.controlplane import ControlPlane
from kubevox_operator.builders import OperatorDefaults, build_agent_children
from kubevox_operator.kube import Kube
from operator_bench import agent, cpu_since, info, plane_cpu

REPO = Path(__file__).resolve().parents[1]
CRD = REPO / "crds" / "voiceagents.kubevox.dev.yaml"


def without_cel(node: Any) -> None:
    if isinstance(node, dict):
        node.pop("x-kubernetes-validations", None)
        for v in node.values():
            without_cel(v)
    elif isinstance(node, list):
        for v in node:
            without_cel(v)


def unchecked_spec(schema: dict[str, Any]) -> None:
    schema["properties"]["spec"] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    schema.pop("x-kubernetes-validations", None)


VARIANTS: dict[str, Callable[[dict[str, Any]], None] | None] = {
    contract.GROUP: None,
    f"nocel.{contract.GROUP}": without_cel,
    f"tiny.{contract.GROUP}": unchecked_spec,
}


def variant_crd(group: str, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    crd: dict[str, Any] = copy.deepcopy(yaml.safe_load(CRD.read_text()))
    crd["metadata"]["name"] = f"{contract.VOICE_AGENT_PLURAL}.{group}"
    crd["spec"]["group"] = group
    for version in crd["spec"]["versions"]:
        change(version["schema"]["openAPIV3Schema"])
    return crd


async def apiserver_cpu(plane: ControlPlane, work: Callable[[], Awaitable[Any]]) -> float:
    before = plane_cpu(plane)
    await work()
    return cpu_since(plane, before)["kube-apiserver"]


async def measure(
    plane: ControlPlane, workdir: Path, n: int, rounds: int
) -> dict[str, list[float]]:
    for group, change in VARIANTS.items():
        if change is not None:
            manifest = workdir / f"{group}.yaml"
            manifest.write_text(yaml.safe_dump(variant_crd(group, change)))
            plane.kubectl_run("apply", "--server-side", "-f", str(manifest))
            plane.kubectl_run(
                "wait",
                "--for=condition=Established",
                f"crd/{contract.VOICE_AGENT_PLURAL}.{group}",
                "--timeout=30s",
            )
    kube = Kube(info(plane.kubeconfig))
    ms: dict[str, list[float]] = {}
    try:
        for r in range(rounds):
            for group in VARIANTS:
                ns = f"{group.split('.')[0]}-{r}"
                plane.kubectl_run("create", "namespace", ns)
                plural = contract.VOICE_AGENT_PLURAL
                path = f"/apis/{group}/{contract.VERSION}/namespaces/{ns}/{plural}"

                def body(i: int, group: str = group, ns: str = ns) -> dict[str, Any]:
                    return {**agent(f"a{i}", ns), "apiVersion": f"{group}/{contract.VERSION}"}

                def creates(path: str = path, body: Any = body) -> Awaitable[Any]:
                    return asyncio.gather(*(kube.request("POST", path, body(i)) for i in range(n)))

                def patches(path: str = path) -> Awaitable[Any]:
                    status = {"status": {"observedGeneration": 1, "configHash": "x", "replicas": 0}}
                    return asyncio.gather(
                        *(
                            kube.request(
                                "PATCH",
                                f"{path}/a{i}/status",
                                status,
                                content_type="application/merge-patch+json",
                            )
                            for i in range(n)
                        )
                    )

                def applies(ns: str = ns) -> Awaitable[Any]:
                    cms = [
                        {
                            "apiVersion": "v1",
                            "kind": "ConfigMap",
                            "metadata": {"name": f"c{i}", "namespace": ns},
                            "data": {"runtime.json": "x" * 2000},
                        }
                        for i in range(n)
                    ]
                    return asyncio.gather(*(kube.apply(o) for o in cms))

                for what, work in (("create", creates), ("status patch", patches)):
                    cpu = await apiserver_cpu(plane, work)
                    ms.setdefault(f"{group} {what}", []).append(1000 * cpu / n)
                if group == contract.GROUP:
                    cpu = await apiserver_cpu(plane, applies)
                    ms.setdefault("ConfigMap apply", []).append(1000 * cpu / n)
                await asyncio.sleep(2)  # the watch cache and the GC settle between variants
        # Last (their Deployments keep the controller-manager busy for a while): one agent's
        # children, as the lower bound applies them, for the agents created in round 0.
        ns = "kubevox-0"
        path = f"/apis/{contract.API_VERSION}/namespaces/{ns}/{contract.VOICE_AGENT_PLURAL}"
        children = []
        for va in (await kube.request("GET", path))["items"]:
            built = build_agent_children(VoiceAgent.model_validate(va), va, {}, OperatorDefaults())
            children.extend(built.objects)

        def lower_bound() -> Awaitable[Any]:
            return asyncio.gather(*(kube.apply(o) for o in children))

        cpu = await apiserver_cpu(plane, lower_bound)
        ms[f"one agent's {len(children) // n} children applied"] = [1000 * cpu / n]
    finally:
        await kube.close()
    return ms


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=500, help="writes per measurement")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="kubevox-crd-cost-"))
    plane = ControlPlane(workdir / "cp")
    plane.start()
    try:
        plane.install_crds()
        ms = asyncio.run(measure(plane, workdir, args.n, args.rounds))
    finally:
        plane.stop()
    print(f"\n| write (N = {args.n}, {args.rounds} rounds) | API server CPU ms per write, median |")
    print("|---|---|")
    for what, values in ms.items():
        each = ", ".join(f"{v:.2f}" for v in values)
        print(f"| {what} | {statistics.median(values):.2f} ({each}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
