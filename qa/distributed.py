"""Distributed embedding: the same vectors as `Embedder`, computed by a pool of Ray actors.

`RayEmbedder` offers `Embedder`'s surface, so the indexer's incremental path uses it unchanged:
names, dimension, token counting and query vectors come from a local `Embedder`; `encode` sends
the texts through Ray Data (`map_batches` over an actor pool, one model loaded per actor) and
gathers the vectors back in input order. Ray is an optional extra (`pip install 'qa[scale]'`)
and is imported only here, only when asked for.

    embedder = RayEmbedder(workers=2)            # a local Ray with 2 CPUs
    embedder = RayEmbedder("head:6379")          # a running cluster (qa installed on its nodes)
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.config import MODEL_ENV, model_cache_dir
# GROUP_SIZE: the Ray batches are Embedder's own groups (see RayEmbedder.encode).
from qa.embed import DEFAULT_BATCH_SIZE, GROUP_SIZE, Embedder, Passage, ProgressCallback, exported_onnx_model
from qa.errors import ConfigError, ModelError

if TYPE_CHECKING:
    import numpy as np

MISSING_RAY = "Ray is not installed: pip install 'qa[scale]'"
# Threads each actor's encoder may use. One per actor, with one CPU reserved for it, so N actors
# on N cores do not fight over them (ONNX Runtime would otherwise start a thread per core in
# every actor).
THREADS_PER_WORKER = 1
# How long a cluster's head has to answer as a gRPC server (its GCS) before qa says it is not one.
GCS_READY_SECONDS = 5.0
# The Hugging Face libraries in the workers must stay offline, like the driver: the model ships
# inside a Python package.
_WORKER_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "TRANSFORMERS_VERBOSITY": "error",
}


def ray_available() -> bool:
    """Whether Ray can be imported here (without importing it)."""
    return importlib.util.find_spec("ray") is not None


class RayEmbedder:
    """An `Embedder` whose `encode` runs on Ray: locally with `ray.init()`, or on the cluster at `address`.

    Ray is started (or joined) on the first `encode`, not here; `close()` shuts down a Ray this
    object started. Raises ConfigError when Ray is not installed or `address` cannot be reached.
    """

    def __init__(
        self,
        address: str | None = None,
        backend: str | None = None,
        workers: int | None = None,
        model: str | os.PathLike[str] | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        group_size: int = GROUP_SIZE,
    ) -> None:
        if not ray_available():
            raise ConfigError(MISSING_RAY)
        if workers is not None and workers < 1:
            raise ConfigError(f"the Ray workers must be at least 1, not {workers}")
        if group_size < 1:
            raise ConfigError(f"the texts per Ray batch must be at least 1, not {group_size}")
        self.address = None if address in (None, "", "local") else address
        if self.address is not None:
            # Checked now, so that a bad address fails before any file is read.
            if self.address.startswith("ray://"):
                # Ray Data plans and runs its work in the driver, which a Ray Client connection
                # does not have (it fails deep inside the executor).
                raise ConfigError(
                    f"{self.address}: Ray Client addresses cannot run Ray Data; from a machine of the cluster, "
                    "give the head's address (HOST:6379), or auto"
                )
            _check_reachable(self.address)
        self.workers = workers
        # Texts per Ray batch, the unit an actor embeds and progress counts. Embedder's own group
        # size by default, so that both paths make the same batches (see encode).
        self.group_size = group_size
        self._local = Embedder(model, batch_size=batch_size, backend=backend)
        # A model chosen by path travels to the workers as that path; the packaged model is found
        # by each worker itself, since a cluster node may install it somewhere else.
        self._worker_model = str(self._local.model_path) if (model or os.environ.get(MODEL_ENV)) else None
        self._started_ray = False

    @property
    def name(self) -> str:
        return self._local.name

    @property
    def backend(self) -> str:
        return self._local.backend

    @property
    def model_path(self) -> Path:
        return self._local.model_path

    @property
    def batch_size(self) -> int:
        return self._local.batch_size

    @property
    def dimension(self) -> int:
        return self._local.dimension

    @property
    def max_tokens(self) -> int:
        return self._local.max_tokens

    def load(self) -> Any:
        """Load the local model (used for query vectors); the workers load their own."""
        return self._local.load()

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces in each text, by the model's own tokenizer (locally: it is fast)."""
        return self._local.count_tokens(texts)

    def encode_query(self, text: str) -> np.ndarray:
        """One query vector, computed locally: a round trip to the cluster would cost more than it."""
        return self._local.encode_query(text)

    def encode(self, texts: Sequence[str], progress: ProgressCallback | None = None) -> np.ndarray:
        """Vectors for `texts`, one row each, in order; `progress(n)` is called as batches come back."""
        import numpy as np

        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors, _ = self._on_ray(list(texts), None, progress)
        return vectors

    def encode_passages(
        self, passages: Sequence[Passage], progress: ProgressCallback | None = None
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """`Embedder.encode_passages` on the actors: the same passage and sentence vectors."""
        import numpy as np

        if not passages:
            return np.zeros((0, self.dimension), dtype=np.float32), []
        vectors, sentences = self._on_ray([text for text, _ in passages], [spans for _, spans in passages], progress)
        assert sentences is not None
        return vectors, sentences

    def _on_ray(
        self, texts: list[str], spans: list[Sequence[tuple[int, int]]] | None, progress: ProgressCallback | None
    ) -> tuple[np.ndarray, list[np.ndarray] | None]:
        import json

        import numpy as np

        ray = self.connect()
        import pandas

        # The same length-sorted groups Embedder makes, one Ray block and one batch each (the
        # ONNX backends read each text alone whatever the grouping, so the vectors are the
        # in-process path's; torch pads each batch to its longest text).
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        blocks = []
        for group in (order[begin : begin + self.group_size] for begin in range(0, len(order), self.group_size)):
            columns: dict[str, Any] = {"position": np.asarray(group, dtype=np.int64), "text": [texts[i] for i in group]}
            if spans is not None:  # sentence spans travel as JSON: Arrow has no ragged int pairs
                columns["spans"] = [json.dumps([list(span) for span in spans[i]]) for i in group]
            blocks.append(pandas.DataFrame(columns))
        workers = min(self._worker_count(ray), len(blocks))  # no actor loads a model only to idle
        dataset = ray.data.from_pandas(blocks).map_batches(
            _EmbedActor,
            fn_constructor_kwargs={
                "model": self._worker_model,
                "backend": self.backend,
                "batch_size": self.batch_size,
                "threads": THREADS_PER_WORKER,
            },
            batch_size=self.group_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=THREADS_PER_WORKER,
            runtime_env={"env_vars": self._worker_env()},
        )
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        sentences: list[np.ndarray] | None = [vectors[:0]] * len(texts) if spans is not None else None
        done = np.zeros(len(texts), dtype=bool)
        try:
            for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                positions = batch["position"]
                vectors[positions] = np.asarray(batch["vector"], dtype=np.float32)
                if sentences is not None:
                    for position, blob in zip(positions, batch["sentences"]):
                        sentences[position] = np.frombuffer(blob, dtype=np.float32).reshape(-1, self.dimension)
                done[positions] = True
                if progress is not None:
                    progress(len(positions))
        except ray.exceptions.RayError as exc:
            raise ModelError(f"distributed embedding failed: {_one_line(exc)}") from exc
        if not done.all():  # pragma: no cover - Ray Data returns every row it was given
            raise ModelError(f"distributed embedding lost {int((~done).sum())} of {len(texts)} texts")
        return vectors, sentences

    def close(self) -> None:
        """Shut down the local Ray this object started; a cluster, or a Ray started by the caller, stays."""
        if self._started_ray:
            import ray

            ray.shutdown()
            self._started_ray = False

    def __enter__(self) -> RayEmbedder:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def connect(self) -> Any:
        """Ray, initialized: joined if the caller already did, else started locally or joined at `address`."""
        try:
            import ray
            import ray.data
        except ImportError as exc:
            raise ConfigError(MISSING_RAY) from exc
        # The ONNX export is made once here, not raced for by every local actor (the workers of a
        # cluster make their own in their own cache folders).
        if self.address is None and self.backend != "torch":
            exported_onnx_model(self.model_path, self.backend == "onnx-int8")
        if ray.is_initialized():
            _quiet_ray_data(ray)
            return ray
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # a CLI tool does not phone home
        quiet = {
            "ignore_reinit_error": True,
            "include_dashboard": False,
            "log_to_driver": False,
            "configure_logging": False,
            "logging_level": logging.ERROR,
        }
        # Ray warns on its "ray" logger while starting (token authentication turned on for the
        # local cluster, and the like); qa's users did not choose those settings.
        logging.getLogger("ray").setLevel(logging.ERROR)
        try:
            if self.address is None:
                cpus = (self.workers or os.cpu_count() or 1) * THREADS_PER_WORKER
                # "local": a Ray of our own even where `ray start` left one running on this machine
                # (plain ray.init() would join that, and refuse num_cpus).
                ray.init(address="local", num_cpus=cpus, **quiet)
            else:
                ray.init(address=self.address, **quiet)
        except (OSError, RuntimeError, ValueError) as exc:
            # Ray's own message names only the address; the reason (such as a missing
            # authentication token) is the exception it came from. OSError: a temporary folder
            # Ray cannot make ($RAY_TMPDIR, /tmp/ray owned by another user), a refused connection.
            reason = _one_line(exc.__cause__ or exc).split(". ")[0]
            where = f"connect to the Ray cluster at {self.address}" if self.address else "start a local Ray"
            raise ConfigError(f"could not {where}: {reason}") from exc
        self._started_ray = True
        _quiet_ray_data(ray)
        return ray

    def _worker_count(self, ray: Any) -> int:
        """`workers` if given, else as many actors as the cluster has CPUs for."""
        if self.workers is not None:
            return self.workers
        return max(1, int(ray.cluster_resources().get("CPU", 1)) // THREADS_PER_WORKER)

    def _worker_env(self) -> dict[str, str]:
        env = dict(_WORKER_ENV)
        if self.address is None:
            # Local actors share this machine's cache folder, so they find the export made above.
            env["QA_MODEL_CACHE"] = str(model_cache_dir())
        return env


class _EmbedActor:
    """One Ray actor of the pool: loads the model once, then embeds batch after batch."""

    def __init__(self, model: str | None, backend: str, batch_size: int, threads: int) -> None:
        self._embedder = Embedder(model, batch_size=batch_size, backend=backend)
        with _cpu_count(threads):
            self._embedder.load()
        if backend == "torch":
            import torch

            torch.set_num_threads(threads)

    def __call__(self, batch: Any) -> dict[str, Any]:
        import json

        import numpy as np

        if "spans" not in batch:
            vectors = self._embedder.encode(batch["text"].tolist())
            return {"position": batch["position"], "vector": vectors}
        passages = [(text, [tuple(span) for span in json.loads(spans)]) for text, spans in zip(batch["text"], batch["spans"])]
        vectors, sentences = self._embedder.encode_passages(passages)
        blobs = np.array([np.ascontiguousarray(matrix, dtype=np.float32).tobytes() for matrix in sentences], dtype=object)
        return {"position": batch["position"], "vector": vectors, "sentences": blobs}


@contextmanager
def _cpu_count(threads: int) -> Iterator[None]:
    """Make os.cpu_count() say `threads` while the model loads.

    Embedder's ONNX session takes one intra-op thread per core of the machine; in an actor that
    Ray gave `threads` CPUs, that would oversubscribe the cores. The actor is a process of its
    own, so the change is seen by nothing else, and it is undone once the session exists.
    """
    real = os.cpu_count
    os.cpu_count = lambda: threads  # type: ignore[assignment]
    try:
        yield
    finally:
        os.cpu_count = real  # type: ignore[assignment]


def _quiet_ray_data(ray: Any) -> None:
    """No progress bars or execution banners from Ray Data: the CLI draws its own progress."""
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.enable_operator_progress_bars = False
    context.print_on_execution_start = False
    context.enable_auto_log_stats = False
    # Its warnings are about its own settings (such as the progress bars turned off here), and
    # its errors come back to encode as exceptions, which say them in one line.
    logging.getLogger("ray.data").setLevel(logging.CRITICAL)


def _check_reachable(address: str) -> None:
    """Fail fast on a cluster address nothing listens at: Ray itself retries for minutes.

    `auto` (the cluster this machine belongs to) is left to Ray, which says at once if there is none.
    """
    import socket

    if address in ("auto", "local"):
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        host, port = address, "6379"  # the port a cluster's head listens on unless told otherwise
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as exc:
        raise ConfigError(f"could not reach the Ray cluster at {address}: {exc.strerror or exc}") from exc
    if os.environ.get("RAY_USE_TLS", "0").lower() not in ("0", "false", ""):
        return  # a TLS head answers only a TLS channel: left to Ray
    # A port that is open but is not the head's GCS (the dashboard's 8265, another server): Ray
    # would retry "Failed to connect to GCS" for many minutes, holding the writer lock. The GCS
    # is a gRPC server, so a gRPC channel to it is ready at once.
    import grpc

    # Straight to the head, as Ray connects: not through $http_proxy, which would answer instead.
    channel = grpc.insecure_channel(f"{host}:{port}", options=[("grpc.enable_http_proxy", 0)])
    try:
        grpc.channel_ready_future(channel).result(timeout=GCS_READY_SECONDS)
    except grpc.FutureTimeoutError as exc:
        raise ConfigError(
            f"{address} answers, but not as a Ray cluster's head: give its GCS port (6379 unless set; "
            "8265 is the dashboard)"
        ) from exc
    finally:
        channel.close()


def _one_line(exc: BaseException) -> str:
    """The line of an error worth showing: Ray puts the worker's exception last, after its traceback.

    A worker's own QAError reads as its message alone, as it would in-process.
    """
    import re

    text = str(exc).strip()
    line = text.splitlines()[-1] if text else type(exc).__name__
    qualified = re.match(r"((?:\w+\.)+)(\w+): (.*)", line)  # "ray.exceptions.AuthenticationError: …"
    if qualified is None:
        return line
    module, name, message = qualified.groups()
    return message if module == "qa.errors." else f"{name}: {message}"
