"""Processes evalkit starts for a run: one process group each, on a free loopback port, stopped on exit.

A service's command may use ``{port}`` (a free 127.0.0.1 port), ``{python}``, ``{suite_dir}`` and
``{work_dir}``. It is ready when its readiness path answers 2xx (or its port accepts connections); if it
exits first, or the start timeout passes, the error shows the tail of its stderr. The whole process group
is stopped (SIGTERM, then SIGKILL) at the end of the run, on Ctrl-C and on errors, so no child outlives it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from typing import IO

from evalkit.errors import ServiceError
from evalkit.providers.local import free_port
from evalkit.tools.spec import ServiceSpec, expand

STOP_GRACE_S = 5.0


def _pdeathsig() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Asks Linux to SIGTERM the service when evalkit dies (kill -9 included)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Service:
    """One started service."""

    def __init__(self, spec: ServiceSpec, port: int, process: subprocess.Popen[bytes], log: IO[bytes]) -> None:
        self.spec = spec
        self.port = port
        self.process = process
        self._log = log

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tail(self, lines: int = 3) -> str:
        """The last lines the service wrote to stderr/stdout."""
        self._log.flush()
        self._log.seek(0)
        text = self._log.read().decode("utf-8", "replace")
        kept = [line for line in text.splitlines() if line.strip()]
        return " | ".join(kept[-lines:])[-400:] if kept else "(no output)"

    def why_down(self) -> str | None:
        """Why the service cannot answer (it exited), or None while it runs."""
        code = self.process.poll()
        if code is None:
            return None
        return f"service {self.spec.name!r} is not running (exited with code {code}): {self.tail()}"

    def stop(self) -> None:
        """Stops the whole process group: SIGTERM, then SIGKILL after a grace period."""
        pgid = self.process.pid
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(pgid, signal.SIGKILL)  # whatever the leader left behind in its group
        except ProcessLookupError:
            pass
        if self.process.poll() is None:
            self.process.wait()
        self._log.close()


async def _ready(service: Service, spec: ServiceSpec) -> None:
    import httpx

    deadline = time.monotonic() + spec.start_timeout_s
    async with httpx.AsyncClient(trust_env=False, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if service.process.poll() is not None:
                raise ServiceError(f"{spec.source}: service {spec.name!r} exited with code "
                                   f"{service.process.returncode} while starting: {service.tail()}")
            try:
                if spec.ready_http is None:
                    _, writer = await asyncio.open_connection("127.0.0.1", service.port)
                    writer.close()
                    return
                response = await client.get(service.url + spec.ready_http)
                if 200 <= response.status_code < 300:
                    return
            except (OSError, httpx.TransportError):
                pass
            await asyncio.sleep(0.05)
    what = f"GET {spec.ready_http} to answer 2xx" if spec.ready_http else "its port to accept connections"
    raise ServiceError(f"{spec.source}: expected service {spec.name!r} to be ready ({what}) within "
                       f"{spec.start_timeout_s:g} s, got no answer on 127.0.0.1:{service.port}; "
                       f"stderr: {service.tail()}")


async def start(spec: ServiceSpec, values: Mapping[str, str]) -> Service:
    """Starts one service and waits until it is ready (stopping it again if it never is)."""
    port = free_port()
    filled = {**values, "port": str(port)}
    command = [expand(part, filled) for part in spec.command]
    env = {**os.environ, **{k: expand(v, filled) for k, v in spec.env.items()}}
    log = tempfile.TemporaryFile()  # noqa: SIM115 -- lives as long as the service; closed by stop()
    try:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
            cwd=expand(spec.cwd, filled) if spec.cwd else values.get("suite_dir"), start_new_session=True,
            preexec_fn=_pdeathsig if sys.platform.startswith("linux") else None,
        )
    except OSError as exc:
        log.close()
        raise ServiceError(f"{spec.source}.command: cannot start {command[0]!r} ({exc.strerror})") from None
    service = Service(spec, port, process, log)
    try:
        await _ready(service, spec)
    except BaseException:
        service.stop()
        raise
    return service
