"""Routers: a request's text in, a score in [0, 1] out — the predicted need for a stronger model.

RouteLLM's shape: one method returning a score; a ladder of n models is then routed by n−1 thresholds
(:func:`lalo_bench.routing.calibrate.assign`). Trained routers keep their parameters as plain numpy
arrays (:meth:`arrays` / :func:`router_from_arrays`), so a policy's weights file is data, never pickle.
The oracle is not here: it reads outcomes, not text (:func:`oracle_scores`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np

from lalo_bench.routing.features import FeatureKind, Featurizer, Tfidf

RouterKind = Literal["keyword", "task_type", "learned"]
"""The routers a policy can deploy (random and oracle are baselines: they cannot run in a gateway)."""


@runtime_checkable
class Router(Protocol):
    kind: str

    def score(self, texts: Sequence[str]) -> np.ndarray:
        """One score in [0, 1] per text: higher means a stronger model is more likely needed."""
        ...


class KeywordRouter:
    """The plan's ``ModelRouter._analyze_complexity``, exactly as written: substring keywords, first match wins."""

    kind: ClassVar[str] = "keyword"
    INDICATORS: ClassVar[dict[str, list[str]]] = {
        "simple": ["what is", "define", "explain"],
        "medium": ["how to", "compare", "analyze"],
        "complex": ["prove", "design", "optimize", "reason"],
    }

    @classmethod
    def complexity(cls, prompt: str) -> float:
        prompt_lower = prompt.lower()
        if any(kw in prompt_lower for kw in cls.INDICATORS["complex"]):
            return 0.9
        if any(kw in prompt_lower for kw in cls.INDICATORS["medium"]):
            return 0.6
        if any(kw in prompt_lower for kw in cls.INDICATORS["simple"]):
            return 0.3
        return 0.5

    def score(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([self.complexity(t) for t in texts], dtype=float)


class RandomRouter:
    """A uniform score drawn from a hash of the text: the no-information baseline, reproducible."""

    kind: ClassVar[str] = "random"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def score(self, texts: Sequence[str]) -> np.ndarray:
        def draw(text: str) -> float:
            digest = hashlib.blake2b(f"{self.seed}\x00{text}".encode(), digest_size=8).digest()
            return int.from_bytes(digest, "big") / 2**64

        return np.array([draw(t) for t in texts], dtype=float)


def oracle_scores(oracle_rung: np.ndarray, k: int) -> np.ndarray:
    """The ceiling: each request scored by the cheapest rung that got it right, scaled to [0, 1]."""
    return np.asarray(oracle_rung, dtype=float) / max(k - 1, 1)


# ---------------------------------------------------------------- trained


def _logistic(c: float = 1.0) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=2000)


def _logistic_from(arrays: Mapping[str, np.ndarray], prefix: str) -> Any:
    model = _logistic()
    model.coef_ = np.asarray(arrays[f"{prefix}.coef"], dtype=float)
    model.intercept_ = np.asarray(arrays[f"{prefix}.intercept"], dtype=float)
    model.classes_ = np.asarray(arrays[f"{prefix}.classes"])
    return model


def _logistic_arrays(model: Any, prefix: str) -> dict[str, np.ndarray]:
    return {f"{prefix}.coef": model.coef_, f"{prefix}.intercept": model.intercept_, f"{prefix}.classes": model.classes_}


class TaskClassifier:
    """Tool call / extraction / reasoning / puzzle from the text: TF-IDF and a logistic regression."""

    PREFIX = "task"

    def __init__(self, tfidf: Tfidf | None = None, model: Any | None = None, only: str | None = None) -> None:
        self.tfidf, self.model, self.only = tfidf, model, only

    @property
    def classes(self) -> list[str]:
        return [self.only] if self.only is not None else [str(c) for c in self.model.classes_]

    def fit(self, texts: Sequence[str], task_types: Sequence[str]) -> TaskClassifier:
        labels = np.asarray(task_types).astype(str)
        if len(set(labels)) == 1:
            self.only = str(labels[0])
            return self
        self.tfidf = Tfidf().fit(texts)
        self.model = _logistic(c=10.0).fit(self.tfidf.transform(texts), labels)
        return self

    def proba(self, texts: Sequence[str]) -> np.ndarray:
        if self.only is not None:
            return np.ones((len(texts), 1))
        return self.model.predict_proba(self.tfidf.transform(texts))

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.classes)[self.proba(texts).argmax(axis=1)]

    def arrays(self) -> dict[str, np.ndarray]:
        if self.only is not None:
            return {f"{self.PREFIX}.only": np.array([self.only])}
        return {**self.tfidf.arrays(f"{self.PREFIX}.tfidf"), **_logistic_arrays(self.model, self.PREFIX)}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> TaskClassifier:
        if f"{cls.PREFIX}.only" in arrays:
            return cls(only=str(arrays[f"{cls.PREFIX}.only"][0]))
        return cls(Tfidf.from_arrays(arrays, f"{cls.PREFIX}.tfidf"), _logistic_from(arrays, cls.PREFIX))


class TaskTypeRouter:
    """Classify the task type, then score it by how much its type needed stronger models on the train split.

    Score = Σ P(type | text) · need(type), need(type) = the mean oracle rung of that type's items, in [0, 1].
    """

    kind: ClassVar[str] = "task_type"

    def __init__(self, classifier: TaskClassifier | None = None, need: Mapping[str, float] | None = None) -> None:
        self.classifier = classifier or TaskClassifier()
        self.need = dict(need or {})

    def fit(self, texts: Sequence[str], task_types: Sequence[str], need: np.ndarray) -> TaskTypeRouter:
        self.classifier.fit(texts, task_types)
        types = np.asarray(task_types).astype(str)
        self.need = {t: float(need[types == t].mean()) for t in self.classifier.classes}
        return self

    def score(self, texts: Sequence[str]) -> np.ndarray:
        weights = np.array([self.need[c] for c in self.classifier.classes])
        return np.clip(self.classifier.proba(texts) @ weights, 0.0, 1.0)

    def arrays(self) -> dict[str, np.ndarray]:
        classes = self.classifier.classes
        return {
            **self.classifier.arrays(),
            "task_type.types": np.array(classes),
            "task_type.need": np.array([self.need[c] for c in classes]),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> TaskTypeRouter:
        need = dict(zip(arrays["task_type.types"].tolist(), arrays["task_type.need"].tolist(), strict=True))
        return cls(TaskClassifier.from_arrays(arrays), need)


class LearnedRouter:
    """Predict the oracle rung from text features (multinomial logistic regression); score = its expectation / (n−1).

    With two models this is P(the strong model is needed), RouteLLM's strong-win probability.
    """

    kind: ClassVar[str] = "learned"
    PREFIX = "learned"

    def __init__(self, featurizer: Featurizer, model: Any | None = None, k: int = 2, only: int | None = None) -> None:
        self.featurizer, self.model, self.k, self.only = featurizer, model, k, only

    @property
    def features(self) -> tuple[FeatureKind, ...]:
        return self.featurizer.kinds

    def fit(self, texts: Sequence[str], oracle_rung: np.ndarray, k: int) -> LearnedRouter:
        self.k = k
        labels = np.asarray(oracle_rung, dtype=int)
        self.featurizer.fit(texts)
        if len(set(labels.tolist())) == 1:
            self.only = int(labels[0])
            return self
        self.model = _logistic().fit(self.featurizer.transform(texts), labels)
        return self

    def score(self, texts: Sequence[str]) -> np.ndarray:
        if self.only is not None:
            return np.full(len(texts), self.only / max(self.k - 1, 1))
        proba = self.model.predict_proba(self.featurizer.transform(texts))
        rung = np.asarray(self.model.classes_, dtype=float) / max(self.k - 1, 1)
        return np.clip(proba @ rung, 0.0, 1.0)

    def arrays(self) -> dict[str, np.ndarray]:
        out = {**self.featurizer.arrays(self.PREFIX), f"{self.PREFIX}.k": np.array([self.k])}
        if self.only is not None:
            return {**out, f"{self.PREFIX}.only": np.array([self.only])}
        return {**out, **_logistic_arrays(self.model, self.PREFIX)}

    @classmethod
    def from_arrays(cls, features: Sequence[FeatureKind], arrays: Mapping[str, np.ndarray]) -> LearnedRouter:
        featurizer = Featurizer.from_arrays(features, arrays, cls.PREFIX)
        k = int(arrays[f"{cls.PREFIX}.k"][0])
        if f"{cls.PREFIX}.only" in arrays:
            return cls(featurizer, k=k, only=int(arrays[f"{cls.PREFIX}.only"][0]))
        return cls(featurizer, _logistic_from(arrays, cls.PREFIX), k=k)


def router_from_arrays(
    kind: RouterKind, features: Sequence[FeatureKind], arrays: Mapping[str, np.ndarray]
) -> KeywordRouter | TaskTypeRouter | LearnedRouter:
    """Rebuild a deployable router from its kind and stored arrays."""
    if kind == "keyword":
        return KeywordRouter()
    if kind == "task_type":
        return TaskTypeRouter.from_arrays(arrays)
    return LearnedRouter.from_arrays(features, arrays)
