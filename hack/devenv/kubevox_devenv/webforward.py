"""The demo's call page on ``http://localhost:<port>/``: a TCP relay from the host's loopback to
the web gateway's Service. Browsers give the microphone only to https pages and to localhost,
and the Service's cluster address is neither; kube-proxy keeps NodePorts off 127.0.0.1 here
(nodeconfig.py). `make run` starts it in the background; `make cluster-down` stops it.

    python -m kubevox_devenv.webforward --listen-port 8080 --to 10.96.0.42:80
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
from pathlib import Path

from .procs import cmdline, is_alive, stop_process_group

PID_FILE = "webforward.pid"
MODULE = "kubevox_devenv.webforward"


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        with contextlib.suppress(ConnectionError, RuntimeError):
            writer.close()


async def serve(port: int, host: str, target_port: int) -> None:
    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(host, target_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    server = await asyncio.start_server(relay, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def start(directory: Path, port: int, target: str) -> None:
    """Starts the relay detached from this process (it outlives `make run`), replacing one a
    previous run left."""
    stop(directory)
    log = open(directory / "webforward.log", "ab")  # noqa: SIM115 (the child keeps it)
    proc = subprocess.Popen(
        [sys.executable, "-m", MODULE, "--listen-port", str(port), "--to", target],
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    (directory / PID_FILE).write_text(str(proc.pid))


def stop(directory: Path) -> None:
    path = directory / PID_FILE
    if not path.exists():
        return
    pid = int(path.read_text() or 0)
    if pid and is_alive(pid) and MODULE in cmdline(pid):
        stop_process_group(pid)
    path.unlink(missing_ok=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen-port", type=int, required=True)
    parser.add_argument("--to", required=True, help="host:port")
    args = parser.parse_args()
    host, _, port = args.to.rpartition(":")
    asyncio.run(serve(args.listen_port, host, int(port)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
