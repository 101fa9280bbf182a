"""GGUF → Hugging Face folder, run as a file by the vLLM venv's python (transformers, gguf, accelerate live there).

Usage: python _convert_gguf.py GGUF_FILE OUT_DIR

Not imported by lalo_bench: the main environment has no transformers. The
weights are dequantized on load, so the folder holds plain bf16 safetensors;
the GGUF quantization marker is cleared before saving, or vLLM would look for
a GGUF file that is not there.
"""

from __future__ import annotations

import sys
from pathlib import Path


def convert(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.bfloat16)
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: _convert_gguf.py GGUF_FILE OUT_DIR", file=sys.stderr)
        return 2
    convert(Path(argv[0]), Path(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
