"""The HRM backend on tiny, randomly initialised checkpoints in the published format.

The weights here are random: these tests prove the file format, strict loading,
prompt encoding, the ACT forward pass and decoding to a grid of the right shape.
They say nothing about HRM's quality and must never be reported as a result.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from lalo_bench.backends import open_backend
from lalo_bench.backends.base import ChatMessage, GenerationRequest
from lalo_bench.backends.hrm import HrmBackend, run_act
from lalo_bench.config import BackendSpec, GenerationSettings
from lalo_bench.errors import BackendError
from lalo_bench.measure.timing import timed_generate
from lalo_bench.suites.puzzles import MazeItem, PuzzleSuite, SudokuItem

HIDDEN, HEADS, PUZZLE_EMB = 32, 2, 32
INTER = 256  # HRM's SwiGLU width: round(4 * 32 * 2 / 3) rounded up to a multiple of 256


def published_state_dict(vocab: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Keys and shapes as HRM's pretrain.py saves them (ACTLossHead under torch.compile), one H and one L layer."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * 0.2

    state = {
        "model.inner.H_init": rand(HIDDEN).to(torch.bfloat16),
        "model.inner.L_init": rand(HIDDEN).to(torch.bfloat16),
        "model.inner.embed_tokens.embedding_weight": rand(vocab, HIDDEN),
        "model.inner.lm_head.weight": rand(vocab, HIDDEN),
        "model.inner.q_head.weight": torch.zeros(2, HIDDEN),
        "model.inner.q_head.bias": torch.full((2,), -5.0),
        "model.inner.puzzle_emb.weights": torch.zeros(1, PUZZLE_EMB),
    }
    for level in ("H_level", "L_level"):
        prefix = f"model.inner.{level}.layers.0"
        state[f"{prefix}.self_attn.qkv_proj.weight"] = rand(3 * HIDDEN, HIDDEN)
        state[f"{prefix}.self_attn.o_proj.weight"] = rand(HIDDEN, HIDDEN)
        state[f"{prefix}.mlp.gate_up_proj.weight"] = rand(2 * INTER, HIDDEN)
        state[f"{prefix}.mlp.down_proj.weight"] = rand(HIDDEN, INTER)
    return {f"_orig_mod.{k}": v for k, v in state.items()}


def all_config(data_path: str) -> dict:
    """What pretrain.py dumps: the resolved hydra config, arch block included."""
    return {
        "arch": {
            "name": "hrm.hrm_act_v1@HierarchicalReasoningModel_ACTV1",
            "loss": {"name": "losses@ACTLossHead", "loss_type": "stablemax_cross_entropy"},
            "halt_exploration_prob": 0.1,
            "halt_max_steps": 2,
            "H_cycles": 2,
            "L_cycles": 2,
            "H_layers": 1,
            "L_layers": 1,
            "hidden_size": HIDDEN,
            "num_heads": HEADS,
            "expansion": 4,
            "puzzle_emb_ndim": PUZZLE_EMB,
            "pos_encodings": "rope",
        },
        "data_path": data_path,
        "global_batch_size": 768,
        "epochs": 20000,
        "lr": 1e-4,
        "seed": 0,
    }


def write_checkpoint(folder: Path, vocab: int, data_path: str, state: dict | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "checkpoint"
    torch.save(state if state is not None else published_state_dict(vocab), path)
    (folder / "all_config.yaml").write_text(yaml.safe_dump(all_config(data_path)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def suite() -> PuzzleSuite:
    return PuzzleSuite(kinds="sudoku,maze")


def _item(suite: PuzzleSuite, category: str) -> SudokuItem | MazeItem:
    return next(i for i in suite.items() if i.category == category)  # type: ignore[return-value]


def test_sudoku_checkpoint_loads_strictly_and_answers(tmp_path: Path, suite: PuzzleSuite) -> None:
    backend = HrmBackend(write_checkpoint(tmp_path / "sudoku", 11, "data/sudoku-extreme-1k-aug-1000"))
    assert backend.task == "sudoku" and backend.dims.vocab_size == 11
    for category, n in (("sudoku_9x9", 9), ("sudoku_4x4", 4)):
        item = _item(suite, category)
        generation = timed_generate(backend, suite.request(item, 256))
        lines = generation.text.split("\n")
        assert len(lines) == n and all(len(line) == n for line in lines)
        assert set(generation.text) <= set("0123456789?\n")
        assert generation.timing.prompt_tokens == n * n
        assert len(generation.timing.token_times) == n * n
        assert generation.finish_reason == "stop"
        suite.score(item, generation.text)  # any grid is scoreable; random weights decide nothing here
    assert timed_generate(backend, suite.request(item, 256)).text == generation.text  # deterministic
    backend.close()
    backend.close()


def test_bfloat16_forward_runs(tmp_path: Path) -> None:
    """The arithmetic a CUDA device uses (the config's forward_dtype), exercised on CPU."""
    backend = HrmBackend(write_checkpoint(tmp_path, 11, "data/sudoku-extreme-full"))
    tokens = torch.randint(1, 11, (2, 81), generator=torch.Generator().manual_seed(0))
    out, q = run_act(backend.model.model.inner, tokens, torch.bfloat16)
    assert out.shape == (2, 81) and q.shape == (2, 2) and q.dtype == torch.float32
    assert int(out.min()) >= 0 and int(out.max()) < 11


def test_maze_checkpoint_pads_to_trained_size(tmp_path: Path, suite: PuzzleSuite) -> None:
    backend = HrmBackend(write_checkpoint(tmp_path / "maze", 6, "data/maze-30x30-hard-1k"))
    assert backend.task == "maze" and backend.dims.seq_len == 900
    for category, n in (("maze_10x10", 10), ("maze_30x30", 30)):
        generation = timed_generate(backend, suite.request(_item(suite, category), 2048))
        lines = generation.text.split("\n")
        assert len(lines) == n and all(len(line) == n for line in lines)
        assert set(generation.text) <= set("#.SGo?\n")
        assert generation.timing.prompt_tokens == 900


def test_folder_and_unprefixed_keys_load(tmp_path: Path, suite: PuzzleSuite) -> None:
    plain = {k.removeprefix("_orig_mod."): v for k, v in published_state_dict(11).items()}
    write_checkpoint(tmp_path / "run", 11, "data/sudoku-extreme-full", state=plain)
    (tmp_path / "run" / "checkpoint").rename(tmp_path / "run" / "step_52080")
    backend = HrmBackend(tmp_path / "run")
    assert backend.path.name == "step_52080"
    assert len(list(backend.stream(suite.request(_item(suite, "sudoku_6x6"), 64)))) == 6


def test_open_backend_builds_hrm(tmp_path: Path) -> None:
    spec = BackendSpec(id="hrm", kind="hrm", formats=["checkpoint"])
    backend = open_backend(spec, write_checkpoint(tmp_path, 6, "data/maze-30x30-hard-1k"), GenerationSettings())
    assert isinstance(backend, HrmBackend)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop("_orig_mod.model.inner.q_head.bias"), "1 missing"),
        (lambda s: s.update({"_orig_mod.model.inner.extra": torch.zeros(1)}), "1 unexpected"),
        (lambda s: s.update({"_orig_mod.model.inner.lm_head.weight": torch.zeros(11, 16)}), "has shape"),
    ],
)
def test_weights_that_do_not_match_the_config_are_refused(tmp_path: Path, change, message: str) -> None:
    state = published_state_dict(11)
    change(state)
    with pytest.raises(BackendError, match=message) as err:
        HrmBackend(write_checkpoint(tmp_path, 11, "data/sudoku-extreme-full", state=state))
    assert "\n" not in str(err.value)


def test_missing_or_corrupt_checkpoint_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="HRM checkpoint not found"):
        HrmBackend(tmp_path / "nope")
    path = write_checkpoint(tmp_path / "bad", 11, "data/sudoku-extreme-full")
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(BackendError, match="not a readable torch state_dict") as err:
        HrmBackend(path)
    assert "\n" not in str(err.value)
    good = write_checkpoint(tmp_path / "noconfig", 11, "data/sudoku-extreme-full")
    (good.parent / "all_config.yaml").unlink()
    with pytest.raises(BackendError, match=r"all_config\.yaml: missing"):
        HrmBackend(good)
    (good.parent / "all_config.yaml").write_text("arch: {hidden_size: 32}\n", encoding="utf-8")
    with pytest.raises(BackendError, match=r"arch\.H_cycles") as err:
        HrmBackend(good)
    assert "\n" not in str(err.value)


def test_prompt_of_another_task_is_refused(tmp_path: Path, suite: PuzzleSuite) -> None:
    backend = HrmBackend(write_checkpoint(tmp_path, 11, "data/sudoku-extreme-full"))
    with pytest.raises(BackendError, match="sudoku checkpoint cannot answer a maze prompt"):
        list(backend.stream(suite.request(_item(suite, "maze_10x10"), 64)))
    arc_item = next(i for i in PuzzleSuite(kinds="arc").items())
    with pytest.raises(BackendError, match="sudoku and maze prompts only"):
        list(backend.stream(PuzzleSuite(kinds="arc").request(arc_item, 64)))
    chat = GenerationRequest(messages=[ChatMessage(role="user", content="hello")])
    with pytest.raises(BackendError, match="cannot read the prompt"):
        list(backend.stream(chat))
