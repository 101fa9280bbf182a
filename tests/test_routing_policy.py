"""routing_policy.json: round-trips, is rebuilt into the same router a gateway would run, and a corrupt or
inconsistent file is refused with one line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from lalo_bench.errors import ConfigError, ModelFileError
from lalo_bench.routing.calibrate import Objective
from lalo_bench.routing.features import Featurizer
from lalo_bench.routing.policy import (
    PolicyModel,
    PolicySource,
    RouterSpec,
    RoutingPolicy,
    Thresholds,
    WeightsFile,
    default_fallbacks,
    load_policy,
    save_weights,
    write_policy,
)
from lalo_bench.routing.routers import LearnedRouter, TaskClassifier
from lalo_bench.routing.runtime import PolicyRouter
from tests.conftest import run_cli

NAMES = ["weak:q4@llamacpp", "mid:q4@llamacpp", "strong:q4@llamacpp"]
TEXTS = [f"prove the theorem about sets {i}" for i in range(20)] + [
    f"extract the date from memo {i}" for i in range(20)
]
RUNGS = np.array([2] * 20 + [0] * 20)
TYPES = ["reasoning"] * 20 + ["extraction"] * 20


def policy(weights: WeightsFile | None = None, **changes: object) -> RoutingPolicy:
    data = {
        "models": [
            PolicyModel(
                name=n, model=n.split(":")[0], quant="q4", backend="llamacpp", cost_per_request=c, quality_train=q
            )
            for n, c, q in zip(NAMES, [1.0, 3.0, 9.0], [0.2, 0.5, 0.8], strict=True)
        ],
        "router": RouterSpec(type="learned", features=["tfidf"], weights=weights)
        if weights
        else RouterSpec(type="keyword"),
        "thresholds": Thresholds(default=[0.3, 0.7]),
        "objective": Objective(kind="target_quality", value=0.7),
        "target_met_on_train": True,
        "default_model": NAMES[-1],
        "fallbacks": default_fallbacks(NAMES),
        "source": PolicySource(
            sweep_run_id="abc",
            tracking_uri="sqlite:///x.db",
            created_utc="2026-01-01T00:00:00Z",
            lalo_bench_version="0.1.0",
        ),
    }
    data.update(changes)
    return RoutingPolicy(**data)


def learned_policy(tmp_path: Path, per_type: bool = False) -> tuple[Path, LearnedRouter]:
    router = LearnedRouter(Featurizer(["tfidf"])).fit(TEXTS, RUNGS, 3)
    arrays = router.arrays()
    changes: dict[str, object] = {}
    if per_type:
        arrays.update(TaskClassifier().fit(TEXTS, TYPES).arrays())
        changes = {
            "task_types": ["extraction", "reasoning"],
            "thresholds": Thresholds(default=[0.3, 0.7], per_task_type={"extraction": [1.01, 1.01]}),
        }
    sha = save_weights(arrays, tmp_path / "routing_policy.weights.npz")
    path = write_policy(
        policy(WeightsFile(path="routing_policy.weights.npz", sha256=sha), **changes), tmp_path / "routing_policy.json"
    )
    return path, router


def test_policy_round_trips(tmp_path: Path) -> None:
    written = policy()
    path = write_policy(written, tmp_path / "p.json")
    assert load_policy(path) == written
    assert json.loads(path.read_text())["version"] == 1
    assert written.fallbacks[NAMES[1]] == [NAMES[2], NAMES[0]]  # stronger first, then weaker


def test_loaded_router_scores_as_the_trained_one(tmp_path: Path) -> None:
    path, router = learned_policy(tmp_path)
    loaded = PolicyRouter.from_file(path)
    probe = ["prove the theorem about sets 99", "extract the date from memo 99", "hello"]
    assert np.allclose([d.score for d in loaded.route_texts(probe)], router.score(probe))
    decisions = loaded.route_texts(probe[:2])
    assert [d.model for d in decisions] == [NAMES[2], NAMES[0]]
    assert decisions[0].fallbacks == (NAMES[1], NAMES[0])
    chat = loaded.route([{"role": "system", "content": "be brief"}, {"role": "user", "content": probe[0]}])
    assert chat.model == NAMES[2]


def test_per_task_type_thresholds_apply_to_the_predicted_type(tmp_path: Path) -> None:
    path, _ = learned_policy(tmp_path, per_type=True)
    loaded = PolicyRouter.from_file(path)
    reasoning, extraction = loaded.route_texts(["prove the theorem about sets 5", "extract the date from memo 5"])
    assert (reasoning.task_type, reasoning.model) == ("reasoning", NAMES[2])
    assert (extraction.task_type, extraction.model) == ("extraction", NAMES[0])  # 1.01: never above the weakest


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda text: text[: len(text) // 2], "not valid JSON"),
        (lambda text: text.replace('"version": 1', '"version": 2'), "unsupported policy version 2"),
        (lambda text: text.replace('"kind": "lalo-bench/routing-policy"', '"kind": "x"'), "not a routing policy"),
        (lambda text: text.replace("0.3,", "0.9,"), "thresholds.default must not decrease"),
        (lambda text: text.replace('"default_model": "strong', '"default_model": "huge'), "default_model 'huge"),
        (lambda text: text.replace('"cost_per_request": 1.0', '"cost_per_request": -1'), "greater than or equal"),
        (lambda text: text.replace('"objective": {', '"objective": {"extra": 1, '), "unknown key 'extra'"),
    ],
)
def test_a_corrupt_policy_is_refused_with_one_line(tmp_path: Path, mutate: Callable[[str], str], message: str) -> None:
    path = write_policy(policy(), tmp_path / "p.json")
    path.write_text(mutate(path.read_text()))
    with pytest.raises(ConfigError) as info:
        load_policy(path)
    text = str(info.value)
    assert message in text and "\n" not in text and text.startswith(str(path))


def test_changed_weights_are_refused(tmp_path: Path) -> None:
    path, _ = learned_policy(tmp_path)
    weights = tmp_path / "routing_policy.weights.npz"
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(ModelFileError, match="does not match the policy"):
        PolicyRouter.from_file(path)
    weights.unlink()
    with pytest.raises(ModelFileError, match="are missing"):
        PolicyRouter.from_file(path)


def test_route_check_cli_prints_one_line_for_a_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "routing_policy.json"
    path.write_text('{"kind": "lalo-bench/routing-policy", "version": 1, "models": [')
    proc = run_cli("route", "check", str(path))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "not valid JSON" in proc.stderr
    assert "Traceback" not in proc.stderr
