"""Run a built image with runc, the runtime the node's containerd uses: an OCI bundle over a
buildah working container of the image (discarded afterwards), its own pid, mount, ipc, uts
and network namespaces (no network), no capabilities, no new privileges.

Not podman: on these machines runc refuses podman's RLIMIT_NPROC ("error setting rlimit type
6: operation not permitted") and crun refuses cgroups v1+v2 hybrid hosts."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubevox_devenv.images import Image, buildah

_ids = itertools.count()


@dataclass
class Run:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    user: tuple[int, int] | None = None  # default: the image's USER
    read_only: bool = True
    tmpfs: list[str] = field(default_factory=list)
    binds: dict[str, str] = field(default_factory=dict)  # host path -> read-only in container


def image_config(image: Image) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(
        buildah("inspect", "--type", "image", image.ref, capture=True)
    )["OCIv1"]["config"]
    return config


@contextlib.contextmanager
def _rootfs(image: Image) -> Iterator[Path]:
    ctr = buildah("from", "--pull=never", "--quiet", image.ref, capture=True).strip()
    try:
        yield Path(buildah("mount", ctr, capture=True).strip())
    finally:
        buildah("rm", ctr, capture=True)


def _spec(bundle: Path, rootfs: Path, config: dict[str, Any], run: Run) -> dict[str, Any]:
    subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True)
    spec: dict[str, Any] = json.loads((bundle / "config.json").read_text())
    image_env = dict(e.split("=", 1) for e in config.get("Env", []))
    uid, _, gid = config.get("User", "0:0").partition(":")
    user = run.user or (int(uid), int(gid or 0))
    spec["process"].update(
        terminal=False,
        args=run.argv,
        env=[f"{k}={v}" for k, v in {**image_env, **run.env}.items()],
        cwd=config.get("WorkingDir") or "/",
        user={"uid": user[0], "gid": user[1]},
        capabilities={k: [] for k in ("bounding", "effective", "permitted", "inheritable")},
        noNewPrivileges=True,
    )
    spec["root"] = {"path": str(rootfs), "readonly": run.read_only}
    spec["hostname"] = "kubevox"
    for path in run.tmpfs:  # emptyDir: empty, writable by the pod's user
        opts = ["nosuid", "nodev", "mode=1777"]
        spec["mounts"].append(
            {"destination": path, "type": "tmpfs", "source": "tmpfs", "options": opts}
        )
    for src, dst in run.binds.items():
        opts = ["rbind", "ro", "nosuid", "nodev"]
        spec["mounts"].append({"destination": dst, "type": "bind", "source": src, "options": opts})
    return spec


def run_image(image: Image, run: Run, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    state = Path(os.environ.get("XDG_RUNTIME_DIR", "/run")) / "kubevox-images" / "runc"
    with _rootfs(image) as rootfs, tempfile.TemporaryDirectory(prefix="kubevox-oci-") as tmp:
        bundle = Path(tmp)
        spec = _spec(bundle, rootfs, image_config(image), run)
        (bundle / "config.json").write_text(json.dumps(spec))
        name = f"kubevox-test-{os.getpid()}-{next(_ids)}"
        argv = ["runc", "--root", str(state), "run", "--bundle", str(bundle), name]
        try:
            return subprocess.run(
                argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
            )
        finally:
            subprocess.run(["runc", "--root", str(state), "delete", "--force", name],
                           capture_output=True)  # fmt: skip
