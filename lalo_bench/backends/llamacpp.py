"""In-process llama.cpp (llama-cpp-python).

The prompt is rendered with the GGUF's own chat template and tokenized here,
and tokens are pulled one at a time from ``Llama.generate``, so every output
token gets its own timestamp and the prompt-token count is exact. The KV cache
is cleared before each request: every request pays its full prefill, as the
first request of a new conversation would.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Iterator
from pathlib import Path

from lalo_bench.backends.base import GenerationRequest, StreamChunk
from lalo_bench.errors import BackendError

FALLBACK_STOPS = ["\nuser:", "\nsystem:"]
"""A base model under the fallback template would otherwise write the next turn itself."""

FALLBACK_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)


def _partial_stop_len(text: str, stops: list[str]) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of a stop string."""
    best = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), best, -1):
            if text.endswith(stop[:n]):
                best = n
                break
    return best


class LlamaCppBackend:
    def __init__(
        self, model_path: Path, n_ctx: int = 2048, n_threads: int | None = None, seed: int = 0, gpu_layers: int = 0
    ) -> None:
        import llama_cpp
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        threads = n_threads or os.cpu_count() or 1
        try:
            self.llm = llama_cpp.Llama(
                model_path=str(model_path),
                n_ctx=n_ctx,
                n_threads=threads,
                n_threads_batch=threads,
                seed=seed,
                n_gpu_layers=gpu_layers,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise BackendError(f"{model_path}: llama.cpp could not load the model: {exc}") from None
        self._llama_cpp = llama_cpp
        meta = self.llm.metadata
        template = meta.get("tokenizer.chat_template") or FALLBACK_TEMPLATE
        self.template_stops = FALLBACK_STOPS if template is FALLBACK_TEMPLATE else []
        eos = self.llm._model.token_get_text(self.llm.token_eos()) if self.llm.token_eos() >= 0 else ""
        bos = self.llm._model.token_get_text(self.llm.token_bos()) if self.llm.token_bos() >= 0 else ""
        self._formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        self.supports_tools = "tools" in template
        self.n_ctx = n_ctx

    def _is_end(self, token: int) -> bool:
        return bool(self._llama_cpp.llama_vocab_is_eog(self.llm._model.vocab, token))

    def prompt_tokens(self, request: GenerationRequest) -> tuple[list[int], list[str]]:
        if request.tools and not self.supports_tools:
            raise BackendError(
                "this model's chat template has no tool support, so native tool calling is impossible; "
                "use the suite option mode: prompt"
            )
        messages = [m.model_dump() for m in request.messages]
        rendered = self._formatter(messages=messages, tools=request.tools) if request.tools else None
        rendered = rendered or self._formatter(messages=messages)
        stops = rendered.stop if isinstance(rendered.stop, list) else [rendered.stop] if rendered.stop else []
        stops = [*stops, *self.template_stops]
        tokens = self.llm.tokenize(rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True)
        return tokens, [s for s in stops if s]

    def stream(self, request: GenerationRequest) -> Iterator[StreamChunk]:
        tokens, template_stops = self.prompt_tokens(request)
        if len(tokens) + request.max_tokens > self.n_ctx:
            raise BackendError(
                f"prompt of {len(tokens)} tokens + max_tokens {request.max_tokens} exceeds the context "
                f"window n_ctx={self.n_ctx}; raise generation.n_ctx or lower max_tokens"
            )
        stops = [*template_stops, *request.stop]
        n_prompt = len(tokens)
        self.llm.reset()
        self.llm.set_seed(request.seed)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        held = ""  # text that may be the start of a stop string, not yet emitted
        finish = "length"
        generated: list[int] = []
        sampler = self.llm.generate(tokens, temp=request.temperature, top_k=40, top_p=0.95, min_p=0.05, reset=True)
        for token in sampler:
            if self._is_end(token):
                finish = "stop"
                break
            held += decoder.decode(self.llm.detokenize([token], prev_tokens=tokens + generated, special=False))
            generated.append(token)
            hit = min((held.index(s) for s in stops if s in held), default=None)
            if hit is not None:
                yield StreamChunk(text=held[:hit], tokens=1, prompt_tokens=n_prompt)
                held, finish = "", "stop"
                break
            safe = len(held) - _partial_stop_len(held, stops)
            yield StreamChunk(text=held[:safe], tokens=1, prompt_tokens=n_prompt)
            held = held[safe:]
            if len(generated) >= request.max_tokens:
                break
        tail = held + decoder.decode(b"", final=True)
        yield StreamChunk(text=tail, tokens=0, finish_reason=finish, prompt_tokens=n_prompt)

    def close(self) -> None:
        self.llm.close()
