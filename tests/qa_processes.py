"""`qa serve` and `qa watch` as real processes for tests: started on a free loopback port, waited
for, and stopped, with what they wrote to stderr kept for the failure message."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from llm_servers import free_port

START_SECONDS = 180.0  # loading the encoder on a busy 2-core machine; a deadline for failing, not a measure
QA = [sys.executable, "-c", "from qa.cli import run; run()"]


class QAProcess:
    """A running `qa` command whose stderr goes to a file; with `file_size_limit`, no file it
    writes may grow past that many bytes, as if its disk were full (see `refusing_writes_past`)."""

    def __init__(self, args: list[str], log: Path, file_size_limit: int | None = None) -> None:
        self.log = log
        self._stderr = log.open("wb")
        command = [*QA, *args]
        if file_size_limit:
            command = refusing_writes_past(file_size_limit, command)
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=self._stderr, env=dict(os.environ))

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def allow_writes(self) -> None:
        """Lift the `file_size_limit` it was started with, as if its disk had been freed."""
        import resource

        hard = resource.prlimit(self.process.pid, resource.RLIMIT_FSIZE)[1]
        resource.prlimit(self.process.pid, resource.RLIMIT_FSIZE, (hard, hard))

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._stderr.close()


# Sets the limit, then becomes the command (same pid, so QAProcess.allow_writes can lift it). An
# ignored signal stays ignored across exec.
_LIMITED_LAUNCH = """
import os, resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
os.execv(sys.argv[2], sys.argv[2:])
"""


def refusing_writes_past(size: int, command: list[str]) -> list[str]:
    """`command` run so that its writes past `size` bytes in any one file fail (EFBIG), as writes
    to a full disk fail, without a disk to fill; the signal that would kill it is ignored. Only
    the soft limit is lowered, so that QAProcess.allow_writes can lift it again: the disk freed.

    A launcher, not Popen's preexec_fn: a preexec_fn makes Popen fork the test process itself,
    and once an earlier test has started gRPC's threads (Milvus, Ray) in it, gRPC's fork handlers
    aborted the child now and then (SIGABRT, "epoll_wait error: Bad file descriptor")."""
    return [sys.executable, "-c", _LIMITED_LAUNCH, str(size), *command]


def wait_for(condition, what: str, process: QAProcess, seconds: float = START_SECONDS, every: float = 0.1):
    """Poll `condition()` until it returns something true; fail naming `what` and the process's stderr."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        if not process.alive():
            raise AssertionError(f"qa exited ({process.process.returncode}) before {what}:\n{process.output()}")
        time.sleep(every)
    raise AssertionError(f"gave up waiting for {what}:\n{process.output()}")


@contextmanager
def qa_server(args: list[str], log: Path, token: str | None = None) -> Iterator[tuple[str, QAProcess]]:
    """`qa serve ARGS --port PORT` running; yields its base URL once /health answers."""
    port = free_port()
    server = QAProcess(["serve", *args, "--port", str(port)], log)
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    def healthy() -> bool:
        try:
            return httpx.get(f"{url}/health", headers=headers, timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(healthy, "the server answered /health", server, every=0.25)
        yield url, server
    finally:
        server.stop()


@contextmanager
def held_by_another_process(holding: str) -> Iterator[None]:
    """For the with-block, another process runs the Python statements `holding`, which take hold
    of something (a store's writer lock, a Milvus Lite file), and keeps it held."""
    holder = subprocess.Popen([sys.executable, "-c", f"{holding}\nprint('held', flush=True)\nimport time\ntime.sleep(300)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield
    finally:
        holder.kill()
        holder.wait()


def writer_lock_of(index_dir: Path) -> str:
    """Statements for `held_by_another_process` that take the writer lock of the local index in `index_dir`."""
    return f"from pathlib import Path\nfrom qa.indexer import writer_lock\nlock = writer_lock(Path({str(index_dir)!r}), 0)"


def milvus_lite_file(path: Path) -> str:
    """Statements for `held_by_another_process` that open the Milvus Lite file at `path`."""
    return f"from pymilvus import MilvusClient\nclient = MilvusClient(uri={str(path)!r})"
