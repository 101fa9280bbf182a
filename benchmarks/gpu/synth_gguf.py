#!/usr/bin/env python3
"""Synthetic-weight GGUF files of real architectures, for llama.cpp SPEED measurements only.

Decode and prefill speed depend on the shapes and the quantization types of the weights, not on
their values, so a file with the exact tensor shapes, types and metadata of a real model — but
random weights — times the same on a GPU as the real one. Its text is gibberish; every result made
with it must be labelled synthetic (this script writes ``general.name = "synthetic-…"`` and
``lalo.synthetic = true`` into the file).

Sub-commands:

``extract-tokenizer``
    Copy the ``tokenizer.*`` metadata of a real GGUF (e.g. SmolLM2-135M) into a tiny GGUF with no
    tensors, so the tokenizer can travel without the weights.

``make``
    Write a model: ``--preset`` (``qwen2.5-1.5b``, ``llama-3.1-8b``, ``llama-3.1-70b``, ``tiny``) or
    explicit dims, with the vocabulary (and so the embedding/output shapes) taken from
    ``--tokenizer`` (any GGUF that holds ``tokenizer.ggml.tokens``). ``--type q4_k_m`` (default)
    writes Q4_K/Q5_K/Q6_K blocks directly with llama-quantize's Q4_K_M type choice per tensor (no
    F16 intermediate, no quantize step: a 70B file is one sequential write); ``q4_0`` and ``q8_0``
    likewise; ``f16`` writes an F16 file for ``llama-quantize``.

Weights are tiled from one random block buffer per (type, scale): values are centred, with a
standard deviation of ``1/sqrt(fan_in)`` so activations stay O(1) through every layer (no inf/NaN in
f16 paths), and random bits keep the GPU's power draw close to a real model's (all-zero weights
would not: zeros run matrix products measurably faster).

``verify``
    Read a file back with gguf-py (``--gguf-py DIR``: the ``gguf-py`` folder of a llama.cpp source
    tree) as an independent check of what ``make`` wrote.

``make`` and ``extract-tokenizer`` need only numpy: they carry a minimal GGUF v3 writer and copy the
tokenizer key/values byte for byte (gguf-py's reader spends ~15 s of CPU on a 128k vocabulary).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import struct
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PRESETS: dict[str, dict] = {
    # Qwen2.5(-Coder)-1.5B: the GGUF keeps output.weight apart from token_embd (as the real Q4_K_M does)
    "qwen2.5-1.5b": dict(
        arch="qwen2",
        layers=28,
        hidden=1536,
        heads=12,
        kv_heads=2,
        ffn=8960,
        ctx=32768,
        rope_theta=1_000_000.0,
        rms_eps=1e-6,
        tokenizer_hint="qwen2",
    ),
    "llama-3.1-8b": dict(
        arch="llama",
        layers=32,
        hidden=4096,
        heads=32,
        kv_heads=8,
        ffn=14336,
        ctx=131072,
        rope_theta=500_000.0,
        rms_eps=1e-5,
        tokenizer_hint="llama-bpe",
    ),
    "llama-3.1-70b": dict(
        arch="llama",
        layers=80,
        hidden=8192,
        heads=64,
        kv_heads=8,
        ffn=28672,
        ctx=131072,
        rope_theta=500_000.0,
        rms_eps=1e-5,
        tokenizer_hint="llama-bpe",
    ),
    # for dry runs on a CPU
    "tiny": dict(
        arch="llama",
        layers=2,
        hidden=256,
        heads=4,
        kv_heads=2,
        ffn=512,
        ctx=4096,
        rope_theta=10_000.0,
        rms_eps=1e-5,
        tokenizer_hint="smollm2",
    ),
}

LLAMA3_CHAT_TEMPLATE = (
    "{{- bos_token }}{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    " + message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}{%- if add_generation_prompt %}"
    "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)

FTYPE = {"f16": 1, "q4_0": 2, "q8_0": 7, "q4_k_m": 15}
BUF_BYTES = 64 << 20  # one random buffer per (type, scale), tiled over every tensor of that kind


# --------------------------------------------------------------------------- GGUF, minimal
# A self-contained GGUF v3 reader/writer for what this script needs: copying the tokenizer.* key/values
# of a file byte for byte (parsing them with gguf-py takes ~15 s of CPU for a 128k-token vocabulary),
# writing scalar key/values, tensor infos and aligned tensor data.
GGUF_MAGIC = b"GGUF"
ALIGN = 32
VT_UINT8, VT_INT8, VT_UINT16, VT_INT16, VT_UINT32, VT_INT32, VT_FLOAT32, VT_BOOL = range(8)
VT_STRING, VT_ARRAY, VT_UINT64, VT_INT64, VT_FLOAT64 = range(8, 13)
_SCALAR = {
    VT_UINT8: "<B",
    VT_INT8: "<b",
    VT_UINT16: "<H",
    VT_INT16: "<h",
    VT_UINT32: "<I",
    VT_INT32: "<i",
    VT_FLOAT32: "<f",
    VT_BOOL: "<?",
    VT_UINT64: "<Q",
    VT_INT64: "<q",
    VT_FLOAT64: "<d",
}
GGML_TYPE_ID = {"F32": 0, "F16": 1, "Q4_0": 2, "Q8_0": 8, "Q4_K": 12, "Q5_K": 13, "Q6_K": 14}


def _skip_value(buf: memoryview, off: int, vt: int) -> int:
    if vt in _SCALAR:
        return off + struct.calcsize(_SCALAR[vt])
    if vt == VT_STRING:
        (n,) = struct.unpack_from("<Q", buf, off)
        return off + 8 + n
    if vt == VT_ARRAY:
        et, n = struct.unpack_from("<IQ", buf, off)
        off += 12
        if et in _SCALAR:
            return off + n * struct.calcsize(_SCALAR[et])
        for _ in range(n):
            off = _skip_value(buf, off, et)
        return off
    raise ValueError(f"unknown GGUF value type {vt}")


def _read_value(buf: memoryview, off: int, vt: int):
    if vt in _SCALAR:
        return struct.unpack_from(_SCALAR[vt], buf, off)[0]
    if vt == VT_STRING:
        (n,) = struct.unpack_from("<Q", buf, off)
        return bytes(buf[off + 8 : off + 8 + n]).decode("utf-8", "replace")
    if vt == VT_ARRAY:
        et, n = struct.unpack_from("<IQ", buf, off)
        return {"array_of": et, "len": n}
    raise ValueError(vt)


@dataclass
class RawKV:
    key: str
    vtype: int
    raw: bytes  # the whole serialized entry: key, type, value
    value: object  # scalars and strings decoded; arrays as {"array_of", "len"}


def read_kvs(path: str, prefix: str = "") -> list[RawKV]:
    """Key/values of a GGUF (those whose key starts with ``prefix``), each with its raw bytes."""
    with open(path, "rb") as fh:
        data = fh.read()
    buf = memoryview(data)
    if bytes(buf[:4]) != GGUF_MAGIC:
        raise SystemExit(f"{path}: not a GGUF file")
    version, _n_tensors, n_kv = struct.unpack_from("<IQQ", buf, 4)
    if version < 2:
        raise SystemExit(f"{path}: GGUF version {version} not supported")
    off = 24
    out = []
    for _ in range(n_kv):
        start = off
        (klen,) = struct.unpack_from("<Q", buf, off)
        key = bytes(buf[off + 8 : off + 8 + klen]).decode()
        off += 8 + klen
        (vt,) = struct.unpack_from("<I", buf, off)
        off += 4
        vstart = off
        off = _skip_value(buf, off, vt)
        if key.startswith(prefix):
            out.append(RawKV(key, vt, bytes(buf[start:off]), _read_value(buf, vstart, vt)))
    return out


def tokenizer_kvs(path: str) -> tuple[list[RawKV], int]:
    """The ``tokenizer.*`` key/values of a GGUF and its vocabulary size."""
    kvs = read_kvs(path, "tokenizer.")
    tokens = next((kv for kv in kvs if kv.key == "tokenizer.ggml.tokens"), None)
    if tokens is None:
        raise SystemExit(f"{path}: no tokenizer.ggml.tokens")
    return kvs, int(tokens.value["len"])


def _str(s: str) -> bytes:
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def kv_entry(key: str, value, vtype: int) -> bytes:
    if vtype == VT_STRING:
        return _str(key) + struct.pack("<I", VT_STRING) + _str(value)
    return _str(key) + struct.pack("<I", vtype) + struct.pack(_SCALAR[vtype], value)


def write_header(fout, kv_entries: list[bytes], tensors: list) -> None:
    """Header, key/values, tensor infos (offsets aligned to ALIGN), padding up to the data section."""
    fout.write(GGUF_MAGIC + struct.pack("<IQQ", 3, len(tensors), len(kv_entries)))
    for e in kv_entries:
        fout.write(e)
    offset = 0
    for t in tensors:
        dims = list(reversed(t.shape))  # GGUF stores ne0 (the row length) first
        fout.write(_str(t.name) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *dims))
        fout.write(struct.pack("<IQ", GGML_TYPE_ID[t.qtype], offset))
        offset += t.nbytes + (-t.nbytes) % ALIGN
    pad = (-fout.tell()) % ALIGN
    fout.write(b"\0" * pad)


def cmd_extract_tokenizer(args) -> None:
    kvs, n_vocab = tokenizer_kvs(args.src)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    entries = [
        kv_entry("general.architecture", "llama", VT_STRING),
        kv_entry("general.name", f"tokenizer of {Path(args.src).name}", VT_STRING),
    ]
    entries += [kv.raw for kv in kvs]
    with open(out, "wb") as fh:
        write_header(fh, entries, [])
    print(
        json.dumps({"out": str(out), "bytes": out.stat().st_size, "n_vocab": n_vocab, "keys": [kv.key for kv in kvs]})
    )


# --------------------------------------------------------------------------- block buffers
def _pack_k4_scales(sc: int, m: int) -> np.ndarray:
    """12 bytes holding eight 6-bit (scale, min) pairs, all equal, as ggml's get_scale_min_k4 reads them."""
    q = np.zeros(12, np.uint8)
    for j in range(8):
        if j < 4:
            q[j] |= sc & 63
            q[j + 4] |= m & 63
        else:
            q[j + 4] |= (sc & 0xF) | ((m & 0xF) << 4)
            q[j - 4] |= (sc >> 4) << 6
            q[j] |= (m >> 4) << 6
    return q


@dataclass(frozen=True)
class QType:
    name: str
    block: int  # weights per block
    nbytes: int  # bytes per block


QTYPES = {
    "F32": QType("F32", 1, 4),
    "F16": QType("F16", 1, 2),
    "Q4_0": QType("Q4_0", 32, 18),
    "Q8_0": QType("Q8_0", 32, 34),
    "Q4_K": QType("Q4_K", 256, 144),
    "Q5_K": QType("Q5_K", 256, 176),
    "Q6_K": QType("Q6_K", 256, 210),
}


class Blocks:
    """Random, centred weight blocks per (type, std), cached; tiled over tensors of any size."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.cache: dict[tuple[str, float], np.ndarray] = {}

    def buffer(self, qt: QType, std: float) -> np.ndarray:
        key = (qt.name, round(std, 9))
        if key in self.cache:
            return self.cache[key]
        n_blocks = max(1, BUF_BYTES // qt.nbytes)
        if qt.name == "F16":
            buf = (self.rng.standard_normal(BUF_BYTES // 2, dtype=np.float32) * std).astype(np.float16).view(np.uint8)
        elif qt.name == "F32":
            buf = np.ones(BUF_BYTES // 4, np.float32).view(np.uint8)
        else:
            raw = self.rng.integers(0, 256, size=(n_blocks, qt.nbytes), dtype=np.uint8)
            f16 = lambda x: np.frombuffer(np.float16(x).tobytes(), np.uint8)  # noqa: E731
            if qt.name == "Q4_0":  # d, qs[16]: w = d*(q-8), q uniform in 0..15 (std 4.61)
                raw[:, 0:2] = f16(std / 4.61)
            elif qt.name == "Q8_0":  # d, qs[32] int8: w = d*q (std ~73.9)
                raw[:, 0:2] = f16(std / 73.9)
            elif qt.name == "Q4_K":  # d, dmin, scales[12], qs[128]: w = d*8*q - d*60 -> d*(8q-60), std 36.9 d
                d = std / 36.9
                raw[:, 0:2] = f16(d)
                raw[:, 2:4] = f16(d)
                raw[:, 4:16] = _pack_k4_scales(8, 60)
            elif qt.name == "Q5_K":  # d, dmin, scales[12], qh[32], qs[128]: w = d*8*q - 2d*62, q in 0..31, std 73.9 d
                d = std / 73.9
                raw[:, 0:2] = f16(d)
                raw[:, 2:4] = f16(2 * d)
                raw[:, 4:16] = _pack_k4_scales(8, 62)
            elif qt.name == "Q6_K":  # ql[128], qh[64], scales[16] int8, d: w = d*16*(q-32), std 296 d
                raw[:, 192:208] = 16
                raw[:, 208:210] = f16(std / 296.0)
            else:
                raise ValueError(qt.name)
            buf = raw.reshape(-1)
        self.cache[key] = buf
        return buf


# --------------------------------------------------------------------------- model layout
@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]  # numpy order: (rows, ne0) — ne0 (the fan-in) last
    qtype: str
    fan_in: int

    @property
    def n_elements(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        qt = QTYPES[self.qtype]
        assert self.shape[-1] % qt.block == 0, f"{self.name}: {self.shape[-1]} not a multiple of {qt.block}"
        return self.n_elements // qt.block * qt.nbytes


def use_more_bits(i: int, n: int) -> bool:  # llama-quant.cpp
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def weight_type(kind: str, layer: int, n_layers: int, ftype: str, is_70b: bool) -> str:
    """llama-quantize's choice for a dense llama/qwen2 model (no experts, untied output)."""
    if ftype == "f16":
        return "F16"
    if ftype == "q8_0":
        return "Q8_0"
    if ftype == "q4_0":
        return "Q6_K" if kind == "output" else "Q4_0"
    # Q4_K_M
    if kind == "output":
        return "Q6_K"
    if kind == "attn_v":
        if use_more_bits(layer, n_layers):
            return "Q6_K"
        return "Q5_K" if is_70b else "Q4_K"
    if kind == "ffn_down":
        return "Q6_K" if use_more_bits(layer, n_layers) else "Q4_K"
    return "Q4_K"


def layout(cfg: dict, n_vocab: int, ftype: str) -> list[Tensor]:
    H, L, F = cfg["hidden"], cfg["layers"], cfg["ffn"]
    head_dim = H // cfg["heads"]
    kv = head_dim * cfg["kv_heads"]
    is_70b = cfg["arch"] == "llama" and L == 80
    emb_type = "Q4_K" if ftype == "q4_k_m" else ("Q4_0" if ftype == "q4_0" else weight_type("x", 0, L, ftype, False))
    ts = [Tensor("token_embd.weight", (n_vocab, H), emb_type, H)]
    if cfg["arch"] == "llama":
        ts.append(Tensor("rope_freqs.weight", (head_dim // 2,), "F32", 1))
    for i in range(L):
        p = f"blk.{i}."
        wt = lambda kind: weight_type(kind, i, L, ftype, is_70b)  # noqa: E731, B023
        ts += [
            Tensor(p + "attn_norm.weight", (H,), "F32", 1),
            Tensor(p + "attn_q.weight", (H, H), wt("attn_q"), H),
            Tensor(p + "attn_k.weight", (kv, H), wt("attn_k"), H),
            Tensor(p + "attn_v.weight", (kv, H), wt("attn_v"), H),
            Tensor(p + "attn_output.weight", (H, H), wt("attn_output"), H),
            Tensor(p + "ffn_norm.weight", (H,), "F32", 1),
            Tensor(p + "ffn_gate.weight", (F, H), wt("ffn_gate"), H),
            Tensor(p + "ffn_up.weight", (F, H), wt("ffn_up"), H),
            Tensor(p + "ffn_down.weight", (H, F), wt("ffn_down"), F),
        ]
        if cfg["arch"] == "qwen2":
            ts += [
                Tensor(p + "attn_q.bias", (H,), "F32", 0),
                Tensor(p + "attn_k.bias", (kv,), "F32", 0),
                Tensor(p + "attn_v.bias", (kv,), "F32", 0),
            ]
    ts += [
        Tensor("output_norm.weight", (H,), "F32", 1),
        Tensor("output.weight", (n_vocab, H), weight_type("output", 0, L, ftype, is_70b), H),
    ]
    return ts


def write_tensor_data(fout, t: Tensor, blocks: Blocks) -> None:
    if t.qtype == "F32":
        val = 0.0 if t.fan_in == 0 else 1.0  # biases 0, norm weights and rope freq factors 1
        fout.write(np.full(t.n_elements, val, np.float32).tobytes())
    else:
        qt = QTYPES[t.qtype]
        buf = memoryview(blocks.buffer(qt, 1.0 / math.sqrt(t.fan_in)))
        left = t.nbytes
        # start each tensor at a different block of the buffer so tensors are not identical copies
        off = (zlib.crc32(t.name.encode()) % (len(buf) // qt.nbytes)) * qt.nbytes
        while left:
            n = min(left, len(buf) - off)
            fout.write(buf[off : off + n])
            left -= n
            off = 0
    pad = (-t.nbytes) % ALIGN
    if pad:
        fout.write(b"\0" * pad)


def cmd_make(args) -> None:
    cfg = dict(PRESETS[args.preset]) if args.preset else {}
    for k in ("arch", "layers", "hidden", "heads", "kv_heads", "ffn", "ctx", "rope_theta", "rms_eps"):
        v = getattr(args, k)
        if v is not None:
            cfg[k] = v
    missing = [k for k in ("arch", "layers", "hidden", "heads", "kv_heads", "ffn") if k not in cfg]
    if missing:
        raise SystemExit(f"missing dims: {missing} (give --preset or each of them)")
    cfg.setdefault("ctx", 4096)
    cfg.setdefault("rope_theta", 10_000.0)
    cfg.setdefault("rms_eps", 1e-5)
    ftype = args.type

    t0 = time.monotonic()
    tok, n_vocab = tokenizer_kvs(args.tokenizer)
    tensors = layout(cfg, n_vocab, ftype)
    n_params = sum(t.n_elements for t in tensors)
    name = args.name or f"synthetic-{args.preset or cfg['arch']}-{ftype}"
    arch = cfg["arch"]
    S, U32, F32, BOOL = VT_STRING, VT_UINT32, VT_FLOAT32, VT_BOOL
    kv = [
        ("general.architecture", arch, S),
        ("general.name", name, S),
        (
            "general.description",
            "SYNTHETIC random weights with the shapes, quantization types and tokenizer of a "
            "real model; for speed measurements only (outputs are meaningless).",
            S,
        ),
        ("lalo.synthetic", True, BOOL),
        ("lalo.synthetic.preset", args.preset or "custom", S),
        ("lalo.synthetic.tokenizer_source", Path(args.tokenizer).name, S),
        (f"{arch}.block_count", cfg["layers"], U32),
        (f"{arch}.context_length", cfg["ctx"], U32),
        (f"{arch}.embedding_length", cfg["hidden"], U32),
        (f"{arch}.feed_forward_length", cfg["ffn"], U32),
        (f"{arch}.attention.head_count", cfg["heads"], U32),
        (f"{arch}.attention.head_count_kv", cfg["kv_heads"], U32),
        (f"{arch}.rope.freq_base", float(cfg["rope_theta"]), F32),
        (f"{arch}.attention.layer_norm_rms_epsilon", float(cfg["rms_eps"]), F32),
    ]
    if arch == "llama":
        kv += [
            (f"{arch}.rope.dimension_count", cfg["hidden"] // cfg["heads"], U32),
            (f"{arch}.vocab_size", n_vocab, U32),
        ]
    kv += [("general.file_type", FTYPE[ftype], U32), ("general.quantization_version", 2, U32)]
    entries = [kv_entry(k, v, t) for k, v, t in kv] + [e.raw for e in tok]
    keys = {e.key: e.value for e in tok}
    if "tokenizer.chat_template" not in keys and keys.get("tokenizer.ggml.pre") == "llama-bpe":
        entries.append(kv_entry("tokenizer.chat_template", LLAMA3_CHAT_TEMPLATE, S))

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(out.name + ".partial")
    blocks = Blocks(args.seed)
    with open(part, "wb", buffering=0) as fout:
        write_header(fout, entries, tensors)
        t_meta = time.monotonic() - t0
        for t in tensors:
            write_tensor_data(fout, t, blocks)
        if args.fsync:
            os.fsync(fout.fileno())
    os.replace(part, out)
    dt = time.monotonic() - t0
    size = out.stat().st_size
    types: dict[str, int] = {}
    for t in tensors:
        types[t.qtype] = types.get(t.qtype, 0) + 1
    print(
        json.dumps(
            {
                "out": str(out),
                "name": name,
                "synthetic": True,
                "preset": args.preset,
                "arch": arch,
                "dims": {k: cfg[k] for k in ("layers", "hidden", "heads", "kv_heads", "ffn", "ctx")},
                "n_vocab": n_vocab,
                "tokenizer": Path(args.tokenizer).name,
                "type": ftype,
                "tensor_types": types,
                "n_params": n_params,
                "bytes": size,
                "seconds": round(dt, 2),
                "seconds_metadata": round(t_meta, 2),
                "gb_per_s": round(size / 1e9 / max(dt - t_meta, 1e-9), 3),
            }
        )
    )


def cmd_verify(args) -> None:
    """Read a file back with gguf-py (slow for big vocabularies): tensor count, types, data size."""
    if args.gguf_py:
        sys.path.insert(0, str(Path(args.gguf_py).resolve()))
    import gguf

    r = gguf.GGUFReader(args.file)
    types: dict[str, int] = {}
    data = 0
    for t in r.tensors:
        types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
        data += int(t.n_bytes)
    end = max(int(t.data_offset) + int(t.n_bytes) for t in r.tensors) if r.tensors else 0
    ok = end <= os.path.getsize(args.file)
    print(
        json.dumps(
            {
                "file": args.file,
                "ok": ok,
                "n_tensors": len(r.tensors),
                "types": types,
                "data_bytes": data,
                "file_bytes": os.path.getsize(args.file),
                "name": r.fields["general.name"].contents(),
            }
        )
    )
    if not ok:
        sys.exit(1)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    ex = sub.add_parser("extract-tokenizer", help="tokenizer.* metadata of a GGUF -> tensor-less GGUF")
    ex.add_argument("--src", required=True)
    ex.add_argument("--out", required=True)
    ex.set_defaults(fn=cmd_extract_tokenizer)

    mk = sub.add_parser("make", help="write a synthetic-weight model")
    mk.add_argument("--tokenizer", required=True, help="any GGUF holding tokenizer.ggml.* (vocab-only is fine)")
    mk.add_argument("--preset", choices=sorted(PRESETS))
    mk.add_argument("--arch", choices=["llama", "qwen2"])
    for k in ("layers", "hidden", "heads", "kv_heads", "ffn", "ctx"):
        mk.add_argument(f"--{k.replace('_', '-')}", dest=k, type=int)
    mk.add_argument("--rope-theta", type=float)
    mk.add_argument("--rms-eps", type=float)
    mk.add_argument("--type", choices=sorted(FTYPE), default="q4_k_m")
    mk.add_argument("--name")
    mk.add_argument("--seed", type=int, default=0)
    mk.add_argument("--fsync", action="store_true", help="fsync before the final rename")
    mk.add_argument("--out", required=True)
    mk.set_defaults(fn=cmd_make)

    vf = sub.add_parser("verify", help="read a GGUF back with gguf-py and summarise it")
    vf.add_argument("--gguf-py", help="llama.cpp's gguf-py folder (else `import gguf` must work)")
    vf.add_argument("file")
    vf.set_defaults(fn=cmd_verify)

    args = ap.parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    main()
