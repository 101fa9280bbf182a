"""``routing_policy.json``: the versioned file a gateway loads to route requests across a ladder of models.

Version 1 holds the models in ladder order (cheapest first) with their quant, backend and weights
sha256; the router type, its features, and the path + sha256 of its weights file (numpy arrays, loaded
with ``allow_pickle=False``) and of the embedding model it needs; thresholds (global, and per task type
where that helped on the train split); the model to use when the router cannot score; fallbacks per
model; and what the calibration expects on the held-out test split. A file that is not JSON, not a
policy, of another version, inconsistent, or whose weights changed is refused with one line.
"""

from __future__ import annotations

import hashlib
import io
import json
from itertools import pairwise
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from lalo_bench.config import NonNegFloat, Sha256, Strict, parse
from lalo_bench.errors import ConfigError, ModelFileError
from lalo_bench.routing.calibrate import Objective
from lalo_bench.routing.cost import COST_UNIT
from lalo_bench.routing.features import FeatureKind
from lalo_bench.routing.routers import RouterKind
from lalo_bench.suites.base import TaskType

POLICY_KIND = "lalo-bench/routing-policy"
POLICY_VERSION = 1

Unit = float  # a share or quality in [0, 1]


class WeightsFile(Strict):
    path: str = Field(description="relative to the policy file")
    sha256: Sha256


class EmbeddingModel(Strict):
    package: str
    version: str
    file: str = Field(description="the weights file, relative to the installed package's site-packages")
    sha256: Sha256


class PolicyModel(Strict):
    name: str = Field(description="unique: model:quant@backend")
    model: str = Field(description="catalog model id")
    quant: str
    backend: str = Field(description="the backend the sweep measured it on")
    weights_sha256: Sha256 | None = None
    cost_per_request: NonNegFloat = Field(description="mean over the train split, in cost_unit")
    quality_train: float = Field(ge=0, le=1)


class RouterSpec(Strict):
    type: RouterKind
    features: list[FeatureKind] = Field(default_factory=list)
    weights: WeightsFile | None = None
    embedding: EmbeddingModel | None = None

    @model_validator(mode="after")
    def _needs(self) -> RouterSpec:
        if self.type != "keyword" and self.weights is None:
            raise ValueError(f"a '{self.type}' router needs its weights file")
        if self.type == "learned" and not self.features:
            raise ValueError("a learned router names its features (tfidf, embed)")
        if "embed" in self.features and self.embedding is None:
            raise ValueError("embedding features need the embedding model's package and sha256")
        return self


class Thresholds(Strict):
    default: list[NonNegFloat]
    per_task_type: dict[TaskType, list[NonNegFloat]] = Field(default_factory=dict)


class ExpectedPoint(Strict):
    split: Literal["train", "test"]
    requests: int = Field(gt=0)
    quality: float = Field(ge=0, le=1)
    cost_per_request: NonNegFloat
    p95_ms: NonNegFloat
    shares: list[float] = Field(description="share of requests per model, ladder order")


class PolicySource(Strict):
    sweep_run_id: str
    routing_run_id: str | None = None
    tracking_uri: str
    created_utc: str
    lalo_bench_version: str


class RoutingPolicy(Strict):
    kind: Literal["lalo-bench/routing-policy"] = POLICY_KIND
    version: Literal[1] = POLICY_VERSION
    cost_unit: str = COST_UNIT
    models: list[PolicyModel] = Field(min_length=2, description="ladder order: cheapest first")
    router: RouterSpec
    thresholds: Thresholds
    task_types: list[TaskType] = Field(default_factory=list, description="classes of the stored task classifier")
    objective: Objective
    target_met_on_train: bool
    default_model: str = Field(description="used when the router cannot score a request")
    fallbacks: dict[str, list[str]] = Field(description="model name → models to try, in order, when it fails")
    cloud_fallback: bool = Field(
        default=False,
        description="a gateway may send a request to its cloud endpoint when every local model failed; set from the "
        "client profile's privacy.cloud_fallback when a report ships the policy",
    )
    expected: list[ExpectedPoint] = Field(default_factory=list)
    source: PolicySource

    @model_validator(mode="after")
    def _consistent(self) -> RoutingPolicy:
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError("model names must be unique")
        for where, cuts in [("default", self.thresholds.default), *self.thresholds.per_task_type.items()]:
            if len(cuts) != len(names) - 1:
                raise ValueError(f"thresholds.{where}: {len(names)} models need {len(names) - 1} thresholds")
            if any(b < a for a, b in pairwise(cuts)):
                raise ValueError(f"thresholds.{where} must not decrease")
        missing = set(self.thresholds.per_task_type) - set(self.task_types)
        if missing:
            raise ValueError(f"per-task-type thresholds for {sorted(missing)} but no task classifier knows them")
        if (self.task_types or self.thresholds.per_task_type) and self.router.weights is None:
            raise ValueError("per-task-type thresholds need the task classifier in the weights file")
        if self.default_model not in names:
            raise ValueError(f"default_model '{self.default_model}' is not one of the models")
        for name, alternatives in self.fallbacks.items():
            unknown = [a for a in [name, *alternatives] if a not in names]
            if unknown:
                raise ValueError(f"fallbacks name unknown model(s): {', '.join(unknown)}")
            if name in alternatives:
                raise ValueError(f"fallbacks of '{name}' include itself")
        return self

    def thresholds_for(self, task_type: str | None) -> list[float]:
        if task_type is not None and task_type in self.thresholds.per_task_type:
            return self.thresholds.per_task_type[task_type]  # type: ignore[index]
        return self.thresholds.default


def default_fallbacks(names: list[str]) -> dict[str, list[str]]:
    """Each model falls back to the stronger ones in ladder order, then to the weaker ones, strongest first."""
    return {n: names[i + 1 :] + names[:i][::-1] for i, n in enumerate(names)}


# ---------------------------------------------------------------- files


def write_policy(policy: RoutingPolicy, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(policy.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return path


def save_weights(arrays: dict[str, np.ndarray], path: Path) -> str:
    """Write the router's arrays as an uncompressed .npz (no object arrays) and return its sha256."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    data = buffer.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def load_policy(path: str | Path) -> RoutingPolicy:
    """Read and validate a policy; anything wrong is one ConfigError line naming the file and field."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(str(p), "", "no such file")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(str(p), f"line {exc.lineno}, column {exc.colno}", f"not valid JSON: {exc.msg}") from None
    except UnicodeDecodeError:
        raise ConfigError(str(p), "", "not UTF-8 text: not a routing policy") from None
    if not isinstance(data, dict) or data.get("kind") != POLICY_KIND:
        raise ConfigError(str(p), "kind", f"not a routing policy (expected kind '{POLICY_KIND}')")
    if data.get("version") != POLICY_VERSION:
        raise ConfigError(
            str(p),
            "version",
            f"unsupported policy version {data.get('version')!r}; this lalo-bench reads {POLICY_VERSION}",
        )
    return parse(RoutingPolicy, data, str(p))


def load_weights(policy: RoutingPolicy, policy_path: Path) -> dict[str, np.ndarray]:
    """The router's arrays, after checking the file's sha256 against the policy (empty for the keyword router)."""
    ref = policy.router.weights
    if ref is None:
        return {}
    path = (policy_path.parent / ref.path).resolve()
    if not path.is_file():
        raise ModelFileError(f"{policy_path}: router weights {path} are missing")
    data = path.read_bytes()
    found = hashlib.sha256(data).hexdigest()
    if found != ref.sha256:
        raise ModelFileError(f"{path}: sha256 {found} does not match the policy's {ref.sha256}")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (ValueError, OSError) as exc:
        raise ModelFileError(f"{path}: not a readable weights file ({exc})") from None
