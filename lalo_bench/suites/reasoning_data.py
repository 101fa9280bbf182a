"""Seeded generator of the reasoning suite's data: arithmetic word problems, unit conversions and logic.

Three lm-eval tasks, each with a ``test`` split (the scored items) and a small
``train`` split (the few-shot examples, never scored):

- ``lalo_arith``: GSM8K-style multi-step word problems with integer answers.
  ``difficulty`` is the number of arithmetic steps (1–6); the worked
  ``solution`` has exactly one ``<expression> = <value>`` line per step and ends
  in ``#### <answer>`` as GSM8K does. Six story kinds (shopping, travel,
  work_rate, sharing, percent, savings); percentages are chosen so every
  intermediate value is an integer.
- ``lalo_units``: exact unit conversions (time, length, mass, volume) with
  integer answers; difficulty 1 = adjacent units, 2 = two units apart or the
  reverse direction, 3 = a compound quantity ("2 hours and 45 minutes").
- ``lalo_logic``: ordering puzzles ("Ann is taller than Ben … who is the
  shortest?", difficulty = facts to chain, 1–4) answered with a name, and
  syllogisms over nonsense words answered yes/no (difficulty 1–3).

Everything comes from one ``random.Random(seed)`` per split, so a seed
reproduces the files byte for byte; :func:`write_dataset` writes them with a
sha256 manifest.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import pairwise
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from lalo_bench.suites.manifest import write_manifest

SUITE_ID = "reasoning"
SUITE_VERSION = "1"
GENERATOR = "lalo_bench.suites.reasoning_data"
GENERATOR_VERSION = "1"
DEFAULT_SEED = 2025

TASKS = ("lalo_arith", "lalo_units", "lalo_logic")
TaskName = Literal["lalo_arith", "lalo_units", "lalo_logic"]
Split = Literal["test", "train"]
TEST_COUNTS: dict[str, int] = {"lalo_arith": 240, "lalo_units": 60, "lalo_logic": 60}
TRAIN_COUNTS: dict[str, int] = {"lalo_arith": 8, "lalo_units": 6, "lalo_logic": 6}
ARITH_CATEGORIES = ("shopping", "travel", "work_rate", "sharing", "percent", "savings")
UNIT_CATEGORIES = ("time", "length", "mass", "volume")
LOGIC_CATEGORIES = ("ordering", "syllogism")
ID_PREFIX = {"lalo_arith": "arith", "lalo_units": "units", "lalo_logic": "logic"}

NAMES = ("Ann", "Ben", "Cara", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun", "Kim", "Leo")
"""Every name a logic answer can be; the lalo_logic YAML's flexible-extract regex lists exactly these."""

NONSENSE = (
    "bloops",
    "razzies",
    "lazzies",
    "wugs",
    "florps",
    "snarks",
    "glims",
    "toves",
    "zorbs",
    "quibs",
    "dax",
    "feps",
)


class ReasoningRow(BaseModel):
    """One line of a data file; lm-eval reads the same fields (``question`` into the prompt, ``solution`` as target)."""

    id: str
    task: TaskName
    category: str
    difficulty: int = Field(ge=1)
    question: str
    answer: str = Field(description="the exact final answer: an integer, a name, or yes/no")
    solution: str = Field(description="worked solution ending in '#### <answer>'")


def data_file(task: str, split: Split) -> str:
    return f"{task}.{split}.jsonl"


# ---------------------------------------------------------------- arithmetic

PEOPLE = ("Maya", "Omar", "Lena", "Tariq", "Sofia", "Kenji", "Priya", "Lucas", "Amara", "Diego")
PRONOUNS = {"Maya": "she", "Lena": "she", "Sofia": "she", "Priya": "she", "Amara": "she"}
ITEMS = ("notebook", "backpack", "lamp", "scarf", "board game", "water bottle", "jacket", "headphone set")
ITEMS_PLURAL = ("pens", "apples", "candles", "mugs", "socks", "batteries", "stickers", "notebooks")
DAYS = ("Tuesday", "Wednesday", "Thursday", "Friday")
SHARE_GOODS = (("cookies", "bakes", "trays"), ("muffins", "bakes", "trays"), ("marbles", "buys", "bags"))
PERCENTS = (10, 20, 25, 50)


def eval_expression(expr: str) -> Fraction:
    """Exact value of ``+ - * /`` arithmetic with parentheses, for checking every solution step."""
    tokens = expr.replace("(", " ( ").replace(")", " ) ").split()
    pos = 0

    def atom() -> Fraction:
        nonlocal pos
        tok = tokens[pos]
        pos += 1
        if tok == "(":
            value = summ()
            pos += 1  # ")"
            return value
        return Fraction(tok)

    def product() -> Fraction:
        nonlocal pos
        value = atom()
        while pos < len(tokens) and tokens[pos] in "*/":
            op = tokens[pos]
            pos += 1
            value = value * atom() if op == "*" else value / atom()
        return value

    def summ() -> Fraction:
        nonlocal pos
        value = product()
        while pos < len(tokens) and tokens[pos] in "+-":
            op = tokens[pos]
            pos += 1
            value = value + product() if op == "+" else value - product()
        return value

    return summ()


@dataclass
class Story:
    """A word problem under construction: ``value`` is the running quantity the question asks about."""

    name: str
    value: int = 0
    sentences: list[str] = field(default_factory=list)
    work: list[str] = field(default_factory=list)
    used: set[str] = field(default_factory=set)
    question: str = ""

    @property
    def he(self) -> str:
        return PRONOUNS.get(self.name, "he")

    @property
    def him(self) -> str:
        return "her" if self.he == "she" else "him"

    @property
    def his(self) -> str:
        return "her" if self.he == "she" else "his"

    @property
    def He(self) -> str:
        return self.he.capitalize()

    @property
    def His(self) -> str:
        return self.his.capitalize()

    def step(self, label: str, expr: str) -> int:
        """Record one arithmetic step (``label: expr = value.``) and return its value, which must be an integer."""
        value = eval_expression(expr)
        if value.denominator != 1 or value < 0:
            raise ValueError(f"step {expr} is not a non-negative integer")
        self.work.append(f"{label}: {expr} = {int(value)}.")
        return int(value)


Event = Callable[[Story, random.Random], bool]
"""Adds one or two steps to a story, or returns False (story untouched) when its numbers would not work out."""


def _percent_of(rng: random.Random, value: int, up: bool) -> tuple[int, str] | None:
    """A percentage change of ``value`` with an integer result, or None when no listed percent gives one."""
    options = [r for r in PERCENTS if value * r % 100 == 0]
    if not options:
        return None
    r = rng.choice(options)
    return r, f"{value} * (100 {'+' if up else '-'} {r}) / 100"


# shopping: money left ------------------------------------------------


def _shop_start(s: Story, rng: random.Random) -> None:
    s.value = rng.randrange(80, 400, 10)
    s.sentences.append(f"{s.name} goes shopping with ${s.value}.")
    s.question = f"How many dollars does {s.name} have left?"


def _shop_one(s: Story, rng: random.Random) -> bool:
    if s.value < 4:
        return False
    item, price = rng.choice(ITEMS), rng.randint(2, max(2, s.value // 3))
    s.sentences.append(f"{s.He} buys a {item} for ${price}.")
    s.value = s.step(f"Money left after the {item}", f"{s.value} - {price}")
    return True


def _shop_many(s: Story, rng: random.Random) -> bool:
    k = rng.randint(2, 6)
    if s.value // k < 3:
        return False
    items, price = rng.choice(ITEMS_PLURAL), rng.randint(1, max(1, s.value // (2 * k)))
    s.sentences.append(f"{s.He} buys {k} {items} at ${price} each.")
    cost = s.step(f"Cost of the {items}", f"{k} * {price}")
    s.value = s.step("Money left", f"{s.value} - {cost}")
    return True


def _shop_sale(s: Story, rng: random.Random) -> bool:
    item, r = rng.choice(ITEMS), rng.choice(PERCENTS)
    prices = [p for p in range(20, s.value + 1, 10) if p * (100 - r) % 100 == 0]
    if not prices:
        return False
    price = rng.choice(prices)
    s.sentences.append(f"{s.He} buys a {item} that normally costs ${price} but is {r}% off.")
    sale = s.step(f"Sale price of the {item}", f"{price} * (100 - {r}) / 100")
    s.value = s.step("Money left", f"{s.value} - {sale}")
    return True


def _shop_refund(s: Story, rng: random.Random) -> bool:
    if "refund" in s.used:
        return False
    s.used.add("refund")
    x = rng.randint(5, 40)
    s.sentences.append(f"{s.He} returns a {rng.choice(ITEMS)} and gets ${x} back.")
    s.value = s.step("Money after the refund", f"{s.value} + {x}")
    return True


# travel: kilometers ---------------------------------------------------


def _travel_start(s: Story, rng: random.Random) -> None:
    h, v = rng.randint(2, 5), rng.randrange(40, 100, 5)
    s.sentences.append(f"{s.name} drives for {h} hours at {v} kilometers per hour.")
    s.value = s.step("Distance of the first part", f"{h} * {v}")
    s.question = f"How many kilometers does {s.name} drive in total?"


def _travel_extra(s: Story, rng: random.Random) -> bool:
    x = rng.randrange(10, 90, 5)
    s.sentences.append(f"Then {s.he} drives another {x} kilometers.")
    s.value = s.step("Distance so far", f"{s.value} + {x}")
    return True


def _travel_leg(s: Story, rng: random.Random) -> bool:
    h, v = rng.randint(1, 3), rng.randrange(30, 90, 10)
    s.sentences.append(f"After a break, {s.he} drives {h} more hour{'s' * (h > 1)} at {v} kilometers per hour.")
    leg = s.step("Distance after the break", f"{h} * {v}")
    s.value = s.step("Distance so far", f"{s.value} + {leg}")
    return True


def _travel_back(s: Story, rng: random.Random) -> bool:
    if "back" in s.used:
        return False
    s.used.add("back")
    s.sentences.append(f"{s.He} then drives the same route back home.")
    s.value = s.step("Distance there and back", f"{s.value} * 2")
    return True


def _travel_detour(s: Story, rng: random.Random) -> bool:
    change = _percent_of(rng, s.value, up=True)
    if change is None or "detour" in s.used:
        return False
    s.used.add("detour")
    r, expr = change
    s.sentences.append(f"Road works add {r}% to the distance driven so far.")
    s.value = s.step("Distance with the detour", expr)
    return True


def _travel_fuel(s: Story, rng: random.Random) -> bool:
    ks = [k for k in (5, 8, 10, 12, 15, 20) if s.value % k == 0]
    if not ks:
        return False
    k = rng.choice(ks)
    s.sentences.append(f"The car uses 1 liter of fuel every {k} kilometers.")
    s.question = "How many liters of fuel does the whole drive use?"
    s.value = s.step("Fuel used", f"{s.value} / {k}")
    return True


# work rate: boxes packed --------------------------------------------


def _work_start(s: Story, rng: random.Random) -> None:
    r, h = rng.randint(6, 25), rng.randint(3, 8)
    s.sentences.append(f"{s.name} packs {r} boxes per hour and works {h} hours on Monday.")
    s.used.add(f"rate={r}")
    s.value = s.step("Boxes packed on Monday", f"{r} * {h}")
    s.question = "How many boxes are packed in total?"


def _rate(s: Story) -> int:
    return next(int(u.split("=")[1]) for u in s.used if u.startswith("rate="))


def _work_day(s: Story, rng: random.Random) -> bool:
    day = next((d for d in DAYS if d not in s.used), None)
    if day is None:
        return False
    s.used.add(day)
    h = rng.randint(2, 8)
    s.sentences.append(f"On {day}, {s.he} works {h} hours at the same rate.")
    more = s.step(f"Boxes packed on {day}", f"{_rate(s)} * {h}")
    s.value = s.step("Boxes so far", f"{s.value} + {more}")
    return True


def _work_helper(s: Story, rng: random.Random) -> bool:
    x = rng.randint(5, 40)
    s.sentences.append(f"A coworker packs {x} more boxes.")
    s.value = s.step("Boxes so far", f"{s.value} + {x}")
    return True


def _work_damaged(s: Story, rng: random.Random) -> bool:
    if s.value < 10:
        return False
    x = rng.randint(1, min(15, s.value // 3))
    s.sentences.append(f"{x} of the boxes are damaged and thrown away.")
    s.value = s.step("Boxes left", f"{s.value} - {x}")
    return True


def _work_again(s: Story, rng: random.Random) -> bool:
    if "again" in s.used:
        return False
    s.used.add("again")
    s.sentences.append("The team then packs the same number of boxes again for a second warehouse.")
    s.value = s.step("Boxes for both warehouses", f"{s.value} * 2")
    return True


def _work_trucks(s: Story, rng: random.Random) -> bool:
    ks = [k for k in (4, 5, 6, 8, 10, 12) if s.value % k == 0 and s.value > k]
    if not ks:
        return False
    k = rng.choice(ks)
    s.sentences.append(f"All the boxes are loaded onto trucks that hold {k} boxes each, and every truck is full.")
    s.question = "How many trucks are used?"
    s.value = s.step("Trucks", f"{s.value} / {k}")
    return True


# sharing: goods in hand ------------------------------------------------


def _share_start(s: Story, rng: random.Random) -> None:
    goods, verb, unit = rng.choice(SHARE_GOODS)
    k, m = rng.randint(2, 6), rng.randint(6, 24)
    s.used.add(f"goods={goods}")
    s.sentences.append(f"{s.name} {verb} {k} {unit} of {m} {goods}.")
    s.value = s.step(f"{goods.capitalize()} in total", f"{k} * {m}")
    s.question = f"How many {goods} does {s.name} have now?"


def _goods(s: Story) -> str:
    return next(u.split("=")[1] for u in s.used if u.startswith("goods="))


def _share_eat(s: Story, rng: random.Random) -> bool:
    if s.value < 6:
        return False
    x = rng.randint(1, min(9, s.value // 3))
    verb = "eats" if _goods(s) != "marbles" else "loses"
    s.sentences.append(f"{s.He} {verb} {x} of them.")
    s.value = s.step(f"{_goods(s).capitalize()} left", f"{s.value} - {x}")
    return True


def _share_more(s: Story, rng: random.Random) -> bool:
    x = rng.randint(3, 20)
    s.sentences.append(f"{s.His} friend gives {s.him} {x} more {_goods(s)}.")
    s.value = s.step(f"{_goods(s).capitalize()} now", f"{s.value} + {x}")
    return True


def _share_half(s: Story, rng: random.Random) -> bool:
    if s.value % 2 or s.value < 4:
        return False
    s.sentences.append(f"{s.He} gives half of {s.his} {_goods(s)} to a neighbor.")
    s.value = s.step("Half kept", f"{s.value} / 2")
    return True


def _share_third(s: Story, rng: random.Random) -> bool:
    if s.value % 3 or s.value < 6:
        return False
    s.sentences.append(f"{s.He} keeps one third of {s.his} {_goods(s)} and gives the rest to a school.")
    s.value = s.step("One third kept", f"{s.value} / 3")
    return True


def _share_split(s: Story, rng: random.Random) -> bool:
    ks = [k for k in range(3, 9) if s.value % k == 0 and s.value > k]
    if not ks:
        return False
    k = rng.choice(ks)
    s.sentences.append(f"{s.He} shares all of {s.his} {_goods(s)} equally among {k} friends.")
    s.question = f"How many {_goods(s)} does each friend get?"
    s.value = s.step("Each friend's share", f"{s.value} / {k}")
    return True


# percent: a price ----------------------------------------------------


def _pct_start(s: Story, rng: random.Random) -> None:
    item = rng.choice(ITEMS)
    s.value = rng.randrange(40, 400, 20)
    s.sentences.append(f"{s.name} wants a {item} that costs ${s.value}.")
    s.question = f"How many dollars does {s.name} pay?"


def _pct_change(up: bool) -> Event:
    def event(s: Story, rng: random.Random) -> bool:
        change = _percent_of(rng, s.value, up)
        if change is None:
            return False
        r, expr = change
        text = f"The price goes up by {r}%." if up else f"Then the store takes {r}% off the price."
        s.sentences.append(text)
        s.value = s.step("Price after the increase" if up else "Price after the discount", expr)
        return True

    return event


def _pct_many(s: Story, rng: random.Random) -> bool:
    if "many" in s.used:
        return False
    s.used.add("many")
    k = rng.randint(2, 5)
    s.sentences.append(f"{s.He} buys {k} of them at that price.")
    s.value = s.step(f"Cost of {k}", f"{s.value} * {k}")
    return True


def _pct_coupon(s: Story, rng: random.Random) -> bool:
    if s.value < 20:
        return False
    x = rng.randrange(5, min(50, s.value // 2) + 1, 5)
    s.sentences.append(f"{s.He} uses a coupon for ${x} off.")
    s.value = s.step("Cost after the coupon", f"{s.value} - {x}")
    return True


def _pct_fee(s: Story, rng: random.Random) -> bool:
    x = rng.randint(3, 15)
    s.sentences.append(f"A delivery fee of ${x} is added.")
    s.value = s.step("Cost with delivery", f"{s.value} + {x}")
    return True


def _pct_split(s: Story, rng: random.Random) -> bool:
    ks = [k for k in range(2, 7) if s.value % k == 0]
    if not ks:
        return False
    k = rng.choice(ks)
    s.sentences.append(f"{s.name} and {k - 1} friends split the cost equally.")
    s.question = "How many dollars does each person pay?"
    s.value = s.step("Each person's share", f"{s.value} / {k}")
    return True


# savings: money saved ------------------------------------------------


def _save_start(s: Story, rng: random.Random) -> None:
    w, n = rng.randrange(5, 60, 5), rng.randint(3, 12)
    s.sentences.append(f"{s.name} saves ${w} every week for {n} weeks.")
    s.value = s.step("Savings", f"{w} * {n}")
    s.question = f"How many dollars does {s.name} have saved?"


def _save_spend(s: Story, rng: random.Random) -> bool:
    if s.value < 10:
        return False
    x = rng.randint(2, s.value // 3)
    s.sentences.append(f"{s.He} spends ${x} on a {rng.choice(ITEMS)}.")
    s.value = s.step("Savings left", f"{s.value} - {x}")
    return True


def _save_gift(s: Story, rng: random.Random) -> bool:
    if "gift" in s.used:
        return False
    s.used.add("gift")
    x = rng.randrange(10, 60, 5)
    s.sentences.append(f"{s.He} gets ${x} for {s.his} birthday and saves it too.")
    s.value = s.step("Savings with the gift", f"{s.value} + {x}")
    return True


def _save_bonus(s: Story, rng: random.Random) -> bool:
    change = _percent_of(rng, s.value, up=True)
    if change is None or "bonus" in s.used:
        return False
    s.used.add("bonus")
    r, expr = change
    s.sentences.append(f"{s.His} parents add {r}% of what {s.he} has saved so far.")
    s.value = s.step("Savings with the parents' bonus", expr)
    return True


def _save_more(s: Story, rng: random.Random) -> bool:
    if "more" in s.used:
        return False
    s.used.add("more")
    w, n = rng.randrange(5, 40, 5), rng.randint(2, 6)
    s.sentences.append(f"Then {s.he} saves ${w} a week for {n} more weeks.")
    more = s.step("Extra savings", f"{w} * {n}")
    s.value = s.step("Savings", f"{s.value} + {more}")
    return True


def _save_games(s: Story, rng: random.Random) -> bool:
    ks = [k for k in (4, 5, 6, 8, 10, 12, 15, 20) if s.value % k == 0 and s.value > k]
    if not ks:
        return False
    k = rng.choice(ks)
    s.sentences.append(f"{s.He} spends all of it on games that cost ${k} each.")
    s.question = f"How many games does {s.name} buy?"
    s.value = s.step("Games", f"{s.value} / {k}")
    return True


@dataclass(frozen=True)
class Kind:
    """A story kind: how it opens, what can happen next (with step costs), and how it may end."""

    start: Callable[[Story, random.Random], None]
    start_steps: int
    events: tuple[tuple[Event, int], ...]
    finishers: tuple[Event, ...]


KINDS: dict[str, Kind] = {
    "shopping": Kind(_shop_start, 0, ((_shop_one, 1), (_shop_many, 2), (_shop_sale, 2), (_shop_refund, 1)), ()),
    "travel": Kind(
        _travel_start,
        1,
        ((_travel_extra, 1), (_travel_leg, 2), (_travel_back, 1), (_travel_detour, 1)),
        (_travel_fuel,),
    ),
    "work_rate": Kind(
        _work_start,
        1,
        ((_work_day, 2), (_work_helper, 1), (_work_damaged, 1), (_work_again, 1)),
        (_work_trucks,),
    ),
    "sharing": Kind(
        _share_start,
        1,
        ((_share_eat, 1), (_share_more, 1), (_share_half, 1), (_share_third, 1)),
        (_share_split,),
    ),
    "percent": Kind(
        _pct_start,
        0,
        ((_pct_change(True), 1), (_pct_change(False), 1), (_pct_many, 1), (_pct_coupon, 1), (_pct_fee, 1)),
        (_pct_split,),
    ),
    "savings": Kind(
        _save_start,
        1,
        ((_save_spend, 1), (_save_gift, 1), (_save_bonus, 1), (_save_more, 2)),
        (_save_games,),
    ),
}


def _grow(story: Story, kind: Kind, steps: int, rng: random.Random) -> bool:
    """Add events until the story has exactly ``steps`` steps; sometimes end on a finisher that changes the question."""
    while len(story.work) < steps:
        left = steps - len(story.work)
        if left == 1 and kind.finishers and rng.random() < 0.4 and rng.choice(kind.finishers)(story, rng):
            return True
        fitting = [event for event, cost in kind.events if cost <= left]
        rng.shuffle(fitting)
        if not any(event(story, rng) for event in fitting):
            return False
    return len(story.work) == steps


def arithmetic_row(rng: random.Random, row_id: str, category: str, difficulty: int) -> ReasoningRow:
    """One word problem of ``category`` with exactly ``difficulty`` steps (retrying until the numbers work out)."""
    kind = KINDS[category]
    for _ in range(1000):
        story = Story(name=rng.choice(PEOPLE))
        kind.start(story, rng)
        if len(story.work) > difficulty or not _grow(story, kind, difficulty, rng):
            continue
        answer = str(story.value)
        return ReasoningRow(
            id=row_id,
            task="lalo_arith",
            category=category,
            difficulty=difficulty,
            question=" ".join([*story.sentences, story.question]),
            answer=answer,
            solution="\n".join([*story.work, f"#### {answer}"]),
        )
    raise RuntimeError(f"could not build a {difficulty}-step {category} problem")  # pragma: no cover


# ---------------------------------------------------------------- units


@dataclass(frozen=True)
class Unit:
    singular: str
    plural: str
    size: int
    """in the category's base unit (second, millimeter, milligram, milliliter)"""


UNITS: dict[str, tuple[Unit, ...]] = {
    "time": (
        Unit("second", "seconds", 1),
        Unit("minute", "minutes", 60),
        Unit("hour", "hours", 3600),
        Unit("day", "days", 86400),
        Unit("week", "weeks", 604800),
    ),
    "length": (
        Unit("millimeter", "millimeters", 1),
        Unit("centimeter", "centimeters", 10),
        Unit("meter", "meters", 1000),
        Unit("kilometer", "kilometers", 1_000_000),
    ),
    "mass": (
        Unit("milligram", "milligrams", 1),
        Unit("gram", "grams", 1000),
        Unit("kilogram", "kilograms", 1_000_000),
    ),
    "volume": (
        Unit("milliliter", "milliliters", 1),
        Unit("liter", "liters", 1000),
        Unit("cubic meter", "cubic meters", 1_000_000),
    ),
}


def _qty(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"


def _amount(q: Fraction, unit: Unit) -> str:
    return f"{_qty(q)} {unit.singular if q == 1 else unit.plural}"


def _pick_quantity(rng: random.Random, ratio: int, halves: bool) -> Fraction:
    """A quantity whose conversion by ``ratio`` is an integer (halves and quarters only where they stay exact)."""
    steps = [Fraction(1, d) for d in (4, 2) if halves and ratio % d == 0] or [Fraction(1)]
    step = rng.choice(steps)
    return step * rng.randint(max(2, int(1 / step)), int(12 / step)) if step < 1 else Fraction(rng.randint(2, 12))


def units_row(rng: random.Random, row_id: str, category: str, difficulty: int) -> ReasoningRow:
    """A conversion to an exact integer: adjacent units (1), two apart or small→big (2), a compound amount (3)."""
    units = UNITS[category]
    if difficulty == 1:
        i = rng.randrange(len(units) - 1)
        big, small = units[i + 1], units[i]
        q = _pick_quantity(rng, big.size // small.size, halves=True)
        return _unit_conversion(row_id, category, difficulty, [(q, big)], small)
    if difficulty == 2:
        if len(units) > 2 and rng.random() < 0.5:
            i = rng.randrange(len(units) - 2)
            big, small = units[i + 2], units[i]
            q = _pick_quantity(rng, big.size // small.size, halves=False)
            return _unit_conversion(row_id, category, difficulty, [(q, big)], small)
        i = rng.randrange(len(units) - 1)
        big, small = units[i + 1], units[i]
        n = rng.randint(2, 12)
        q = Fraction(n * big.size, small.size)
        return _unit_conversion(row_id, category, difficulty, [(q, small)], big)
    i = rng.randrange(len(units) - 1)
    big, small = units[i + 1], units[i]
    ratio = big.size // small.size
    part = rng.randint(1, min(ratio - 1, 900))
    part = part - part % 5 if part > 10 else part
    return _unit_conversion(
        row_id, category, difficulty, [(Fraction(rng.randint(1, 9)), big), (Fraction(part), small)], small
    )


def _unit_conversion(
    row_id: str, category: str, difficulty: int, parts: list[tuple[Fraction, Unit]], target: Unit
) -> ReasoningRow:
    total = sum((q * u.size / target.size for q, u in parts), Fraction(0))
    assert total.denominator == 1, (parts, target)
    answer = str(total.numerator)
    amount = " and ".join(_amount(q, u) for q, u in parts)
    work = []
    for q, u in parts:
        if u is target:
            continue
        if u.size > target.size:
            ratio = u.size // target.size
            work.append(f"1 {u.singular} is {ratio} {target.plural}, so {_amount(q, u)} is {_qty(q)} * {ratio}")
        else:
            ratio = target.size // u.size
            work.append(f"1 {target.singular} is {ratio} {u.plural}, so {_amount(q, u)} is {_qty(q)} / {ratio}")
        work[-1] += f" = {_qty(q * u.size / target.size)} {target.plural}."
    if len(parts) > 1:
        terms = " + ".join(_qty(q * u.size / target.size) for q, u in parts)
        work.append(f"Together: {terms} = {answer} {target.plural}.")
    return ReasoningRow(
        id=row_id,
        task="lalo_units",
        category=category,
        difficulty=difficulty,
        question=f"How many {target.plural} are in {amount}?",
        answer=answer,
        solution="\n".join([*work, f"#### {answer}"]),
    )


# ---------------------------------------------------------------- logic

COMPARISONS = (
    ("taller", "shorter", "tallest", "shortest"),
    ("older", "younger", "oldest", "youngest"),
    ("faster", "slower", "fastest", "slowest"),
    ("heavier", "lighter", "heaviest", "lightest"),
)


def ordering_row(rng: random.Random, row_id: str, difficulty: int) -> ReasoningRow:
    """``difficulty + 1`` people in a strict order, told as adjacent comparisons in either direction, shuffled."""
    more, less, most, least = rng.choice(COMPARISONS)
    people = rng.sample(NAMES, difficulty + 1)  # people[0] has the most
    facts = []
    for a, b in pairwise(people):
        facts.append(f"{a} is {more} than {b}." if rng.random() < 0.5 else f"{b} is {less} than {a}.")
    rng.shuffle(facts)
    ask_most = rng.random() < 0.5
    answer = people[0] if ask_most else people[-1]
    return ReasoningRow(
        id=row_id,
        task="lalo_logic",
        category="ordering",
        difficulty=difficulty,
        question=" ".join([*facts, f"Who is the {most if ask_most else least}?"]),
        answer=answer,
        solution=f"From {most} to {least}: {', '.join(people)}. So the {most if ask_most else least} is {answer}.\n"
        f"#### {answer}",
    )


def syllogism_row(rng: random.Random, row_id: str, difficulty: int, valid: bool) -> ReasoningRow:
    """A chain of ``difficulty + 1`` "All A are B." premises (plus a distractor at 3); the conclusion holds iff it
    follows the chain forwards."""
    terms = rng.sample(NONSENSE, difficulty + 3)
    chain, spare = terms[: difficulty + 2], terms[difficulty + 2]
    premises = [f"All {a} are {b}." for a, b in pairwise(chain)]
    if difficulty == 3:
        premises.append(f"All {spare} are {chain[-1]}.")
    if difficulty > 1:
        rng.shuffle(premises)
    i, j = sorted(rng.sample(range(len(chain)), 2))
    if j - i == 1 and valid:  # a conclusion that only restates a premise is too easy
        i, j = 0, len(chain) - 1
    x, y = (chain[i], chain[j]) if valid else (chain[j], chain[i])
    if not valid and difficulty == 3 and rng.random() < 0.5:
        x, y = spare, chain[0]  # shares a superset with the chain, but says nothing about chain[0]
    answer = "yes" if valid else "no"
    links = " and ".join(f"all {a} are {b}" for a, b in zip(chain[i:j], chain[i + 1 : j + 1], strict=True))
    reason = (
        f"{links[0].upper()}{links[1:]}, so all {x} are {y}."
        if valid
        else f"The premises never lead from {x} to {y}, so it does not follow that all {x} are {y}."
    )
    return ReasoningRow(
        id=row_id,
        task="lalo_logic",
        category="syllogism",
        difficulty=difficulty,
        question=" ".join([*premises, f"Does it follow that all {x} are {y}? Answer yes or no."]),
        answer=answer,
        solution=f"{reason}\n#### {answer}",
    )


# ---------------------------------------------------------------- splits

RowMaker = Callable[[random.Random, int, str, Split], ReasoningRow]


def _arith_row(rng: random.Random, i: int, row_id: str, split: Split) -> ReasoningRow:
    """Test: every (difficulty, category) pair 6–7 times; train: categories in turn at difficulty 2–4 (short shots)."""
    if split == "train":
        return arithmetic_row(rng, row_id, ARITH_CATEGORIES[i % len(ARITH_CATEGORIES)], i % 3 + 2)
    return arithmetic_row(rng, row_id, ARITH_CATEGORIES[(i // 6) % len(ARITH_CATEGORIES)], i % 6 + 1)


def _units_row(rng: random.Random, i: int, row_id: str, split: Split) -> ReasoningRow:
    return units_row(rng, row_id, UNIT_CATEGORIES[i % len(UNIT_CATEGORIES)], i % 3 + 1)


def _logic_row(rng: random.Random, i: int, row_id: str, split: Split) -> ReasoningRow:
    """Out of every five: ordering, syllogism, ordering, syllogism, ordering; difficulties and yes/no cycle."""
    block, slot = divmod(i, 5)
    if slot % 2 == 0:
        return ordering_row(rng, row_id, (block * 3 + slot // 2) % 4 + 1)
    n = block * 2 + slot // 2
    return syllogism_row(rng, row_id, n % 3 + 1, valid=n % 2 == 0)


ROW_MAKERS: dict[str, RowMaker] = {"lalo_arith": _arith_row, "lalo_units": _units_row, "lalo_logic": _logic_row}


def _split(task: str, split: Split, rng: random.Random, taken: set[str]) -> list[ReasoningRow]:
    """Rows with questions distinct from each other and from ``taken`` (a duplicate is redrawn)."""
    count = (TEST_COUNTS if split == "test" else TRAIN_COUNTS)[task]
    prefix = ID_PREFIX[task] if split == "test" else f"{ID_PREFIX[task]}-train"
    rows: list[ReasoningRow] = []
    for i in range(count):
        row = ROW_MAKERS[task](rng, i, f"{prefix}-{i + 1:04d}", split)
        while row.question in taken:
            row = ROW_MAKERS[task](rng, i, row.id, split)
        taken.add(row.question)
        rows.append(row)
    return rows


def generate(seed: int = DEFAULT_SEED) -> dict[str, dict[Split, list[ReasoningRow]]]:
    """task → split → rows; each (task, split) has its own stream derived from ``seed``; no question repeats."""
    out: dict[str, dict[Split, list[ReasoningRow]]] = {}
    for task in TASKS:
        taken: set[str] = set()
        test = _split(task, "test", random.Random(f"{seed}/{task}/test"), taken)
        train = _split(task, "train", random.Random(f"{seed}/{task}/train"), taken)
        out[task] = {"test": test, "train": train}
    return out


def write_dataset(out_dir: Path, seed: int = DEFAULT_SEED) -> Path:
    """Write one JSONL per (task, split) and the sha256 manifest into ``out_dir``; returns the manifest's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    total = 0
    for task, splits in generate(seed).items():
        for split, rows in splits.items():
            name = data_file(task, split)
            lines = [json.dumps(row.model_dump(), sort_keys=True) + "\n" for row in rows]
            (out_dir / name).write_text("".join(lines), encoding="utf-8")
            names.append(name)
            total += len(rows) if split == "test" else 0
    return write_manifest(
        out_dir,
        suite=SUITE_ID,
        version=SUITE_VERSION,
        generator=GENERATOR,
        generator_version=GENERATOR_VERSION,
        seed=seed,
        count=total,
        files=names,
    )
