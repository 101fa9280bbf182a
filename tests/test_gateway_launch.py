"""`lalo-bench serve` finding its upstreams: `--upstream NAME=URL` parsed and checked, or a server launched."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from lalo_bench.config import Catalog
from lalo_bench.errors import LaloError
from lalo_bench.gateway.serve import parse_upstream, upstreams_for
from lalo_bench.testing.gateway import write_keyword_policy
from tests.conftest import SMOL

NAMES = [f"{SMOL}:q4_1@llamacpp", f"{SMOL}:q8_0@vllm-remote"]


def test_upstream_flags_parse_and_bad_ones_are_one_line() -> None:
    assert parse_upstream("a:q@llamacpp=http://h:1/v1/#served") == ("a:q@llamacpp", "http://h:1/v1", "served")
    assert parse_upstream("a=https://h/v1") == ("a", "https://h/v1", None)
    for bad in ("a", "=http://h/v1", "a=ftp://h", "a=h:1/v1"):
        with pytest.raises(LaloError, match="expected NAME=URL"):
            parse_upstream(bad)


def test_upstreams_must_name_policy_models_and_cover_the_rest(tmp_path: Path, catalog: Catalog) -> None:
    policy = write_keyword_policy(tmp_path / "p.json", NAMES)
    with (
        pytest.raises(LaloError, match="which the policy does not hold"),
        upstreams_for(policy, ["nope:q@x=http://127.0.0.1:1/v1"], lambda: catalog),
    ):
        pass
    # The second model's backend is not one lalo-bench launches, and --no-launch forbids launching the first.
    with (
        pytest.raises(LaloError, match=r"no upstream for .*q8_0@vllm-remote.*--upstream"),
        upstreams_for(policy, [f"{NAMES[0]}=http://127.0.0.1:1/v1"], lambda: catalog),
    ):
        pass
    with (
        pytest.raises(LaloError, match=r"no upstream for .*q4_1@llamacpp"),
        upstreams_for(policy, [f"{NAMES[1]}=http://127.0.0.1:1/v1"], lambda: catalog, launch=False),
    ):
        pass


@pytest.mark.slow
def test_a_policy_model_measured_on_llamacpp_gets_a_llama_server(
    tmp_path: Path, catalog: Catalog, smollm2: Path
) -> None:
    """Without --upstream, the model the sweep ran in-process on llama.cpp is served by a launched llama.cpp server."""
    policy = write_keyword_policy(tmp_path / "p.json", NAMES)
    with upstreams_for(policy, [f"{NAMES[1]}=http://127.0.0.1:1/v1"], lambda: catalog, n_threads=1) as specs:
        launched = next(s for s in specs if s.name == NAMES[0])
        assert launched.served_model == f"{SMOL}:q4_1"
        models = httpx.get(f"{launched.url}/models", timeout=10).json()
        assert launched.served_model in [m["id"] for m in models["data"]]
        url = launched.url
    with pytest.raises(httpx.HTTPError):  # stopped with the gateway
        httpx.get(f"{url}/models", timeout=2)
