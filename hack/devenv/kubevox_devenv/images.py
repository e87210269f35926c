"""The two container images, built with no image registry.

A base image comes from Debian's own packages (debootstrap), built once per recipe; the
operator and runtime Dockerfiles build on it with Debian's buildah (``--pull=never``). Each image
is keyed by a hash of what its Dockerfile copies and is written as a docker archive under
~/.cache/kubevox/images/: an unchanged tree finds its archive and builds nothing, and buildah's
layer cache keeps the Python dependencies across code changes. With a containerd socket, the
archives are imported into its ``k8s.io`` namespace for kubelet.

    python -m kubevox_devenv.images [--dir .kubevox] [NAME...]   # build; load if a node runs
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .procs import cache_dir

REPO = Path(__file__).resolve().parents[3]
CACHE = Path(os.environ.get("KUBEVOX_IMAGES_CACHE") or cache_dir() / "images")
STATE = REPO / ".kubevox"  # make cluster-up's state: its node's containerd is found there
REGISTRY = "kubevox.local"
DEBIAN_PACKAGES = ("buildah", "debootstrap", "runc")
# crun 1.8 refuses cgroups v1+v2 "hybrid" hosts (this kind of machine); runc runs there.
OCI_RUNTIME = os.environ.get("KUBEVOX_OCI_RUNTIME", "runc")

# The base image's recipe: its hash names the image, so any change here rebuilds it.
SUITE = "bookworm"
MIRROR = os.environ.get("KUBEVOX_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# python3-venv: the Dockerfiles' `python3 -m venv`; libgomp1: ctranslate2's and onnxruntime's
# OpenMP (not bundled in their wheels).
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates", "libgomp1")
# Package caches, indexes and docs: nothing at run time reads them.
BASE_CLEAN = (
    "var/lib/apt/lists/*",
    "var/cache/apt/*",
    "var/cache/debconf/*-old",
    "var/log/*",
    "usr/share/man/*",
    "usr/share/info/*",
    "var/cache/ldconfig/aux-cache",
)

IMAGES = {"operator": "operator/Dockerfile", "agent-runtime": "agent_runtime/Dockerfile"}
PREPARE = {"agent-runtime": "hack/web/fetch-livekit-client.sh"}
"""Files an image's build context needs that git does not hold (the call page's LiveKit SDK)."""
# The in-cluster dependencies of `make install`: programs the tests already run on the host
# (livekit-server from its Go module, Valkey and RediSearch from the locked wheels), on the
# same base. Their build context is a directory of those files, not the repository.
DEPENDENCIES = {
    "livekit-server": "hack/images/livekit-server.Dockerfile",
    "redis-search": "hack/images/redis-search.Dockerfile",
    "prometheus": "hack/images/prometheus.Dockerfile",
    "keda": "hack/images/keda.Dockerfile",
}


class ImagesUnavailable(RuntimeError):
    """This machine cannot build images (tools missing and not installable)."""


@dataclass(frozen=True)
class Image:
    name: str
    ref: str  # kubevox.local/<name>:<tree hash>
    dev_ref: str  # kubevox.local/<name>:dev
    archive: Path  # docker archive of ref
    built: bool  # False when the cached archive was used


def _log(msg: str) -> None:
    print(f"images: {msg}", file=sys.stderr, flush=True)


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(len(p).to_bytes(8, "big") + p)
    return h.hexdigest()[:16]


def ensure_tools() -> None:
    """buildah, debootstrap and runc; installed from Debian when missing and we are root."""
    missing = [p for p in DEBIAN_PACKAGES if shutil.which(p) is None]
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ImagesUnavailable(f"{', '.join(missing)} missing (install them from Debian)")
    _log(f"installing {' '.join(missing)} from Debian")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    apt = ["apt-get", "-qq"]
    for args in (["update"], ["install", "-y", "--no-install-recommends", *missing]):
        proc = subprocess.run([*apt, *args], env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise ImagesUnavailable(f"apt-get {args[0]} failed: {proc.stderr[-500:]}")


def storage_args() -> list[str]:
    """buildah's storage: private to kubevox, so its layer cache is ours alone."""
    runroot = Path(os.environ.get("XDG_RUNTIME_DIR", "/run")) / "kubevox-images"
    driver = os.environ.get("KUBEVOX_STORAGE_DRIVER", "overlay")
    return ["--root", str(CACHE / "storage"), "--runroot", str(runroot), "--storage-driver", driver]


def _run(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=True, text=True, **kw)  # type: ignore[call-overload,no-any-return]


def buildah(*args: str, capture: bool = False) -> str:
    out = _run(["buildah", *storage_args(), *args], stdout=subprocess.PIPE if capture else None)
    return out.stdout or ""


def has_image(ref: str) -> bool:
    argv = ["buildah", *storage_args(), "inspect", "--type", "image", ref]
    return subprocess.run(argv, capture_output=True).returncode == 0


# --- the base image ----------------------------------------------------------------------------


def base_ref() -> str:
    recipe = {"suite": SUITE, "mirror": MIRROR, "packages": BASE_PACKAGES, "clean": BASE_CLEAN}
    return f"{REGISTRY}/base:{_digest(json.dumps(recipe, sort_keys=True).encode())}"


def _debootstrap(archive: Path) -> None:
    with tempfile.TemporaryDirectory(dir=CACHE, prefix="base-") as tmp:
        root = Path(tmp) / "rootfs"
        include = ",".join(BASE_PACKAGES)
        _run(
            ["debootstrap", "--variant=minbase", f"--include={include}", SUITE, str(root), MIRROR],
            stdout=subprocess.DEVNULL,
        )
        for pattern in BASE_CLEAN:
            for path in root.glob(pattern):
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        for name in ("etc/resolv.conf", "etc/hostname"):  # the build host's, not the image's
            (root / name).write_text("")
        part = archive.with_suffix(".part")
        _run(["tar", "--numeric-owner", "--xattrs", "-C", str(root), "-cf", str(part), "."])
        part.rename(archive)


def ensure_base() -> str:
    """The base image in buildah's storage, from its cached rootfs archive or debootstrap."""
    ref = base_ref()
    if has_image(ref):
        return ref
    archive = CACHE / f"base-{ref.rpartition(':')[2]}.tar"
    if not archive.exists():
        _log(f"debootstrap {SUITE} ({', '.join(BASE_PACKAGES)}): a few minutes, once")
        start = time.monotonic()
        _debootstrap(archive)
        _log(f"debootstrap done in {time.monotonic() - start:.0f}s")
    ctr = buildah("from", "--pull=never", "scratch", capture=True).strip()
    try:
        mnt = buildah("mount", ctr, capture=True).strip()
        _run(["tar", "--numeric-owner", "--xattrs", "-C", mnt, "-xf", str(archive)])
        buildah("config", "--env", "LANG=C.UTF-8", "--cmd", "/bin/bash", ctr)
        buildah("commit", "--quiet", "--rm", ctr, ref, capture=True)
    except BaseException:
        subprocess.run(["buildah", *storage_args(), "rm", ctr], capture_output=True)
        raise
    return ref


# --- the two images ----------------------------------------------------------------------------


def _ignored(rel: str, patterns: list[str]) -> bool:
    """.dockerignore: a pattern excludes a path or any of its parents; ``**/`` any depth."""
    parts = rel.split("/")
    for i in range(1, len(parts) + 1):
        prefix = "/".join(parts[:i])
        for pat in patterns:
            if pat.startswith("**/"):
                if fnmatch.fnmatchcase(parts[i - 1], pat[3:]):
                    return True
            elif pat.count("/") == prefix.count("/") and fnmatch.fnmatchcase(prefix, pat):
                return True
    return False


def copied_files(dockerfile: Path) -> list[Path]:
    """Exactly the context files the Dockerfile's COPY instructions send to the build."""
    lines = dockerfile.read_text().replace("\\\n", " ").splitlines()
    sources = []
    for line in lines:
        words = shlex.split(line, comments=True)
        if words and words[0].upper() == "COPY" and not any(w.startswith("--from") for w in words):
            sources += [w for w in words[1:-1] if not w.startswith("--")]
    ignore_file = REPO / ".dockerignore"
    patterns = [p.strip().rstrip("/") for p in ignore_file.read_text().splitlines()]
    patterns = [p for p in patterns if p and not p.startswith("#")]
    files = []
    for src in sources:
        top = REPO / src
        for path in [top] if top.is_file() else sorted(top.rglob("*")):
            rel = path.relative_to(REPO).as_posix()
            if path.is_file() and not _ignored(rel, patterns):
                files.append(path)
    return sorted(set(files))


def tree_hash(dockerfile: Path, base: str, context: Path = REPO) -> str:
    """What the image is made of: the base, the Dockerfile and every file it copies."""
    files = copied_files(dockerfile) if context == REPO else sorted(context.iterdir())
    parts = [base.encode(), dockerfile.read_bytes()]
    for path in files:
        mode = b"x" if os.access(path, os.X_OK) else b"-"
        parts += [path.relative_to(context).as_posix().encode(), mode, path.read_bytes()]
    return _digest(*parts)


def dependency_context(name: str) -> Path:
    """The build context of a dependency image: links to the host's copies of its programs."""
    from .livekit import livekit_server_binary  # builds it once, like the tests do
    from .procs import built
    from .redis import search_module, server_binary

    def prometheus() -> list[Path]:
        return [built(REPO / "hack/tools/build-promtool.sh", "prometheus") / "prometheus"]

    def keda() -> list[Path]:
        bin_dir = built(REPO / "hack/node/build-keda.sh")
        return [bin_dir / "operator", bin_dir / "adapter"]

    sources = {
        "livekit-server": lambda: [livekit_server_binary()],
        "redis-search": lambda: [server_binary(), search_module()],
        "prometheus": prometheus,
        "keda": keda,
    }[name]()
    context = CACHE / "contexts" / name
    shutil.rmtree(context, ignore_errors=True)
    context.mkdir(parents=True)
    for source in sources:
        shutil.copy2(source, context / source.name)
    return context


def _trust_mounts() -> list[str]:
    """The build host's CA bundle for pip, when it has its own (a TLS-inspecting egress proxy):
    bind mounts for the RUN steps only, so nothing of it reaches the image."""
    ca = os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE")
    if not ca or not Path(ca).is_file():
        return []
    conf = CACHE / "build-pip.conf"
    conf.write_text("[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n")
    return [
        f"--volume={Path(ca).resolve()}:/etc/ssl/certs/ca-certificates.crt:ro",
        f"--volume={conf}:/etc/pip.conf:ro",
    ]


def build_image(name: str, base: str) -> Image:
    """One image: its archive when cached, else a buildah build (layer cache on)."""
    recipe = IMAGES.get(name) or DEPENDENCIES[name]
    dockerfile = REPO / recipe
    context = REPO if name in IMAGES else dependency_context(name)
    if script := PREPARE.get(name):
        _run(["bash", str(REPO / script)], stdout=subprocess.DEVNULL)
    ref = f"{REGISTRY}/{name}:{tree_hash(dockerfile, base, context)}"
    dev_ref = f"{REGISTRY}/{name}:dev"
    archive = CACHE / f"{name}-{ref.rpartition(':')[2]}.tar"
    if archive.exists():
        return Image(name, ref, dev_ref, archive, built=False)
    _log(f"building {ref} from {recipe}")
    start = time.monotonic()
    buildah(
        "build",
        f"--runtime={OCI_RUNTIME}",
        "--layers",
        "--force-rm",
        "--pull=never",
        *_trust_mounts(),
        "--build-arg",
        f"BASE_IMAGE={base}",
        "-f",
        str(dockerfile),
        "-t",
        ref,
        "-t",
        dev_ref,
        str(context),
    )
    part = archive.with_suffix(".part")
    part.unlink(missing_ok=True)
    buildah("push", "--quiet", ref, f"docker-archive:{part}:{ref}")
    part.rename(archive)
    _prune(name, {ref, dev_ref}, archive)
    _log(f"built {ref} in {time.monotonic() - start:.0f}s")
    return Image(name, ref, dev_ref, archive, built=True)


def _prune(name: str, keep: set[str], archive: Path) -> None:
    """Earlier trees' archives and images (a runtime image is 1.3 GB). Not `rmi --prune`: the
    build stage's cached layers have no tag, and the dependency layers would go with them."""
    for old in CACHE.glob(f"{name}-*.tar"):
        if old != archive:
            old.unlink()
    fmt, match = "--format={{.Name}}:{{.Tag}}", f"--filter=reference={REGISTRY}/{name}"
    listed = buildah("images", fmt, match, capture=True)
    for ref in set(listed.split()) - keep:
        buildah("rmi", ref, capture=True)


def ensure_in_storage(image: Image) -> None:
    """The image in buildah's storage (from its archive if the storage was wiped)."""
    if not has_image(image.ref):
        buildah("pull", "--quiet", f"docker-archive:{image.archive}", capture=True)
    buildah("tag", image.ref, image.dev_ref)


def build_images(names: tuple[str, ...] = tuple(IMAGES)) -> dict[str, Image]:
    ensure_tools()
    CACHE.mkdir(parents=True, exist_ok=True)
    with _lock():
        base = ensure_base()
        return {name: build_image(name, base) for name in names}


@contextlib.contextmanager
def _lock() -> Iterator[None]:
    """One build at a time per cache (make images beside the test)."""
    import fcntl

    with open(CACHE / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def load_images(images: dict[str, Image], sock: Path, snapshotter: str) -> None:
    """Import the archives into a containerd's k8s.io namespace, where kubelet finds them."""
    if shutil.which("ctr") is None:
        raise ImagesUnavailable("ctr missing (Debian's containerd package)")
    ctr = ["ctr", "--address", str(sock), "-n", "k8s.io", "images"]
    loaded = set(_run([*ctr, "ls", "--quiet"], stdout=subprocess.PIPE).stdout.split())
    for image in images.values():
        if image.ref not in loaded:  # the ref names its content: already there, nothing to do
            argv = [*ctr, "import", "--snapshotter", snapshotter, str(image.archive)]
            _run(argv, stdout=subprocess.DEVNULL)
        _run([*ctr, "tag", "--force", image.ref, image.dev_ref], stdout=subprocess.DEVNULL)
    _log(f"loaded into containerd at {sock}")


def build_and_load(names: tuple[str, ...] = tuple(IMAGES), state: Path = STATE) -> dict[str, Image]:
    """What `make images` does: build (cached), then load into make cluster-up's node if one
    runs from ``state``."""
    from .cluster import running_node

    images = build_images(names)
    node = running_node(state)
    if node is None:
        _log(f"no node runs from {state} (make cluster-up): images built, not loaded")
    else:
        load_images(images, Path(str(node["containerd"])), str(node["snapshotter"]))
    return images


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kubevox_devenv.images")
    parser.add_argument("--dir", type=Path, default=STATE, help="make cluster-up's state")
    parser.add_argument("names", nargs="*", default=list(IMAGES), help="images to build")
    args = parser.parse_args(argv)
    start = time.monotonic()
    try:
        images = build_and_load(tuple(args.names), args.dir)
    except ImagesUnavailable as e:
        _log(f"cannot build images here: {e}")
        return 1
    _log(f"done in {time.monotonic() - start:.0f}s")
    for image in images.values():
        print(f"{image.ref}\t{image.dev_ref}\t{image.archive}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
