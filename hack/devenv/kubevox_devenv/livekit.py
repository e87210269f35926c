"""A real LiveKit server on 127.0.0.1 for tests and demos, with loopback-only media.

The server is built once from its Go module (hack/livekit/build.sh). Every port is free and on
loopback; clients are handed no public STUN server; ICE uses the loopback candidate. With a
Redis URL, the server also answers its SIP API (trunks, dispatch rules). With ``host`` (the
node's address, nodenet.NODE_IP), it serves and sends media there instead, for pods of the
local node and host processes alike.

    python -m kubevox_devenv.livekit           # run one in the foreground, print its URL and keys
"""

from __future__ import annotations

import secrets
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import yaml

from .procs import ManagedProcess, built, free_port, wait_for

REPO = Path(__file__).resolve().parents[3]
BUILD_SCRIPT = REPO / "hack" / "livekit" / "build.sh"


def livekit_server_binary() -> Path:
    """The livekit-server binary, built and cached on first use."""
    return built(BUILD_SCRIPT) / "livekit-server"


@dataclass
class LiveKitServer:
    """One livekit-server process; use as a context manager or call start()/stop()."""

    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="kubevox-lk-")))
    redis_url: str | None = None
    api_key: str = "kubevox-dev"
    api_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    port: int = field(default_factory=free_port)
    rtc_tcp_port: int = field(default_factory=free_port)
    rtc_udp_port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def config(self) -> dict[str, object]:
        rtc: dict[str, object] = {
            "tcp_port": self.rtc_tcp_port,
            "udp_port": self.rtc_udp_port,
            "use_external_ip": False,
            "node_ip": self.host,
            "enable_loopback_candidate": self.host == "127.0.0.1",
            # Clients would otherwise be handed public STUN servers they cannot reach.
            "stun_servers": [f"{self.host}:{self.rtc_udp_port}"],
            "ips": {"includes": [f"{self.host}/32"]},
        }
        config: dict[str, object] = {
            "port": self.port,
            "bind_addresses": [self.host],
            "rtc": rtc,
            "keys": {self.api_key: self.api_secret},
            "logging": {"level": "info", "json": True},
            "turn": {"enabled": False},
            "room": {"empty_timeout": 30, "departure_timeout": 5},
        }
        if self.redis_url:
            host_port = self.redis_url.split("://", 1)[-1].split("/", 1)[0]
            config["redis"] = {"address": host_port}
        return config

    def start(self) -> LiveKitServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config_path = self.workdir / "livekit.yaml"
        config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        self.process = ManagedProcess(
            "livekit-server",
            [str(livekit_server_binary()), "--config", str(config_path)],
            self.workdir / "livekit-server.log",
        )
        self.process.start()
        try:
            wait_for("livekit-server", self._ready, 60, self.process.alive, self.process.log_tail)
        except BaseException:
            self.stop()
            raise
        return self

    def _ready(self) -> bool:
        with urllib.request.urlopen(self.http_url, timeout=1) as resp:
            return bool(resp.status == 200)

    def stop(self) -> None:
        if self.process is not None:
            # livekit-server lingers after SIGTERM even with no room open: do not wait long.
            self.process.stop(timeout=3)
            self.process = None

    def __enter__(self) -> LiveKitServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        """The variables LiveKit's SDKs and kubevox-agent read."""
        return {
            "LIVEKIT_URL": self.url,
            "LIVEKIT_API_KEY": self.api_key,
            "LIVEKIT_API_SECRET": self.api_secret,
        }


def main() -> int:
    with LiveKitServer() as server:
        for name, value in server.env().items():
            print(f"export {name}={value}")
        print("# Ctrl-C stops the server", flush=True)
        try:
            while server.process is not None and server.process.alive():
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
