"""Hierarchical Reasoning Model (HRM, ACT v1) checkpoints run with plain torch on Sudoku and maze prompts.

A published HRM checkpoint (sapientinc/HRM ``pretrain.py``) is the
``state_dict`` of the ``ACTLossHead`` wrapping ``HierarchicalReasoningModel_ACTV1``
(keys ``model.inner.…``, prefixed ``_orig_mod.`` when it was trained under
``torch.compile``), saved with ``torch.save`` beside an ``all_config.yaml``
whose ``arch`` block holds the architecture. This module re-implements that
model's forward pass (``models/hrm/hrm_act_v1.py``, ``models/layers.py``) with
the same parameter names, so a real checkpoint loads with
``load_state_dict(strict=True)``; attention is
``torch.nn.functional.scaled_dot_product_attention`` instead of FlashAttention.

Inputs use HRM's dataset vocabularies: Sudoku cells 0–9 become tokens 1–10
(``build_sudoku_dataset.py``, vocab 11), maze characters ``# SGo`` become 1–5
(``build_maze_dataset.py``, vocab 6); 0 is padding. Like HRM's ``evaluate.py``
the ACT loop always runs ``halt_max_steps`` segments; the argmax tokens are
decoded back into the grid the prompt asks for.

The tests exercise this backend with a tiny, randomly initialised checkpoint:
that proves the format, the loading and the forward pass, never answer quality.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from torch import nn

from lalo_bench.backends.base import GenerationRequest, StreamChunk
from lalo_bench.backends.solver import prompt_text
from lalo_bench.errors import BackendError
from lalo_bench.suites.puzzles.maze import CHARSET
from lalo_bench.suites.puzzles.text import MalformedPrompt, MazeSpec, SudokuSpec, maze_answer, parse_prompt

CONFIG_NAME = "all_config.yaml"
COMPILE_PREFIX = "_orig_mod."
CosSin = tuple[torch.Tensor, torch.Tensor] | None
TASK_BY_VOCAB = {11: "sudoku", 6: "maze", 12: "arc"}
"""HRM's dataset vocabularies: pad + digits 0–9; pad + ``# SGo``; pad + EOS + ARC colours 0–9."""


class HrmArch(BaseModel):
    """The ``arch`` block of ``all_config.yaml`` (hydra's ``config/arch/hrm_v1.yaml`` after resolution)."""

    model_config = ConfigDict(extra="ignore")

    name: str = "hrm.hrm_act_v1@HierarchicalReasoningModel_ACTV1"
    H_cycles: int
    L_cycles: int
    H_layers: int
    L_layers: int
    hidden_size: int
    num_heads: int
    expansion: float
    puzzle_emb_ndim: int = 0
    pos_encodings: Literal["rope", "learned"] = "rope"
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    halt_max_steps: int
    forward_dtype: str = "bfloat16"
    seq_len: int | None = None  # not in HRM's own configs (it comes from the dataset); honoured when present


class HrmConfig(BaseModel):
    model_config = ConfigDict(extra="ignore")

    arch: HrmArch
    data_path: str | None = None


class Dims(BaseModel):
    """Sizes HRM takes from the dataset's metadata, read here from the weights themselves."""

    vocab_size: int
    num_puzzle_identifiers: int
    seq_len: int | None


# ---------------------------------------------------------------- layers (names as in models/layers.py)


class CastedLinear(nn.Module):
    def __init__(self, in_features: int, out_features: int, bias: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias.to(x.dtype) if self.bias is not None else None
        return F.linear(x, self.weight.to(x.dtype), bias)


class CastedEmbedding(nn.Module):
    def __init__(self, num_embeddings: int, embedding_dim: int) -> None:
        super().__init__()
        self.embedding_weight = nn.Parameter(torch.empty(num_embeddings, embedding_dim))

    def forward(self, ids: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return F.embedding(ids, self.embedding_weight.to(dtype))


class PuzzleEmbedding(nn.Module):
    """``CastedSparseEmbedding`` at inference: only its persistent ``weights`` buffer matters."""

    def __init__(self, num_embeddings: int, embedding_dim: int) -> None:
        super().__init__()
        self.weights = nn.Buffer(torch.zeros(num_embeddings, embedding_dim), persistent=True)


def rms_norm(x: torch.Tensor, eps: float) -> torch.Tensor:
    xf = x.to(torch.float32)
    return (xf * torch.rsqrt(xf.square().mean(-1, keepdim=True) + eps)).to(x.dtype)


def rotary(seq_len: int, dim: int, base: float, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32, device=device) / dim))
    freqs = torch.outer(torch.arange(seq_len, dtype=torch.float32, device=device), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: [batch, seq, heads, head_dim]; computed in float32 like HRM's ``apply_rotary_pos_emb``."""
    xf = x.to(cos.dtype)
    return (xf * cos.unsqueeze(-2) + _rotate_half(xf) * sin.unsqueeze(-2)).to(x.dtype)


class Attention(nn.Module):
    def __init__(self, hidden_size: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads, self.head_dim = num_heads, hidden_size // num_heads
        self.qkv_proj = CastedLinear(hidden_size, 3 * num_heads * self.head_dim, bias=False)
        self.o_proj = CastedLinear(num_heads * self.head_dim, hidden_size, bias=False)

    def forward(self, x: torch.Tensor, cos_sin: CosSin) -> torch.Tensor:
        b, s, _ = x.shape
        qkv = self.qkv_proj(x).view(b, s, 3 * self.num_heads, self.head_dim)
        q, k, v = qkv.split(self.num_heads, dim=2)
        if cos_sin is not None:
            q, k = apply_rotary(q, *cos_sin), apply_rotary(k, *cos_sin)
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=False)
        return self.o_proj(out.transpose(1, 2).reshape(b, s, self.num_heads * self.head_dim))


class SwiGLU(nn.Module):
    def __init__(self, hidden_size: int, expansion: float) -> None:
        super().__init__()
        inter = -(round(expansion * hidden_size * 2 / 3) // -256) * 256
        self.gate_up_proj = CastedLinear(hidden_size, inter * 2, bias=False)
        self.down_proj = CastedLinear(inter, hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up_proj(x).chunk(2, dim=-1)
        return self.down_proj(F.silu(gate) * up)


class Block(nn.Module):
    """Post-norm transformer block, non-causal."""

    def __init__(self, arch: HrmArch) -> None:
        super().__init__()
        self.self_attn = Attention(arch.hidden_size, arch.num_heads)
        self.mlp = SwiGLU(arch.hidden_size, arch.expansion)
        self.eps = arch.rms_norm_eps

    def forward(self, x: torch.Tensor, cos_sin: CosSin) -> torch.Tensor:
        x = rms_norm(x + self.self_attn(x, cos_sin), self.eps)
        return rms_norm(x + self.mlp(x), self.eps)


class ReasoningModule(nn.Module):
    def __init__(self, arch: HrmArch, n_layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(Block(arch) for _ in range(n_layers))

    def forward(self, x: torch.Tensor, injection: torch.Tensor, cos_sin: CosSin) -> torch.Tensor:
        x = x + injection
        for layer in self.layers:
            x = layer(x, cos_sin)
        return x


# ---------------------------------------------------------------- model (names as in models/hrm/hrm_act_v1.py)


class Inner(nn.Module):
    """``HierarchicalReasoningModel_ACTV1_Inner``: embeddings, the H and L modules, LM and Q heads."""

    def __init__(self, arch: HrmArch, dims: Dims) -> None:
        super().__init__()
        self.arch, self.dims = arch, dims
        h = arch.hidden_size
        self.embed_scale = math.sqrt(h)
        self.embed_tokens = CastedEmbedding(dims.vocab_size, h)
        self.lm_head = CastedLinear(h, dims.vocab_size, bias=False)
        self.q_head = CastedLinear(h, 2, bias=True)
        self.puzzle_emb_len = -(arch.puzzle_emb_ndim // -h)
        if arch.puzzle_emb_ndim > 0:
            self.puzzle_emb = PuzzleEmbedding(dims.num_puzzle_identifiers, arch.puzzle_emb_ndim)
        if arch.pos_encodings == "learned":
            self.embed_pos = CastedEmbedding((dims.seq_len or 0) + self.puzzle_emb_len, h)
        self.H_level = ReasoningModule(arch, arch.H_layers)
        self.L_level = ReasoningModule(arch, arch.L_layers)
        self.H_init = nn.Buffer(torch.zeros(h), persistent=True)
        self.L_init = nn.Buffer(torch.zeros(h), persistent=True)

    def embed(self, tokens: torch.Tensor, puzzle_ids: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        emb = self.embed_tokens(tokens, dtype)
        if self.arch.puzzle_emb_ndim > 0:
            pe = self.puzzle_emb.weights[puzzle_ids].to(dtype)
            pad = self.puzzle_emb_len * self.arch.hidden_size - pe.shape[-1]
            pe = F.pad(pe, (0, pad)) if pad > 0 else pe
            emb = torch.cat((pe.view(-1, self.puzzle_emb_len, self.arch.hidden_size), emb), dim=-2)
        if self.arch.pos_encodings == "learned":
            emb = 0.707106781 * (emb + self.embed_pos.embedding_weight.to(dtype))
        return self.embed_scale * emb

    def segment(
        self, z_h: torch.Tensor, z_l: torch.Tensor, injected: torch.Tensor, cos_sin: CosSin
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One ACT segment: H_cycles × (L_cycles low-level updates, then one high-level update)."""
        for _ in range(self.arch.H_cycles):
            for _ in range(self.arch.L_cycles):
                z_l = self.L_level(z_l, z_h + injected, cos_sin)
            z_h = self.H_level(z_h, z_l, cos_sin)
        return z_h, z_l


class ActV1(nn.Module):
    """``HierarchicalReasoningModel_ACTV1``: the ACT wrapper, holding ``inner``."""

    def __init__(self, arch: HrmArch, dims: Dims) -> None:
        super().__init__()
        self.inner = Inner(arch, dims)


class LossHead(nn.Module):
    """``ACTLossHead``'s place in the state_dict: the model sits under ``model``."""

    def __init__(self, arch: HrmArch, dims: Dims) -> None:
        super().__init__()
        self.model = ActV1(arch, dims)


@torch.inference_mode()
def run_act(inner: Inner, tokens: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Argmax tokens and the final (q_halt, q_continue) logits after ``halt_max_steps`` segments (HRM's eval)."""
    batch, seq = tokens.shape
    total = seq + inner.puzzle_emb_len
    ids = torch.zeros(batch, dtype=torch.long, device=tokens.device)
    injected = inner.embed(tokens.long(), ids, dtype)
    cos_sin = None
    if inner.arch.pos_encodings == "rope":
        cos_sin = rotary(total, inner.arch.hidden_size // inner.arch.num_heads, inner.arch.rope_theta, tokens.device)
    z_h = inner.H_init.to(dtype).expand(batch, total, -1)
    z_l = inner.L_init.to(dtype).expand(batch, total, -1)
    for _ in range(inner.arch.halt_max_steps):
        z_h, z_l = inner.segment(z_h, z_l, injected, cos_sin)
    logits = inner.lm_head(z_h)[:, inner.puzzle_emb_len :]
    q = inner.q_head(z_h[:, 0]).to(torch.float32)
    return logits.argmax(-1), q


# ---------------------------------------------------------------- checkpoint


def _checkpoint_file(path: Path) -> Path:
    """The file itself, or in a folder HF's ``checkpoint`` or else pretrain.py's latest ``step_N``."""
    if path.is_file():
        return path
    if path.is_dir():
        if (path / "checkpoint").is_file():
            return path / "checkpoint"
        steps = [p for p in path.glob("step_*") if re.fullmatch(r"step_\d+", p.name) and p.is_file()]
        if steps:
            return max(steps, key=lambda p: int(p.name.removeprefix("step_")))
    raise BackendError(f"{path}: HRM checkpoint not found (a torch state_dict file with {CONFIG_NAME} beside it)")


def read_config(path: Path) -> HrmConfig:
    config_path = path.parent / CONFIG_NAME
    if not config_path.is_file():
        raise BackendError(f"{config_path}: missing; an HRM checkpoint needs the {CONFIG_NAME} it was trained with")
    try:
        config = HrmConfig.model_validate(yaml.safe_load(config_path.read_text(encoding="utf-8")))
    except yaml.YAMLError as exc:
        raise BackendError(f"{config_path}: not valid YAML ({type(exc).__name__})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BackendError(f"{config_path}: {where}: {first['msg']}") from None
    if "hrm_act_v1" not in config.arch.name:
        raise BackendError(f"{config_path}: arch {config.arch.name!r} is not HRM ACT v1")
    return config


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors keyed as ``model.inner.…`` (``_orig_mod.`` removed; a bare ``inner.…`` dict is accepted too)."""
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a truncated or foreign file
        raise BackendError(f"{path}: not a readable torch state_dict ({type(exc).__name__})") from None
    if not isinstance(raw, dict) or not all(isinstance(v, torch.Tensor) for v in raw.values()):
        raise BackendError(f"{path}: not a state_dict of tensors")
    out = {}
    for key, value in raw.items():
        key = key.removeprefix(COMPILE_PREFIX)
        out[key if key.startswith("model.") else f"model.{key}"] = value
    return out


def _seq_len_hint(config: HrmConfig, state: dict[str, torch.Tensor], puzzle_emb_len: int) -> int | None:
    if config.arch.seq_len:
        return config.arch.seq_len
    pos = state.get("model.inner.embed_pos.embedding_weight")
    if pos is not None:
        return pos.shape[0] - puzzle_emb_len
    m = re.search(r"(\d+)x(\d+)", config.data_path or "")
    if m:
        return int(m.group(1)) * int(m.group(2))
    return 81 if "sudoku" in (config.data_path or "") else None


def dims_of(config: HrmConfig, state: dict[str, torch.Tensor]) -> Dims:
    embed = state.get("model.inner.embed_tokens.embedding_weight")
    if embed is None:
        raise BackendError("checkpoint has no model.inner.embed_tokens.embedding_weight: not an HRM ACT v1 state_dict")
    puzzle = state.get("model.inner.puzzle_emb.weights")
    puzzle_emb_len = -(config.arch.puzzle_emb_ndim // -config.arch.hidden_size)
    return Dims(
        vocab_size=embed.shape[0],
        num_puzzle_identifiers=puzzle.shape[0] if puzzle is not None else 0,
        seq_len=_seq_len_hint(config, state, puzzle_emb_len),
    )


def load_model(path: Path, config: HrmConfig, state: dict[str, torch.Tensor]) -> LossHead:
    """Build the architecture from the config and load the weights strictly; BackendError in one line if not."""
    model = LossHead(config.arch, dims_of(config, state))
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = [
            f"{len(missing)} missing (first {missing[0]})" if missing else "",
            f"{len(unexpected)} unexpected (first {unexpected[0]})" if unexpected else "",
        ]
        raise BackendError(f"{path}: weights do not match {CONFIG_NAME}'s arch: {'; '.join(p for p in parts if p)}")
    for key, tensor in expected.items():
        if tensor.shape != state[key].shape:
            raise BackendError(
                f"{path}: {key} has shape {tuple(state[key].shape)}, {CONFIG_NAME}'s arch wants {tuple(tensor.shape)}"
            )
    model.load_state_dict(state, strict=True)
    return model.eval()


# ---------------------------------------------------------------- backend


class Encoded(BaseModel):
    """A prompt as HRM tokens, and how to read the answer back."""

    kind: Literal["sudoku", "maze"]
    tokens: list[int]
    rows: int
    cols: int
    side: int = 0


def encode(spec: SudokuSpec | MazeSpec, seq_len: int | None) -> Encoded:
    """HRM's dataset encodings; a maze smaller than the trained square is padded with walls (bottom, right)."""
    if isinstance(spec, SudokuSpec):
        n = spec.size
        return Encoded(kind="sudoku", tokens=[v + 1 for row in spec.grid for v in row], rows=n, cols=n)
    n = side = spec.size
    if seq_len:
        side = math.isqrt(seq_len)
        if side * side != seq_len or side < n:
            raise BackendError(f"checkpoint was trained on {seq_len} cells; a {n}x{n} maze does not fit")
    rows = [row.ljust(side, "#") for row in spec.rows] + ["#" * side] * (side - n)
    return Encoded(kind="maze", tokens=[CHARSET.index(ch) + 1 for row in rows for ch in row], rows=n, cols=n, side=side)


def decode(enc: Encoded, out: list[int]) -> str:
    """Answer text in the prompt's format; a padding or out-of-range token shows as ``?`` (a malformed cell)."""
    if enc.kind == "sudoku":
        cells = [str(t - 1) if 1 <= t <= 10 else "?" for t in out]
        return "\n".join("".join(cells[r * enc.cols : (r + 1) * enc.cols]) for r in range(enc.rows))
    chars = [CHARSET[t - 1] if 1 <= t <= len(CHARSET) else "?" for t in out]
    rows = ["".join(chars[r * enc.side : r * enc.side + enc.cols]) for r in range(enc.rows)]
    return maze_answer(rows)


class HrmBackend:
    """An HRM ACT v1 checkpoint answering Sudoku or maze prompts (whichever its vocabulary was trained on)."""

    def __init__(self, checkpoint: Path, device: str | None = None) -> None:
        path = _checkpoint_file(Path(checkpoint))
        config = read_config(path)
        state = read_state_dict(path)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.dtype = getattr(torch, config.arch.forward_dtype) if self.device.type == "cuda" else torch.float32
        self.model = load_model(path, config, state).to(self.device)
        self.dims = self.model.model.inner.dims
        self.task = TASK_BY_VOCAB.get(self.dims.vocab_size, f"vocab {self.dims.vocab_size}")
        self.path = path

    def _encode(self, request: GenerationRequest) -> Encoded:
        try:
            spec = parse_prompt(prompt_text(request))
        except MalformedPrompt as exc:
            raise BackendError(f"HRM backend cannot read the prompt: {exc}") from None
        if not isinstance(spec, SudokuSpec | MazeSpec):
            raise BackendError(
                "HRM backend answers sudoku and maze prompts only: HRM's ARC inputs need the per-task puzzle "
                "identifiers of the dataset it was trained on"
            )
        if spec.kind != self.task:
            raise BackendError(f"{self.path.name}: an HRM {self.task} checkpoint cannot answer a {spec.kind} prompt")
        enc = encode(spec, self.dims.seq_len if spec.kind == "maze" else None)
        learned = self.model.model.inner.arch.pos_encodings == "learned"
        if learned and self.dims.seq_len != len(enc.tokens):
            raise BackendError(
                f"checkpoint has learned positions for {self.dims.seq_len} cells, prompt has {len(enc.tokens)}"
            )
        return enc

    def stream(self, request: GenerationRequest) -> Iterator[StreamChunk]:
        enc = self._encode(request)
        tokens = torch.tensor([enc.tokens], dtype=torch.long, device=self.device)
        out, _ = run_act(self.model.model.inner, tokens, self.dtype)
        lines = decode(enc, out[0].tolist()).split("\n")
        for i, line in enumerate(lines):
            final = i == len(lines) - 1
            yield StreamChunk(
                text=line if final else line + "\n",
                tokens=len(line),
                finish_reason="stop" if final else None,
                prompt_tokens=len(enc.tokens) if i == 0 else None,
            )

    def close(self) -> None:
        """Drop the weights (idempotent) and return cached GPU memory."""
        if hasattr(self, "model"):
            del self.model
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
