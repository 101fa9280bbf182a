"""What a load test sends: prompt and output lengths drawn from a distribution, or a suite's real prompts.

Length specs are short strings a user types on the command line:
``128`` (fixed), ``64:256`` (uniform, inclusive) or, for prompts,
``suite:extraction`` (the suite's own chat prompts, in item order).

Synthetic prompts are made of common one-token English words, so a prompt of
``n`` words is close to ``n`` tokens for BPE tokenizers; the server's usage
count (when it reports one) gives the exact figure. Every prompt starts with
its request number so no two share a cached prefix.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

from lalo_bench.backends.base import ChatMessage, GenerationRequest
from lalo_bench.backends.openai_protocol import Api, request_body
from lalo_bench.errors import LaloError
from lalo_bench.measure.load.schemas import WorkloadInfo

_PROSE = (
    "the of and to in is was for on with as by at from that this it be are or an have not but they his her "
    "one all we can had more when there time so up out some what about which will if do no into has them "
    "other than only then its also two like over new first these may any after most made water long day "
    "people know year work part back used way good world life very make place through just where much each "
    "well three while state before must great city because high small case still last own under home need"
)
WORDS = tuple(_PROSE.split())


@dataclass(frozen=True)
class Lengths:
    """A token-length distribution: fixed when ``low == high``."""

    low: int
    high: int

    @classmethod
    def parse(cls, text: str, what: str) -> Lengths:
        try:
            lo, _, hi = text.partition(":")
            low, high = int(lo), int(hi or lo)
        except ValueError:
            raise LaloError(f"{what}: '{text}' is not a length; use N (fixed) or LOW:HIGH (uniform)") from None
        if not 0 < low <= high:
            raise LaloError(f"{what}: '{text}' must be positive with LOW <= HIGH")
        return cls(low, high)

    def draw(self, rng: random.Random) -> int:
        return self.low if self.low == self.high else rng.randint(self.low, self.high)

    def describe(self) -> str:
        return f"fixed({self.low})" if self.low == self.high else f"uniform({self.low},{self.high})"


class Workload:
    """Request bodies by index, reproducible from the seed; bodies are built once, before timing starts."""

    def __init__(
        self,
        model: str,
        prompt: str = "128",
        output: str = "128",
        api: Api = "chat",
        seed: int = 0,
        ignore_eos: bool = False,
        temperature: float = 0.0,
    ) -> None:
        self.model, self.api, self.seed, self.ignore_eos, self.temperature = model, api, seed, ignore_eos, temperature
        self.output = Lengths.parse(output, "--output-tokens")
        self.prompt_spec = prompt
        self.suite_requests: list[GenerationRequest] | None = None
        if prompt.startswith("suite:"):
            self.suite_requests = _suite_requests(prompt.removeprefix("suite:"), self.output.high)
            self.prompt = None
        else:
            self.prompt = Lengths.parse(prompt, "--prompt-tokens")
        self._cache: dict[int, bytes] = {}

    def info(self) -> WorkloadInfo:
        prompt = self.prompt_spec if self.prompt is None else f"{self.prompt.describe()} words"
        output = f"{self.output.describe()} tokens" + (" (ignore_eos)" if self.ignore_eos else " (max)")
        return WorkloadInfo(prompt=prompt, output=output, api=self.api, seed=self.seed)

    def request(self, index: int) -> GenerationRequest:
        rng = random.Random(f"{self.seed}:{index}")
        max_tokens = self.output.draw(rng)
        if self.suite_requests is not None:
            base = self.suite_requests[index % len(self.suite_requests)]
            return base.model_copy(update={"max_tokens": max_tokens, "temperature": self.temperature})
        assert self.prompt is not None
        n = self.prompt.draw(rng)
        words = [str(index)] + [rng.choice(WORDS) for _ in range(n - 1)]
        message = ChatMessage(role="user", content=" ".join(words))
        return GenerationRequest(messages=[message], max_tokens=max_tokens, temperature=self.temperature, seed=index)

    def body(self, index: int) -> bytes:
        cached = self._cache.get(index)
        if cached is None:
            req = self.request(index)
            payload = request_body(req, self.model, self.api, stream=True, ignore_eos=self.ignore_eos)
            cached = self._cache[index] = json.dumps(payload).encode()
        return cached

    def prepare(self, count: int) -> None:
        """Build the first ``count`` bodies ahead, so JSON encoding never lands inside a timed window."""
        for i in range(count):
            self.body(i)


def _suite_requests(suite_id: str, max_tokens: int) -> list[GenerationRequest]:
    from lalo_bench.suites import get_suite

    suite = get_suite(suite_id)
    items = suite.items()
    if not items:
        raise LaloError(f"suite '{suite_id}' has no items to send")
    return [suite.request(item, max_tokens) for item in items]
