"""lm-eval's model interface over any lalo-bench :class:`Backend`, so lm-eval tasks are timed like every suite.

lm-eval owns the prompts, filters and metrics; this adapter only answers its
``generate_until`` requests. Each request becomes a :class:`GenerationRequest`
whose single **user message** is lm-eval's context string: lm-eval's own
``apply_chat_template`` stays off, because the backend renders its model's chat
template (as it does for every other suite). Stop strings become ``stop`` and
the reply is also cut at the first one, as lm-eval's own models do. Decoding
follows the sweep's :class:`GenerationSettings` (temperature, seed, and
``max_tokens`` unless the task sets ``max_gen_toks``), so a harness cell and a
plain cell of the same sweep decode alike; the task's ``do_sample`` and
``temperature`` are ignored.

Every reply is produced by :func:`timed_generate` and kept as a
:class:`HarnessReply` keyed by lm-eval's ``(task_name, doc_id)``, which is how
per-sample rows of ``simple_evaluate(..., log_samples=True)`` are joined back
to their timings.

lm-eval and ``datasets`` read their offline switches once, at import, so this
module sets them before importing lm-eval: nothing here may reach the network.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from lalo_bench.backends.base import Backend, ChatMessage, GenerationRequest
from lalo_bench.config import GenerationSettings
from lalo_bench.errors import LaloError
from lalo_bench.measure.metrics import RequestTiming
from lalo_bench.measure.timing import timed_generate

OFFLINE_ENV = {
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_EVALUATE_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}


def go_offline() -> None:
    """Set the offline switches, and patch the constants of HF modules that were imported before us."""
    os.environ.update(OFFLINE_ENV)
    for module, attr in (
        ("huggingface_hub.constants", "HF_HUB_OFFLINE"),
        ("datasets.config", "HF_HUB_OFFLINE"),
        ("datasets.config", "HF_DATASETS_OFFLINE"),
    ):
        if module in sys.modules:
            setattr(sys.modules[module], attr, True)


go_offline()

import datasets  # noqa: E402
import lm_eval  # noqa: E402
from lm_eval.api.instance import Instance  # noqa: E402
from lm_eval.api.model import LM  # noqa: E402
from lm_eval.api.registry import register_model  # noqa: E402
from lm_eval.tasks import TaskManager  # noqa: E402

LOGLIKELIHOOD_UNSUPPORTED = (
    "the 'lalo' lm-eval model only generates text (generate_until): lalo-bench backends stream completions and "
    "expose no token log-probabilities, so loglikelihood and multiple_choice tasks cannot run on it"
)


class HarnessReply(BaseModel):
    """One answered lm-eval request: what was asked, what came back, and its timing (None if generation failed)."""

    task: str
    doc_id: int
    context: str
    text: str
    timing: RequestTiming | None = None
    finish_reason: str | None = None
    error: str | None = None


def stops_of(gen_kwargs: dict[str, Any]) -> list[str]:
    until = gen_kwargs.get("until") or []
    return [s for s in ([until] if isinstance(until, str) else list(until)) if s]


def to_request(context: str, gen_kwargs: dict[str, Any], settings: GenerationSettings) -> GenerationRequest:
    """lm-eval's (context, gen_kwargs) as a one-user-message request, decoded with the sweep's settings."""
    return GenerationRequest(
        messages=[ChatMessage(role="user", content=context)],
        max_tokens=int(gen_kwargs.get("max_gen_toks") or settings.max_tokens),
        temperature=settings.temperature,
        seed=settings.seed,
        stop=stops_of(gen_kwargs),
    )


def cut_at_stops(text: str, stops: list[str]) -> str:
    """The text before the first stop string, for backends that do not honour ``stop`` themselves."""
    for stop in stops:
        text = text.split(stop)[0]
    return text


@register_model("lalo")
class LaloLM(LM):
    """``simple_evaluate(model=LaloLM(backend=..., settings=...), ...)``; replies are kept in :attr:`replies`."""

    def __init__(self, backend: Backend, settings: GenerationSettings | None = None) -> None:
        super().__init__()
        self.backend = backend
        self.settings = settings or GenerationSettings()
        self.replies: list[HarnessReply] = []

    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        return [self._answer(instance) for instance in requests]

    def _answer(self, instance: Instance) -> str:
        context, gen_kwargs = instance.args
        request = to_request(context, gen_kwargs, self.settings)
        key = {"task": str(instance.task_name), "doc_id": int(instance.doc_id), "context": context}
        try:
            generation = timed_generate(self.backend, request)
        except LaloError as exc:
            reply = HarnessReply(**key, text="", error=f"generation failed: {exc}")
        else:
            text = cut_at_stops(generation.text, request.stop)
            reply = HarnessReply(**key, text=text, timing=generation.timing, finish_reason=generation.finish_reason)
        self.replies.append(reply)
        self.cache_hook.add_partial("generate_until", (context, gen_kwargs), reply.text)
        return reply.text

    def replies_by_sample(self) -> dict[tuple[str, int], HarnessReply]:
        """Replies keyed like lm-eval's samples, ``(task_name, doc_id)``; ``repeats`` > 1 is refused (keys collide)."""
        out: dict[tuple[str, int], HarnessReply] = {}
        for reply in self.replies:
            key = (reply.task, reply.doc_id)
            if key in out:
                raise LaloError(f"lm-eval sample {reply.task}#{reply.doc_id} was asked twice (task repeats > 1?)")
            out[key] = reply
        return out

    def loglikelihood(self, requests: list[Instance], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        raise LaloError(LOGLIKELIHOOD_UNSUPPORTED)

    def loglikelihood_rolling(self, requests: list[Instance], disable_tqdm: bool = False) -> list[float]:
        raise LaloError(LOGLIKELIHOOD_UNSUPPORTED)


def evaluate(lm: LaloLM, tasks: list[str], include_path: Path) -> dict[str, Any]:
    """``simple_evaluate`` with per-sample logging over the task YAMLs in ``include_path`` only.

    lm-eval's built-in task index (thousands of YAMLs) is not scanned: that saves seconds per run and no built-in
    task can shadow ours.
    """
    manager = TaskManager(include_path=str(include_path), include_defaults=False)
    bars_were_on = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # a sweep cell's worker shares the terminal with the sweep's progress display
    try:
        results = lm_eval.simple_evaluate(model=lm, tasks=tasks, task_manager=manager, log_samples=True)
    finally:
        if bars_were_on:
            datasets.enable_progress_bars()
    if results is None:
        raise LaloError("lm-eval returned no results (this process is not rank 0)")
    return dict(results)
