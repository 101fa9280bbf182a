"""Reasoning: arithmetic word problems, unit conversions and logic, run through lm-eval.

The items (``eval_suites/reasoning/v1``, see :mod:`reasoning_data`) are three
lm-eval tasks defined by the YAMLs in ``eval_suites/lm_eval`` (``lalo_arith``,
``lalo_units``, ``lalo_logic``; group ``lalo_reasoning``). In a sweep the suite
is a :class:`HarnessSuite`: :meth:`ReasoningSuite.run_with` hands the selected
items to ``lm_eval.simple_evaluate`` through :class:`LaloLM`, so lm-eval builds
the prompts and scores the replies while lalo-bench times every token.

The YAMLs are the one source of truth: :meth:`request` rebuilds the prompt lm-eval
sends (3-shot from the task's train split, ``Question: …\\nAnswer:``) and
:meth:`score` applies the YAMLs' regex filters and exact-match rules, for
``lalo-bench score`` on outputs produced elsewhere; tests check both agree with
lm-eval sample for sample.

The item score is **flexible-extract** exact match (the last number in the
reply; for logic the last yes/no or name): lalo-bench drives chat models
through their chat template, and an instruct model that reasons correctly but
ignores the few-shot ``#### <answer>`` convention should not score 0.
**strict-match** (the answer after ``####``, GSM8K's headline filter) is kept in
every record's ``details`` as ``strict_match``, and ``flexible_extract`` beside it.

After :meth:`run_with`, :attr:`ReasoningSuite.last_run` holds lm-eval's own
aggregate results for those items; :meth:`summarize` adds them to the suite
metrics as ``lm_eval.<task>.<metric>.<filter>`` when the records are that run's
(the runner calls ``summarize`` on the same suite object, so they reach MLflow).
lm-eval scores only after every reply is in, so ``run_with`` calls ``on_item``
for each record once lm-eval has finished, not while it generates.
"""

from __future__ import annotations

import json
import re
import string
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from jinja2 import BaseLoader, Environment, StrictUndefined
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lalo_bench import datafiles
from lalo_bench.backends.base import Backend, ChatMessage, GenerationRequest
from lalo_bench.errors import LaloError
from lalo_bench.measure.metrics import RequestTiming, request_metrics
from lalo_bench.results import ItemRecord
from lalo_bench.suites.base import ItemScore, SuiteItem, TaskType, mean_details
from lalo_bench.suites.manifest import verify
from lalo_bench.suites.reasoning_data import SUITE_ID, SUITE_VERSION, TASKS, data_file

if TYPE_CHECKING:
    from lalo_bench.backends.lm_eval_adapter import HarnessReply
    from lalo_bench.config import GenerationSettings

ENV_ROOT = datafiles.ENV_EVAL_SUITES
GROUP = "lalo_reasoning"
PRIMARY_FILTER = "flexible-extract"
SECONDARY_FILTER = "strict-match"
REGEX_FALLBACK = "[invalid]"
"""lm-eval's RegexFilter default for a reply where the pattern finds nothing."""


class ReasoningItem(SuiteItem):
    task_type: Literal["reasoning"] = "reasoning"
    task: str = Field(description="lm-eval task the item belongs to")
    question: str
    answer: str
    solution: str

    def doc(self) -> dict[str, Any]:
        """The item as lm-eval sees it: one row of the task's JSONL."""
        return self.model_dump(exclude={"task_type"})


# ---------------------------------------------------------------- the task YAMLs


class RegexRule(BaseModel):
    """One ``filter_list`` entry: lm-eval's ``regex`` filter followed by ``take_first``."""

    name: str
    pattern: str
    group_select: int = 0
    fallback: str = REGEX_FALLBACK


class MatchRule(BaseModel):
    """The ``exact_match`` options of ``metric_list``; an option lm-eval knows but this module does not is refused."""

    model_config = ConfigDict(extra="forbid")

    ignore_case: bool = False
    ignore_punctuation: bool = False
    ignore_numbers: bool = False
    regexes_to_ignore: list[str] = Field(default_factory=list)


class TaskSpec(BaseModel):
    """What the suite reads from a task YAML to prompt and score exactly as lm-eval does."""

    name: str
    path: Path
    doc_to_text: str
    doc_to_target: str
    target_delimiter: str = " "
    fewshot_delimiter: str = "\n\n"
    num_fewshot: int = 0
    until: list[str]
    filters: list[RegexRule]
    match: MatchRule
    data_files: dict[str, str]


def default_root() -> Path:
    """``$LALO_EVAL_SUITES`` when set, else the shipped ``eval_suites``."""
    return datafiles.eval_suites()


def default_data_dir() -> Path:
    return default_root() / SUITE_ID / f"v{SUITE_VERSION}"


def default_yaml_dir() -> Path:
    return default_root() / "lm_eval"


def read_yaml_config(path: Path) -> dict[str, Any]:
    """A task YAML with its ``include`` merged in as lm-eval merges it (shallow; the including file's keys win)."""
    if not path.is_file():
        raise LaloError(f"{path}: lm-eval task YAML not found (expected in eval_suites/lm_eval; see {ENV_ROOT})")
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise LaloError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(cfg, dict):
        raise LaloError(f"{path}: expected a mapping")
    includes = cfg.pop("include", [])
    merged: dict[str, Any] = {}
    for inc in includes if isinstance(includes, list) else [includes]:
        merged.update(read_yaml_config(path.parent / inc))
    return merged | cfg


def _regex_rule(path: Path, entry: dict[str, Any]) -> RegexRule:
    steps = entry.get("filter", [])
    if [s.get("function") for s in steps] != ["regex", "take_first"]:
        raise LaloError(f"{path}: filter '{entry.get('name')}' must be exactly [regex, take_first] to be reproducible")
    regex = steps[0]
    return RegexRule(
        name=entry["name"],
        pattern=regex["regex_pattern"],
        group_select=regex.get("group_select", 0),
        fallback=regex.get("fallback", REGEX_FALLBACK),
    )


def load_task_spec(path: Path) -> TaskSpec:
    """Parse one task YAML, refusing features this module does not reproduce (other samplers, filters, metrics)."""
    cfg = read_yaml_config(path)
    if cfg.get("task") != path.stem:
        raise LaloError(f"{path}: task name '{cfg.get('task')}' differs from the file name")
    if (cfg.get("fewshot_config") or {}).get("sampler") != "first_n":
        raise LaloError(f"{path}: fewshot_config.sampler must be first_n so prompts are reproducible")
    metrics = [m for m in cfg.get("metric_list", []) if m.get("metric") == "exact_match"]
    if len(cfg.get("metric_list", [])) != 1 or len(metrics) != 1:
        raise LaloError(f"{path}: metric_list must be exactly one exact_match")
    filters = [_regex_rule(path, entry) for entry in cfg.get("filter_list", [])]
    if sorted(f.name for f in filters) != sorted([PRIMARY_FILTER, SECONDARY_FILTER]):
        raise LaloError(f"{path}: filters must be '{SECONDARY_FILTER}' and '{PRIMARY_FILTER}'")
    options = {k: v for k, v in metrics[0].items() if k not in {"metric", "aggregation", "higher_is_better"}}
    try:
        return TaskSpec(
            name=cfg["task"],
            path=path,
            doc_to_text=cfg["doc_to_text"],
            doc_to_target=cfg["doc_to_target"],
            target_delimiter=cfg.get("target_delimiter", " "),
            fewshot_delimiter=cfg.get("fewshot_delimiter", "\n\n"),
            num_fewshot=cfg.get("num_fewshot") or 0,
            until=list(cfg.get("generation_kwargs", {}).get("until", [])),
            filters=filters,
            match=MatchRule.model_validate(options),
            data_files=cfg["dataset_kwargs"]["data_files"],
        )
    except KeyError as exc:
        raise LaloError(f"{path}: missing {exc.args[0]}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        raise LaloError(f"{path}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None


# Same settings as lm_eval.utils.env, so a template renders byte for byte as lm-eval renders it.
JINJA = Environment(loader=BaseLoader(), undefined=StrictUndefined, keep_trailing_newline=True)


def render(template: str, doc: dict[str, Any]) -> str:
    return JINJA.from_string(template).render(**doc)


# ---------------------------------------------------------------- scoring (lm-eval's rules, reimplemented)


def extract(rule: RegexRule, text: str) -> str:
    """lm-eval's RegexFilter + take_first: the ``group_select``-th match, first non-empty group, stripped."""
    matches = re.findall(rule.pattern, text)
    if not matches:
        return rule.fallback
    match = matches[rule.group_select]
    if isinstance(match, tuple):
        match = next((m for m in match if m), rule.fallback)
    return match.strip()


def _normalize(rule: MatchRule, text: str) -> str:
    for pattern in rule.regexes_to_ignore:
        text = re.sub(pattern, "", text)
    if rule.ignore_case:
        text = text.lower()
    if rule.ignore_punctuation:
        text = text.translate(str.maketrans("", "", string.punctuation))
    if rule.ignore_numbers:
        text = text.translate(str.maketrans("", "", string.digits))
    return text


def exact_match(rule: MatchRule, prediction: str, reference: str) -> bool:
    """lm-eval's ``exact_match`` (its port of HF evaluate's): both sides normalized alike, then compared."""
    return _normalize(rule, prediction) == _normalize(rule, reference)


def detail_key(filter_name: str) -> str:
    return filter_name.replace("-", "_")


def score_reply(spec: TaskSpec, item: ReasoningItem, output: str) -> ItemScore:
    """Exact match under each filter of the task; the item's score is the primary (flexible-extract) one."""
    reference = render(spec.doc_to_target, item.doc())
    details = {detail_key(f.name): float(exact_match(spec.match, extract(f, output), reference)) for f in spec.filters}
    primary = next(f for f in spec.filters if f.name == PRIMARY_FILTER)
    found = extract(primary, output) != primary.fallback
    score = details[detail_key(PRIMARY_FILTER)]
    error = None if found else f"no answer found ({PRIMARY_FILTER} matched nothing)"
    return ItemScore(score=score, correct=score == 1.0, details=details, error=error)


# ---------------------------------------------------------------- prompts


def build_prompt(spec: TaskSpec, shots: Sequence[ReasoningItem], item: ReasoningItem) -> str:
    """lm-eval's plain-text context: the first ``num_fewshot`` train rows with their solutions, then the question."""
    examples = [
        render(spec.doc_to_text, s.doc()) + spec.target_delimiter + render(spec.doc_to_target, s.doc())
        for s in shots[: spec.num_fewshot]
    ]
    return "".join(e + spec.fewshot_delimiter for e in examples) + render(spec.doc_to_text, item.doc())


# ---------------------------------------------------------------- data and order


def load_split(data_dir: Path, task: str, split: Literal["test", "train"]) -> list[ReasoningItem]:
    text = (data_dir / data_file(task, split)).read_text(encoding="utf-8")
    return [ReasoningItem.model_validate_json(line) for line in text.splitlines() if line.strip()]


def _diagonal(items: list[ReasoningItem]) -> list[tuple[str, int]]:
    """(category, difficulty) keys ordered so each round pairs every category with a different difficulty."""
    cats = list(dict.fromkeys(i.category for i in items))
    diffs = sorted({i.difficulty for i in items})
    present = {(i.category, i.difficulty) for i in items}
    order = [(c, diffs[(ci + r) % len(diffs)]) for r in range(len(diffs)) for ci, c in enumerate(cats)]
    return [k for k in order if k in present]


def interleave(items: list[ReasoningItem]) -> list[ReasoningItem]:
    """Round-robin over (task, category, difficulty) groups, tasks alternating, so every prefix mixes all three."""
    tasks = list(dict.fromkeys(i.task for i in items))
    per_task = [[(t, *k) for k in _diagonal([i for i in items if i.task == t])] for t in tasks]
    keys: list[tuple[str, str, int]] = []
    for rank in range(max(map(len, per_task), default=0)):
        keys.extend(ks[rank] for ks in per_task if rank < len(ks))
    groups: dict[tuple[str, str, int], list[ReasoningItem]] = {}
    for it in items:
        groups.setdefault((it.task, it.category, it.difficulty), []).append(it)
    out: list[ReasoningItem] = []
    for j in range(max((len(g) for g in groups.values()), default=0)):
        out.extend(groups[k][j] for k in keys if j < len(groups[k]))
    return out


def parse_tasks(tasks: str | None) -> list[str]:
    """The ``tasks`` suite option: comma-separated task names (or the group name); None or empty means all."""
    names = [t.strip() for t in (tasks or "").split(",") if t.strip()]
    if not names or GROUP in names:
        return list(TASKS)
    unknown = [n for n in names if n not in TASKS]
    if unknown:
        raise LaloError(f"reasoning: unknown task(s) {', '.join(unknown)} (known: {', '.join(TASKS)}, {GROUP})")
    return [t for t in TASKS if t in names]


# ---------------------------------------------------------------- the lm-eval run


class LmEvalRun(BaseModel):
    """lm-eval's own aggregates for one ``run_with`` call: task or group → ``metric,filter`` → value."""

    lm_eval_version: str
    item_ids: list[str]
    results: dict[str, dict[str, float]]
    n_shot: dict[str, int]


def write_overlay(
    root: Path, specs: dict[str, TaskSpec], data_dir: Path, chosen: dict[str, list[ReasoningItem]]
) -> Path:
    """Task YAMLs that include the shipped ones but read only ``chosen`` items, by absolute path from any cwd.

    The shipped YAMLs name their data relative to the repository root (``datasets`` resolves ``data_files``
    against the working directory), so each run writes its test split and an overriding ``dataset_kwargs``
    into ``root``, with a private ``datasets`` cache that goes away with it.
    """
    tasks_dir, docs_dir = root / "tasks", root / "data"
    tasks_dir.mkdir()
    docs_dir.mkdir()
    for task, items in chosen.items():
        test = docs_dir / data_file(task, "test")
        test.write_text("".join(json.dumps(i.doc(), sort_keys=True) + "\n" for i in items), encoding="utf-8")
        overlay = {
            "include": str(specs[task].path.resolve()),
            "task": task,
            "dataset_kwargs": {
                "data_files": {"train": str((data_dir / data_file(task, "train")).resolve()), "test": str(test)},
                "cache_dir": str(root / "hf-cache"),
            },
        }
        (tasks_dir / f"{task}.yaml").write_text(yaml.safe_dump(overlay, sort_keys=False), encoding="utf-8")
    return tasks_dir


def _numeric(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def record_from_sample(
    item: ReasoningItem, rows: dict[str, dict[str, Any]], reply: HarnessReply
) -> tuple[ItemRecord, RequestTiming | None]:
    """One item from lm-eval's per-filter sample rows (same doc) and the adapter's reply to it."""
    primary = rows[PRIMARY_FILTER]
    if primary["arguments"][0][0] != reply.context:
        raise LaloError(f"{item.id}: lm-eval sample and adapter reply disagree on the prompt")
    details = {detail_key(name): float(row["exact_match"]) for name, row in rows.items()}
    score = details[detail_key(PRIMARY_FILTER)]
    error = reply.error
    if error is None and primary["filtered_resps"][0] == REGEX_FALLBACK:
        error = f"no answer found ({PRIMARY_FILTER} matched nothing)"
    m = request_metrics(reply.timing) if reply.timing else None
    record = ItemRecord(
        item_id=item.id,
        category=item.category,
        difficulty=item.difficulty,
        output=primary["resps"][0][0],
        score=score,
        correct=score == 1.0,
        error=error,
        finish_reason=reply.finish_reason,
        prompt_tokens=m.prompt_tokens if m else 0,
        output_tokens=m.output_tokens if m else 0,
        ttft_ms=m.ttft_ms if m else None,
        tpot_ms=m.tpot_ms if m else None,
        e2e_ms=m.e2e_ms if m else None,
        decode_tok_s=m.decode_tok_s if m else None,
        prefill_tok_s=m.prefill_tok_s if m else None,
        details=details,
    )
    return record, reply.timing


def join_samples(
    samples: dict[str, list[dict[str, Any]]],
    replies: dict[tuple[str, int], HarnessReply],
    chosen: dict[str, list[ReasoningItem]],
) -> dict[str, tuple[ItemRecord, RequestTiming | None]]:
    """item id → record and timing, from lm-eval's logged samples (one row per doc and filter) and the replies.

    A task's ``doc_id`` is the item's line in the overlay's test file, i.e. its index in ``chosen[task]``;
    the doc's own ``id`` is checked too, so a misjoin fails loudly instead of mixing up timings.
    """
    out: dict[str, tuple[ItemRecord, RequestTiming | None]] = {}
    for task, items in chosen.items():
        rows: dict[int, dict[str, dict[str, Any]]] = {}
        for row in samples.get(task, []):
            rows.setdefault(int(row["doc_id"]), {})[row["filter"]] = row
        if sorted(rows) != list(range(len(items))):
            raise LaloError(f"{task}: lm-eval returned samples for {len(rows)} of {len(items)} items")
        for doc_id, item in enumerate(items):
            if rows[doc_id][PRIMARY_FILTER]["doc"]["id"] != item.id:
                raise LaloError(f"{task}#{doc_id}: lm-eval's doc is not item {item.id}")
            out[item.id] = record_from_sample(item, rows[doc_id], replies[(task, doc_id)])
    return out


def _accuracy_by(name: str, records: Sequence[ItemRecord], key: Callable[[ItemRecord], str]) -> dict[str, float]:
    """``score.<name>.<value>``: the mean item score of each group of records."""
    groups: dict[str, list[float]] = {}
    for r in records:
        groups.setdefault(key(r), []).append(r.score)
    return {f"score.{name}.{value}": sum(scores) / len(scores) for value, scores in sorted(groups.items())}


def _narrow(item: SuiteItem) -> ReasoningItem:
    if not isinstance(item, ReasoningItem):
        raise TypeError(f"reasoning suite got a {type(item).__name__}, not a ReasoningItem")
    return item


class ReasoningSuite:
    """The reasoning suite over the pinned data (verified on load) and the lm-eval task YAMLs."""

    id: str = SUITE_ID
    version: str = SUITE_VERSION
    task_type: TaskType = "reasoning"

    def __init__(self, tasks: str | None = None, data_dir: Path | None = None, yaml_dir: Path | None = None) -> None:
        self.tasks = parse_tasks(tasks)
        self.data_dir = Path(data_dir) if data_dir else default_data_dir()
        self.yaml_dir = Path(yaml_dir) if yaml_dir else default_yaml_dir()
        if not self.data_dir.is_dir():
            raise LaloError(f"{self.data_dir}: reasoning data folder not found; set {ENV_ROOT} or regenerate it")
        verify(self.data_dir)
        self.specs = {t: load_task_spec(self.yaml_dir / f"{t}.yaml") for t in self.tasks}
        self.shots = {t: load_split(self.data_dir, t, "train") for t in self.tasks}
        for t, spec in self.specs.items():
            if len(self.shots[t]) < spec.num_fewshot:
                raise LaloError(
                    f"{spec.path}: num_fewshot {spec.num_fewshot} but the train split has {len(self.shots[t])}"
                )
        self._items = interleave([i for t in self.tasks for i in load_split(self.data_dir, t, "test")])
        self.last_run: LmEvalRun | None = None

    def items(self, limit: int | None = None) -> list[SuiteItem]:
        return list(self._items if limit is None else self._items[:limit])

    def prompt(self, item: ReasoningItem) -> str:
        return build_prompt(self.specs[item.task], self.shots[item.task], item)

    def request(self, item: SuiteItem, max_tokens: int) -> GenerationRequest:
        it = _narrow(item)
        return GenerationRequest(
            messages=[ChatMessage(role="user", content=self.prompt(it))],
            max_tokens=max_tokens,
            stop=self.specs[it.task].until,
        )

    def score(self, item: SuiteItem, output: str) -> ItemScore:
        it = _narrow(item)
        return score_reply(self.specs[it.task], it, output)

    def summarize(self, records: Sequence[ItemRecord]) -> dict[str, float]:
        """Means of both filters, accuracy per category, task and difficulty, and lm-eval's own aggregates."""
        out = mean_details(records)
        task_of = {i.id: i.task for i in self._items}
        out |= _accuracy_by("task", records, lambda r: task_of.get(r.item_id, "unknown"))
        out |= _accuracy_by("difficulty", records, lambda r: str(r.difficulty))
        run = self.last_run
        if run is not None and sorted(run.item_ids) == sorted(r.item_id for r in records):
            for task, metrics in run.results.items():
                for metric, value in metrics.items():
                    out[f"lm_eval.{task}.{metric.replace(',', '.')}"] = value
        return out

    def run_with(
        self,
        backend: Backend,
        settings: GenerationSettings,
        items: list[SuiteItem],
        on_item: Callable[[ItemRecord], None],
    ) -> list[tuple[ItemRecord, RequestTiming | None]]:
        """Run exactly ``items`` through lm-eval on ``backend``; records come back in ``items`` order."""
        chosen_items = [_narrow(i) for i in items]
        if not chosen_items:
            return []
        chosen = {t: [i for i in chosen_items if i.task == t] for t in self.tasks}
        chosen = {t: its for t, its in chosen.items() if its}
        stray = {i.task for i in chosen_items} - set(chosen)
        if stray:
            raise LaloError(f"reasoning: items of task(s) {', '.join(sorted(stray))} not selected by this suite")
        with tempfile.TemporaryDirectory(prefix="lalo-lm-eval-") as tmp:
            include = write_overlay(Path(tmp), self.specs, self.data_dir, chosen)
            results, replies = _evaluate(backend, settings, include, list(chosen))
        joined = join_samples(results["samples"], replies, chosen)
        self.last_run = LmEvalRun(
            lm_eval_version=str(results.get("lm_eval_version", "")),
            item_ids=[i.id for i in chosen_items],
            results={task: _numeric(metrics) for task, metrics in results["results"].items()},
            n_shot={k: int(v) for k, v in results.get("n-shot", {}).items()},
        )
        out = [joined[i.id] for i in chosen_items]
        for record, _ in out:
            on_item(record)
        return out


def _evaluate(
    backend: Backend, settings: GenerationSettings, include: Path, tasks: list[str]
) -> tuple[dict[str, Any], dict[tuple[str, int], HarnessReply]]:
    # Imported here: the adapter sets the offline switches before lm_eval loads, and plain scoring needs neither.
    from lalo_bench.backends.lm_eval_adapter import LaloLM, evaluate

    lm = LaloLM(backend=backend, settings=settings)
    results = evaluate(lm, tasks, include)
    return results, lm.replies_by_sample()
