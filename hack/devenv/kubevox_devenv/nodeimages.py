"""Container images built on this machine, FROM scratch: no registry is reachable here.

An image is an OCI archive assembled by hand (one uncompressed tar layer, a config, a manifest
and an index), cached under ~/.cache/kubevox/node/images by the hash of what it holds, and
imported into the node's containerd with ``ctr images import``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .controlplane import REPO
from .procs import built, cache_dir

PAUSE_SOURCE = REPO / "hack" / "node" / "pause.c"
COREDNS_BUILD = REPO / "hack" / "node" / "build-coredns.sh"


@dataclass(frozen=True)
class Image:
    ref: str  # e.g. localhost/kubevox/pause:3f2a...
    archive: Path  # an OCI archive `ctr images import` reads


def _blob(tar: tarfile.TarFile, data: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    info = tarfile.TarInfo(f"blobs/sha256/{digest}")
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))
    return {"digest": f"sha256:{digest}", "size": len(data)}


def _layer(files: dict[str, Path]) -> bytes:
    """A reproducible tar of ``files`` (path in the image -> file here), all owned by root."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, source in sorted(files.items()):
            data = source.read_bytes()
            info = tarfile.TarInfo(name.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), 0o755, 0
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def write_oci_archive(
    out: Path, ref: str, files: dict[str, Path], entrypoint: list[str], ports: tuple[str, ...] = ()
) -> None:
    """One-layer image FROM scratch holding ``files``, named ``ref`` when imported."""
    layer = _layer(files)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Entrypoint": entrypoint,
            "ExposedPorts": {p: {} for p in ports},
            "Env": ["PATH=/"],
        },
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]},
        "history": [{"created_by": "kubevox_devenv.images (FROM scratch)"}],
    }
    tmp = out.with_suffix(f".tmp{os.getpid()}")
    with tarfile.open(tmp, "w") as tar:
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                **_blob(tar, json.dumps(config).encode()),
            },
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", **_blob(tar, layer)}
            ],
        }
        index = {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    **_blob(tar, json.dumps(manifest).encode()),
                    "platform": {"architecture": "amd64", "os": "linux"},
                    # containerd names the image after this annotation.
                    "annotations": {
                        "io.containerd.image.name": ref,
                        "org.opencontainers.image.ref.name": ref.rsplit(":", 1)[1],
                    },
                }
            ],
        }
        for name, doc in (("oci-layout", {"imageLayoutVersion": "1.0.0"}), ("index.json", index)):
            data = json.dumps(doc).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    tmp.rename(out)


def _digest(*paths: Path) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def pause_image() -> Image:
    """The pod sandbox image: hack/node/pause.c, static, cached by the source's hash."""
    tag = _digest(PAUSE_SOURCE, Path(__file__))
    directory = cache_dir() / "node" / "images"
    image = Image(f"localhost/kubevox/pause:{tag}", directory / f"pause-{tag}.tar")
    if not image.archive.exists():
        directory.mkdir(parents=True, exist_ok=True)
        binary = directory / f"pause-{tag}.bin"
        subprocess.run(
            ["gcc", "-static", "-Os", "-Wall", "-o", str(binary), str(PAUSE_SOURCE)], check=True
        )
        write_oci_archive(image.archive, image.ref, {"/pause": binary}, ["/pause"])
        binary.unlink()
    return image


def coredns_image() -> Image:
    """CoreDNS with the plugins of the node's Corefile (hack/node/build-coredns.sh), alone in
    an image."""
    binary = built(COREDNS_BUILD)
    version = binary.parent.name.removeprefix("coredns-")  # v1.15.0-kubevox-<build's hash>
    tag = f"{version}-{_digest(binary, Path(__file__))[:8]}"
    image = Image(
        f"localhost/kubevox/coredns:{tag}",
        binary.parent / f"coredns-{tag}.oci.tar",
    )
    if not image.archive.exists():
        write_oci_archive(
            image.archive, image.ref, {"/coredns": binary}, ["/coredns"], ("53/udp", "53/tcp")
        )
    return image
