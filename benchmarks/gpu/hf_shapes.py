#!/usr/bin/env python3
"""Hugging Face model folders with a real architecture and tokenizer but NO weights, for vLLM's dummy loader.

vLLM's ``--load-format dummy`` fills every tensor with random values on the GPU, so a folder holding only
``config.json`` and the tokenizer times like the real model (speed depends on shapes and dtypes, not on values)
while weighing a few megabytes — the only way an 8B model travels to a GPU machine without network. Results made
this way are synthetic and must say so (the cells name the preset ``synthetic-…``).

The shapes are the presets of ``synth_gguf.py`` (one source for both backends); the tokenizer is converted from a
vocabulary-only GGUF of llama.cpp's source tree (``models/ggml-vocab-<name>.gguf``) by transformers, so this runs
with the vLLM venv's python (``.venv-vllm/bin/python``), which has transformers:

    .venv-vllm/bin/python benchmarks/gpu/hf_shapes.py --vocab-dir LLAMA_SRC/models --out .vllm-carry/hf
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synth_gguf import PRESETS

# What the published config.json files of the real models add to the shapes (vocab, ties, rope scaling).
HF_EXTRA: dict[str, dict[str, object]] = {
    "qwen2.5-1.5b": dict(
        architectures=["Qwen2ForCausalLM"],
        model_type="qwen2",
        vocab_size=151936,
        tie_word_embeddings=True,
        max_window_layers=21,
        sliding_window=32768,
        use_sliding_window=False,
        bos_token_id=151643,
        eos_token_id=151643,
    ),
    "llama-3.1-8b": dict(
        architectures=["LlamaForCausalLM"],
        model_type="llama",
        vocab_size=128256,
        tie_word_embeddings=False,
        rope_scaling=dict(
            factor=8.0,
            low_freq_factor=1.0,
            high_freq_factor=4.0,
            original_max_position_embeddings=8192,
            rope_type="llama3",
        ),
        bos_token_id=128000,
        eos_token_id=128001,
    ),
}
# for a dry run of the vLLM cells on a CPU: the tiny preset's shapes with the Llama-3 vocabulary
HF_EXTRA["tiny"] = {**HF_EXTRA["llama-3.1-8b"], "rope_scaling": None, "tie_word_embeddings": True}
DEFAULT = ("llama-3.1-8b", "qwen2.5-1.5b")
VOCAB_GGUF = {"qwen2": "ggml-vocab-qwen2.gguf", "llama-bpe": "ggml-vocab-llama-bpe.gguf"}


def config_for(preset: str) -> dict[str, object]:
    """config.json of a preset: the GGUF preset's shapes in Hugging Face names, plus the real model's extras."""
    p = PRESETS[preset]
    hidden, heads = int(p["hidden"]), int(p["heads"])
    return {
        "hidden_size": hidden,
        "intermediate_size": int(p["ffn"]),
        "num_hidden_layers": int(p["layers"]),
        "num_attention_heads": heads,
        "num_key_value_heads": int(p["kv_heads"]),
        "head_dim": hidden // heads,
        "max_position_embeddings": int(p["ctx"]),
        "rope_theta": float(p["rope_theta"]),
        "rms_norm_eps": float(p["rms_eps"]),
        "hidden_act": "silu",
        "torch_dtype": "bfloat16",
        "attention_bias": p["arch"] == "qwen2",
        "lalo_synthetic": True,
        "lalo_preset": preset,
        **HF_EXTRA[preset],
    }


def _portable_tokenizer_class(path: Path) -> None:
    """transformers 5 saves the generic fast tokenizer as ``TokenizersBackend``; older 5.x and 4.x readers (the
    GPU image's) know it as ``PreTrainedTokenizerFast``, which 5.x still aliases."""
    cfg = json.loads(path.read_text(encoding="utf-8"))
    if cfg.get("tokenizer_class") == "TokenizersBackend":
        cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
        path.write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")


def write_folder(preset: str, vocab_dir: Path, out: Path) -> Path:
    """Write ``out/<preset>/`` with config.json and the tokenizer files; returns the folder."""
    from transformers import AutoTokenizer

    vocab = VOCAB_GGUF.get(str(PRESETS[preset]["tokenizer_hint"]), VOCAB_GGUF["llama-bpe"])
    folder = out / preset
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        # transformers reads gguf_file relative to the folder it is given; keep the source tree untouched
        shutil.copy(vocab_dir / vocab, Path(tmp) / vocab)
        tokenizer = AutoTokenizer.from_pretrained(tmp, gguf_file=vocab)
    tokenizer.save_pretrained(folder)
    _portable_tokenizer_class(folder / "tokenizer_config.json")
    (folder / "config.json").write_text(json.dumps(config_for(preset), indent=2) + "\n", encoding="utf-8")
    return folder


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vocab-dir", type=Path, required=True, help="llama.cpp source tree's models/ folder")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--preset", action="append", choices=sorted(HF_EXTRA), help=f"default: {', '.join(DEFAULT)}")
    args = ap.parse_args(argv)
    for preset in args.preset or DEFAULT:
        print(write_folder(preset, args.vocab_dir, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
