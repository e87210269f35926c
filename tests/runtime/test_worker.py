"""The real worker (`kubevox-agent start`, a subprocess) against a stand-in LiveKit /agent
endpoint: registration with the agent name, health and metrics, load reporting with a job in
progress, and drain on SIGTERM (no new jobs, the running job finishes, exit 0)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import psutil
import pytest
from kubevox_api.sizing import WARM_JOBS
from kubevox_devenv.procs import free_port
from livekit.protocol import agent

from tests.support.calls import CLINIC_KB
from tests.support.runtime import make_config
from tests.support.servers.livekit_server import LiveKitStandIn

ROOT = Path(__file__).resolve().parents[2]


def worker_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBEVOX_", "LIVEKIT_"))}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "operator")])
    return env | extra


def startable_env(tmp: Path) -> dict[str, str]:
    """Every key `start` checks for, so that the worker runs."""
    return worker_env(
        LIVEKIT_API_KEY="devkey",
        LIVEKIT_API_SECRET="secret" * 6,
        DEEPGRAM_API_KEY="d",
        CARTESIA_API_KEY="c",
        OPENAI_API_KEY="o",
        # As in the operator's pod spec: a directory not made yet inside an empty emptyDir.
        PROMETHEUS_MULTIPROC_DIR=str(tmp / "run" / "prometheus"),
    )


MAX_CALLS = 2
WARM = min(MAX_CALLS, WARM_JOBS)
"""Job processes the worker keeps started for the next calls, whatever the machine's cores."""


def write_config(tmp: Path, url: str, **extra: object) -> Path:
    cfg = make_config(
        {
            "livekit": {"url": url, "credentialsSecretRef": {"name": "lk"}},
            "stt": {
                "provider": "deepgram",
                "credentials": {"secretKeyRef": {"name": "d", "key": "k"}},
            },
            "tts": {
                "provider": "cartesia",
                "credentials": {"secretKeyRef": {"name": "c", "key": "k"}},
            },
            "turnDetection": {"mode": "vad"},
            "scaling": {"maxCallsPerPod": MAX_CALLS, "targetCallsPerPod": 1},
            "drainTimeoutSeconds": 120,
        },
        **extra,
    )
    path = tmp / "agent.json"
    path.write_text(json.dumps(cfg.to_k8s()))
    return path


@pytest.fixture
async def livekit() -> AsyncIterator[LiveKitStandIn]:
    async with LiveKitStandIn() as lk:
        yield lk


async def run_cli(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agent_runtime",
        *args,
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        # Its own process group, killed whole as a pod's container is: a job process or the
        # forkserver outliving the worker would hold the pipes, and `wait()` waits for them.
        start_new_session=True,
    )


class WorkerLog:
    """livekit's JSON log of a worker under test, read from its stdout as it comes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        self.records: list[dict[str, object]] = []
        self._reader = asyncio.create_task(self._read(proc.stdout))

    async def _read(self, stream: asyncio.StreamReader) -> None:
        async for line in stream:
            if line.startswith(b"{"):
                self.records.append(json.loads(line))

    def count(self, message: str) -> int:
        return sum(1 for r in self.records if r["message"] == message)

    def initialized(self) -> int:
        """Job processes ready for a call (prewarm done)."""
        failed = [r for r in self.records if r["message"] == "error initializing process"]
        assert not failed, failed[0]
        return self.count("process initialized")

    def close(self) -> None:
        self._reader.cancel()


async def kill_worker(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL the worker and every process it started, and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    await asyncio.wait_for(proc.wait(), 30)


async def test_missing_livekit_secret_fails_before_connecting(
    livekit: LiveKitStandIn, tmp_path: Path
) -> None:
    path = write_config(tmp_path, livekit.ws_url)
    env = worker_env(
        LIVEKIT_API_KEY="k", DEEPGRAM_API_KEY="d", CARTESIA_API_KEY="c", OPENAI_API_KEY="o"
    )
    proc = await run_cli("start", "--config", str(path), env=env)
    _out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2
    lines = err.decode().strip().splitlines()
    assert lines == [
        "kubevox-agent: LIVEKIT_API_SECRET: not set (from spec.livekit.credentialsSecretRef 'lk')"
    ]
    assert livekit.agent_connections == 0


async def test_missing_provider_key_names_the_variable(tmp_path: Path) -> None:
    path = write_config(tmp_path, "ws://127.0.0.1:9")
    env = worker_env(
        LIVEKIT_API_KEY="k", LIVEKIT_API_SECRET="s", CARTESIA_API_KEY="c", KUBEVOX_CONFIG=str(path)
    )
    proc = await run_cli("start", env=env)
    _out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2
    assert err.decode().strip() == (
        "kubevox-agent: spec.stt.credentials: missing API key for deepgram: set "
        "KUBEVOX_STT_API_KEY or DEEPGRAM_API_KEY"
    )


def _child_pid(pid: int) -> int | None:
    """The one child of ``pid`` (the process that is PID 1 in unshare's namespace)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        if children:
            return int(children[0])
    return None


async def test_sigterm_while_starting_stops_the_worker_as_pid_1(
    livekit: LiveKitStandIn, tmp_path: Path
) -> None:
    """In a pod the worker is PID 1, and the kernel ignores SIGTERM for a PID 1 without a
    handler: a pod deleted while its worker starts would hang for its whole grace period."""
    path = write_config(tmp_path, livekit.ws_url)
    env = startable_env(tmp_path)
    argv = [sys.executable, "-m", "agent_runtime", "start", "--config", str(path)]
    unshare = await asyncio.create_subprocess_exec(
        "unshare", "--pid", "--fork", "--kill-child", *argv, env=env, cwd=ROOT,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while (worker := _child_pid(unshare.pid)) is None:
            assert time.monotonic() < deadline, "the worker did not start"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # importing: no handler of livekit's yet
        assert livekit.agent_connections == 0
        os.kill(worker, signal.SIGTERM)
        _out, err = await asyncio.wait_for(unshare.communicate(), 10)
        # 0 once `start` runs (nothing to drain), 143 if the signal came while the commands load.
        assert unshare.returncode in (0, 143), err.decode()[-2000:]
        assert "SIGTERM: stopping" in err.decode()
    finally:
        if unshare.returncode is None:
            unshare.kill()
            await unshare.wait()


async def scrape(port: int) -> str:
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/metrics") as r:
        return await r.text()


def gauge(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not exported")


@pytest.mark.voice
async def test_register_load_and_drain_on_sigterm(livekit: LiveKitStandIn, tmp_path: Path) -> None:
    path = write_config(tmp_path, livekit.ws_url)
    health, metrics_port = free_port(), free_port()
    env = startable_env(tmp_path)
    proc = await run_cli(
        "start",
        "--config",
        str(path),
        "--health-port",
        str(health),
        "--metrics-port",
        str(metrics_port),
        env=env,
    )
    try:
        async with asyncio.timeout(60):
            await livekit.registered.wait()
        reg = livekit.of("register")[0].register
        assert reg.agent_name == "front-desk"
        assert reg.type == agent.JobType.JT_ROOM

        async with aiohttp.ClientSession() as s:
            async with s.get(f"http://127.0.0.1:{health}/") as r:
                assert r.status == 200
            async with s.get(f"http://127.0.0.1:{health}/worker") as r:
                info = await r.json(content_type=None)
                assert info["agent_name"] == "front-desk"
        assert gauge(await scrape(metrics_port), "kubevox_active_calls") == 0

        # start-up (idle processes loading) saturates 2 cores: the worker is rightly full
        # until its load settles
        await livekit.wait_for("update_worker", lambda m: m.update_worker.load < 0.5)
        # one call in progress: exact active calls, load = 1/maxCallsPerPod at least
        # (as LiveKit does, a request refused while CPU is still busy is dispatched again)
        async with asyncio.timeout(60):
            while True:
                job_id = await livekit.request_job("front-desk", "call-1")
                resp = await livekit.wait_for(
                    "availability", lambda m, j=job_id: m.availability.job_id == j
                )
                if resp.availability.available:
                    break
                await asyncio.sleep(1)
        async with asyncio.timeout(30):
            while gauge(await scrape(metrics_port), "kubevox_active_calls") != 1:  # noqa: ASYNC110
                await asyncio.sleep(0.2)  # polling another process's HTTP endpoint
        await livekit.wait_for(
            "update_worker",
            lambda m: m.update_worker.job_count == 1 and m.update_worker.load >= 0.5,
        )

        # drain: SIGTERM -> WS_FULL, new requests refused, the running call continues
        proc.send_signal(signal.SIGTERM)
        await livekit.wait_for(
            "update_worker", lambda m: m.update_worker.status == agent.WorkerStatus.WS_FULL
        )
        second = await livekit.request_job("front-desk", "call-2")
        refused = await livekit.wait_for("availability", lambda m: m.availability.job_id == second)
        assert not refused.availability.available
        assert proc.returncode is None  # still serving the first call
        rc = await asyncio.wait_for(proc.wait(), 90)
        assert rc == 0
    finally:
        await kill_worker(proc)


def kubelet_update(volume: Path, name: str, content: str) -> None:
    """Write a ConfigMap volume the way the kubelet's atomic writer does: the data in a new
    timestamped directory, `..data` switched to it, then the previous directory removed.
    The file itself is a link through `..data`, made once."""
    new = volume / f"..{time.time_ns()}"
    new.mkdir(parents=True)
    (new / name).write_text(content)
    data = volume / "..data"
    previous = data.resolve() if data.is_symlink() else None
    (volume / "..data_tmp").symlink_to(new.name)
    (volume / "..data_tmp").rename(data)
    if not (volume / name).is_symlink():
        (volume / name).symlink_to(f"..data/{name}")
    if previous is not None:
        for f in previous.iterdir():
            f.unlink()
        previous.rmdir()


@pytest.mark.voice
async def test_job_processes_started_after_a_configmap_update_still_start(
    livekit: LiveKitStandIn, tmp_path: Path
) -> None:
    """A ConfigMap changed without a rollout (a spec.web edit) is rewritten in the worker's
    volume, and the directory the worker started from removed: the job processes it starts
    afterwards, for the next calls, must still find the config it checked."""
    config = write_config(tmp_path, livekit.ws_url).read_text()
    volume = tmp_path / "volume"
    kubelet_update(volume, "agent.json", config)
    ports = ("--health-port", str(free_port()), "--metrics-port", str(free_port()))
    config_path = str(volume / "agent.json")
    # The call count alone fills the worker: on a machine busy with other tests its CPU share
    # would refuse the call this test needs (the load's CPU part is test_register_load's).
    env = startable_env(tmp_path) | {"KUBEVOX_CPU_LOAD_WEIGHT": "0"}
    proc = await run_cli("start", "--config", config_path, *ports, env=env)
    log = WorkerLog(proc)
    try:
        async with asyncio.timeout(60):
            await livekit.registered.wait()
            while log.initialized() < WARM:  # noqa: ASYNC110
                await asyncio.sleep(0.2)  # another process's log
        kubelet_update(volume, "agent.json", config.replace("front desk", "front office"))

        # A call takes an idle process; the worker starts another in its place.
        async with asyncio.timeout(60):
            while True:
                job_id = await livekit.request_job("front-desk", "call-1")
                resp = await livekit.wait_for(
                    "availability", lambda m, j=job_id: m.availability.job_id == j
                )
                if resp.availability.available:
                    break
                await asyncio.sleep(1)
        async with asyncio.timeout(60):
            while log.initialized() <= WARM:  # noqa: ASYNC110
                await asyncio.sleep(0.2)
    finally:
        await kill_worker(proc)
        log.close()


@pytest.mark.voice
async def test_job_processes_share_the_embedding_model_loaded_once(
    livekit: LiveKitStandIn, tmp_path: Path
) -> None:
    """The knowledge base's local embedding model is loaded once, in livekit's forkserver,
    before any job process is forked from it (``agent_runtime.shared_models``): each job
    process's prewarm finds it loaded, and holds no private copy. Measured here: a warm job
    process's private memory (USS) is 12 MiB; 184 MiB when it loads the model itself, as it did
    before."""
    path = write_config(tmp_path, livekit.ws_url, knowledgeBases=CLINIC_KB)
    ports = ("--health-port", str(free_port()), "--metrics-port", str(free_port()))
    proc = await run_cli("start", "--config", str(path), *ports, env=startable_env(tmp_path))
    log = WorkerLog(proc)
    try:
        async with asyncio.timeout(90):
            while log.initialized() < WARM:  # noqa: ASYNC110
                await asyncio.sleep(0.2)  # another process's log
        # The forkserver is the worker's child, the job processes it forked its children.
        forkserver = [c for c in psutil.Process(proc.pid).children() if c.children()]
        jobs = [job for server in forkserver for job in server.children()]
        assert len(jobs) >= WARM, jobs
        private_mib = [job.memory_full_info().uss / 2**20 for job in jobs]
        assert max(private_mib) < 100, private_mib
    finally:
        await kill_worker(proc)
        log.close()
