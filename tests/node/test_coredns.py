"""The node's CoreDNS is built with only the plugins its Corefile uses (hack/node/coredns/main.go,
hack/node/build-coredns.sh): the list and the Corefile never drift apart, the plugins run in
CoreDNS's own order, and the binary, run on the host against a control plane, answers cluster
names from the API server. None of this needs a node."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from pathlib import Path

import pytest
import yaml
from kubevox_devenv import node as nodemod
from kubevox_devenv.controlplane import ControlPlane
from kubevox_devenv.nodeimages import COREDNS_BUILD
from kubevox_devenv.procs import ManagedProcess, built, free_port, wait_for

SOURCE = COREDNS_BUILD.parent / "coredns"
# Directives whose plugin package is named otherwise (CoreDNS's plugin.cfg).
PACKAGES = {"prometheus": "metrics"}
# Built in although the Corefile does not use them, and why.
EXTRA = {"bind": "the host test below listens on 127.0.0.1 only"}


def corefile() -> str:
    """The Corefile of the coredns ConfigMap in hack/node/coredns.yaml."""
    for doc in yaml.safe_load_all(nodemod.COREDNS_MANIFEST.read_text()):
        if doc and doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "coredns":
            return str(doc["data"]["Corefile"])
    raise AssertionError(f"no coredns ConfigMap in {nodemod.COREDNS_MANIFEST}")


def corefile_directives(text: str) -> set[str]:
    """The first word of every line directly inside a server block."""
    found, depth = set(), 0
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if depth == 1 and words[0] != "}":
            found.add(words[0])
        depth += line.count("{") - line.count("}")
    assert depth == 0, "unbalanced braces in the Corefile"
    return found


def main_go() -> tuple[list[str], set[str]]:
    """(the directives main.go sets, in order; the plugin packages it imports)."""
    text = (SOURCE / "main.go").read_text()
    block = re.search(r"var directives = \[\]string\{(.*?)\n\}", text, re.S)
    assert block, "no `var directives = []string{...}` in main.go"
    directives = re.findall(r'"([a-z0-9_]+)"', block.group(1))
    packages = set(re.findall(r'_ "github\.com/coredns/coredns/plugin/([a-z0-9_]+)"', text))
    return directives, packages


def test_the_build_has_the_corefiles_plugins_and_no_others() -> None:
    directives, packages = main_go()
    assert len(directives) == len(set(directives)), directives
    used = corefile_directives(corefile())
    assert {"errors", "health", "ready", "kubernetes", "prometheus"} <= used  # the parser works
    assert set(directives) == used | set(EXTRA), (
        "hack/node/coredns/main.go must build exactly the plugins of hack/node/coredns.yaml's "
        f"Corefile (and {sorted(EXTRA)}): missing {sorted(used - set(directives))}, "
        f"unused {sorted(set(directives) - used - set(EXTRA))}"
    )
    assert packages == {PACKAGES.get(d, d) for d in directives}


def test_the_plugins_run_in_coredns_own_order() -> None:
    """A plugin sees the effects of those after it in the list (cache before kubernetes, ...):
    the order must be the one CoreDNS generates for its own build, of the version in go.mod."""
    out = subprocess.run(
        ["go", "mod", "download", "-json", "github.com/coredns/coredns"],
        cwd=SOURCE,
        check=True,
        capture_output=True,
        text=True,
    )
    upstream_file = Path(json.loads(out.stdout)["Dir"]) / "core/dnsserver/zdirectives.go"
    upstream = re.findall(r'^\t"([a-z0-9_]+)",$', upstream_file.read_text(), re.M)
    assert "kubernetes" in upstream
    directives, _ = main_go()
    assert directives == [d for d in upstream if d in directives]


@pytest.mark.cluster
@pytest.mark.timeout(1200)  # builds CoreDNS when `make node` has not (about 6 CPU-minutes)
def test_the_built_coredns_answers_from_the_api_server(
    control_plane: object, tmp_path: Path
) -> None:
    assert isinstance(control_plane, ControlPlane)
    binary = built(COREDNS_BUILD)
    # A directory of its own, apart from the full build's coredns-<version> of before.
    assert re.fullmatch(r"coredns-v[0-9.]+-kubevox-[0-9a-f]{12}", binary.parent.name)
    directives, _ = main_go()
    listed = subprocess.run(
        [str(binary), "-plugins"], check=True, capture_output=True, text=True
    ).stdout.split()
    assert set(directives) <= set(listed), listed

    # The node's own Corefile, on loopback ports, reaching the API server by a kubeconfig (in a
    # pod, CoreDNS is an in-cluster client). Each edit must apply, or this tests something else.
    dns, health, ready, metrics = free_port(), free_port(), free_port(), free_port()
    edits = [
        ("cluster.local:53 {", f"cluster.local:{dns} {{\n    bind 127.0.0.1"),
        (".:53 {", f".:{dns} {{\n    bind 127.0.0.1"),
        ("health :8080", f"health 127.0.0.1:{health}"),
        ("ready :8181", f"ready 127.0.0.1:{ready}"),
        ("prometheus :9153", f"prometheus 127.0.0.1:{metrics}"),
        (
            "kubernetes cluster.local {",
            f"kubernetes cluster.local {{\n        kubeconfig {control_plane.kubeconfig}",
        ),
    ]
    text = corefile()
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    (tmp_path / "Corefile").write_text(text)

    proc = ManagedProcess(
        "coredns", [str(binary), "-conf", str(tmp_path / "Corefile")], tmp_path / "coredns.log"
    )
    proc.start()
    try:
        # /ready may answer 200 before the first query is answered: wait for the answer.
        wait_for(
            "CoreDNS to answer from the API server",
            lambda: _resolve("kubernetes.default.svc.cluster.local", dns) == (0, ["10.0.0.1"]),
            60,
            proc.alive,
        )
        assert _ok(f"http://127.0.0.1:{ready}/ready")
        assert _ok(f"http://127.0.0.1:{health}/health")
        assert _resolve("missing.default.svc.cluster.local", dns)[0] == 3  # NXDOMAIN
        assert _resolve("example.com", dns)[0] == 3  # NXDOMAIN, by the template
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=5) as resp:
            body = resp.read().decode()
        stamp = binary.parent.name.rsplit("-", 1)[1]
        assert f'revision="kubevox-{stamp}"' in body  # coredns_build_info
    except BaseException:
        print(proc.log_tail())
        raise
    finally:
        proc.stop()


def _resolve(name: str, port: int) -> tuple[int, list[str]]:
    return nodemod.resolve(name, "127.0.0.1", timeout=1, port=port)


def _ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return bool(resp.status == 200)
