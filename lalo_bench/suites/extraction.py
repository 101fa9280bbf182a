"""Structured extraction: pull typed fields out of short business documents as JSON.

Five document kinds (invoice, email, support ticket, contact card, purchase
order), each with its own 5–6 field schema, in three difficulties:

1. clean labelled fields, ISO dates;
2. fields embedded in prose, dates written as "March 3, 2025", "3 Mar 2025",
   "03/14/2025" (US) — the gold is always normalized ISO ``YYYY-MM-DD``;
3. prose with distractors (a previous invoice's amount, an order date, a CC'd
   person, an assistant's phone) and some fields absent (gold ``null``).

The documents come from a seeded, pure-Python generator (:func:`generate`) and
are shipped pinned by sha256 in ``eval_suites/extraction/v1`` so every run
scores the same items; :func:`write_dataset` regenerates them.

Scoring is field-level with normalization (see :func:`score_reply`). A cell's
``quality`` is the mean per-item F1 (``ItemScore.score``); :func:`aggregate`
also reports precision, recall, exact-match rate and the invalid-JSON rate.
"""

from __future__ import annotations

import json
import math
import random
import re
import string
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from lalo_bench import datafiles
from lalo_bench.backends.base import ChatMessage, GenerationRequest
from lalo_bench.errors import LaloError
from lalo_bench.results import ItemRecord
from lalo_bench.suites.base import ItemScore, SuiteItem, TaskType, mean_details
from lalo_bench.suites.manifest import verify, write_jsonl, write_manifest

SUITE_ID = "extraction"
SUITE_VERSION = "1"
GENERATOR = "lalo_bench.suites.extraction"
GENERATOR_VERSION = "1"
DEFAULT_SEED = 1234
DEFAULT_COUNT = 240
ITEMS_FILE = "items.jsonl"
ENV_ROOT = datafiles.ENV_EVAL_SUITES

Gold = str | float | int | None
FieldType = Literal["string", "number", "integer", "date", "enum"]


class FieldSpec(BaseModel):
    type: FieldType
    description: str
    enum: list[str] | None = None


class ExtractionItem(SuiteItem):
    task_type: Literal["extraction"] = "extraction"
    document: str
    fields: dict[str, FieldSpec]
    gold: dict[str, Gold]


# ---------------------------------------------------------------- schemas

CURRENCIES = ["USD", "EUR", "GBP", "CHF", "CAD"]
SEVERITIES = ["low", "medium", "high", "critical"]


def _s(description: str) -> FieldSpec:
    return FieldSpec(type="string", description=description)


def _d(description: str) -> FieldSpec:
    return FieldSpec(type="date", description=description)


# Field dicts are kept in sorted order so an item read back from sorted-key JSON is identical to a generated one.
SCHEMAS: dict[str, dict[str, FieldSpec]] = {
    kind: dict(sorted(fields.items()))
    for kind, fields in {
        "invoice": {
            "invoice_number": _s("identifier of this invoice"),
            "vendor": _s("company that issued the invoice"),
            "date": _d("date the invoice was issued"),
            "total": FieldSpec(type="number", description="total amount due on this invoice"),
            "currency": FieldSpec(type="enum", description="currency of the total", enum=CURRENCIES),
            "due_date": _d("date payment is due"),
        },
        "email": {
            "sender_name": _s("full name of the person who sent the email"),
            "sender_email": _s("email address of the sender"),
            "subject": _s("subject line"),
            "meeting_date": _d("date of the meeting being proposed"),
            "location": _s("where the meeting takes place"),
        },
        "support_ticket": {
            "ticket_id": _s("identifier of this ticket"),
            "customer": _s("customer company that reported the issue"),
            "product": _s("product the issue is about"),
            "severity": FieldSpec(type="enum", description="severity of the issue", enum=SEVERITIES),
            "opened_date": _d("date this ticket was opened"),
        },
        "contact_card": {
            "name": _s("full name of the contact"),
            "company": _s("company the contact works for"),
            "title": _s("job title of the contact"),
            "email": _s("the contact's own email address"),
            "phone": _s("the contact's own phone number"),
        },
        "purchase_order": {
            "po_number": _s("identifier of this purchase order"),
            "buyer": _s("company placing the order"),
            "supplier": _s("company fulfilling the order"),
            "item_count": FieldSpec(type="integer", description="number of items ordered"),
            "total": FieldSpec(type="number", description="total value of this order"),
            "delivery_date": _d("requested delivery date"),
        },
    }.items()
}
KINDS = list(SCHEMAS)


def json_schema(item: ExtractionItem) -> dict[str, Any]:
    """JSON Schema of the expected reply, for prompts or backends that constrain output to a schema."""
    types = {"string": "string", "number": "number", "integer": "integer", "date": "string", "enum": "string"}
    props: dict[str, Any] = {}
    for name, spec in item.fields.items():
        prop: dict[str, Any] = {"type": [types[spec.type], "null"], "description": spec.description}
        if spec.type == "date":
            prop["format"] = "date"
        if spec.enum:
            prop["enum"] = [*spec.enum, None]
        props[name] = prop
    return {
        "type": "object",
        "properties": props,
        "required": list(item.fields),
        "additionalProperties": False,
    }


# ---------------------------------------------------------------- generator

FIRST = [
    "Alice",
    "Bruno",
    "Chen",
    "Dana",
    "Elena",
    "Farid",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kwame",
    "Laura",
    "Mateo",
    "Nadia",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Samuel",
    "Tara",
    "Vera",
    "Wei",
    "Yara",
    "Lukas",
    "Amara",
    "Diego",
    "Hannah",
    "Ravi",
    "Sofia",
    "Tomas",
]
LAST = [
    "Anders",
    "Becker",
    "Costa",
    "Dubois",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Haddad",
    "Ibrahim",
    "Jensen",
    "Kowalski",
    "Lindqvist",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Petrov",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Valdez",
    "Weber",
    "Yilmaz",
    "Zimmermann",
    "Novak",
    "Silva",
    "Murphy",
    "Patel",
    "Keller",
    "Brennan",
    "Horvat",
]
CO_HEAD = [
    "Northwind",
    "Bluepeak",
    "Crescent",
    "Evergreen",
    "Ironbridge",
    "Lumen",
    "Meridian",
    "Nimbus",
    "Orchid",
    "Pioneer",
    "Quartz",
    "Redwood",
    "Silverline",
    "Tidewater",
    "Vantage",
    "Willow",
    "Apex",
    "Brightside",
    "Cobalt",
    "Falcon",
]
CO_TAIL = [
    "Logistics",
    "Analytics",
    "Supplies",
    "Systems",
    "Foods",
    "Labs",
    "Industries",
    "Partners",
    "Software",
    "Electric",
    "Textiles",
    "Health",
]
CO_SUFFIX = ["Ltd", "GmbH", "Inc", "LLC", "AG", "BV", "", ""]
PRODUCTS = [
    "CloudSync Pro",
    "Ledger 360",
    "FieldMate Mobile",
    "DataVault",
    "RoutePlanner",
    "PayDesk",
    "SensorHub X2",
    "PrintStation 500",
    "MailGuard",
    "TimeTrack Plus",
]
ISSUES = [
    "fails to sync after the latest update",
    "shows a blank screen on login",
    "exports corrupted CSV files",
    "is very slow when opening reports",
    "rejects valid license keys",
    "crashes when printing labels",
]
TITLES = [
    "Head of Procurement",
    "Sales Manager",
    "Senior Data Engineer",
    "Operations Director",
    "Account Executive",
    "Chief Financial Officer",
    "Product Designer",
    "IT Support Lead",
    "Logistics Coordinator",
    "Marketing Specialist",
]
SUBJECTS = [
    "Quarterly review",
    "Project kickoff",
    "Budget planning",
    "Contract renewal",
    "Onboarding session",
    "Vendor evaluation",
    "Roadmap sync",
    "Site visit",
    "Security audit follow-up",
    "Pricing workshop",
]
LOCATIONS = [
    "Room 4B",
    "Conference Room Atlas",
    "the Berlin office",
    "the Lisbon office",
    "Building C, floor 2",
    "the main boardroom",
    "Meeting Room Harbor",
    "the Oslo office",
]
SERVICES = [
    "freight services",
    "consulting hours",
    "cloud hosting",
    "office supplies",
    "maintenance work",
    "software licenses",
    "catering",
    "translation services",
]
GOODS = ["desk chairs", "monitor arms", "safety gloves", "laptop docks", "pallet wraps", "LED panels", "toner kits"]
EVENTS = ["the Hamburg trade fair", "a partner dinner", "the logistics summit", "a customer workshop"]
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
NUMBER_WORDS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
]
SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}


def _day(rng: random.Random, start: date = date(2024, 1, 1)) -> date:
    return start + timedelta(days=rng.randrange(3 * 365))


def _fmt_date(rng: random.Random, d: date, difficulty: int) -> str:
    """ISO at difficulty 1; otherwise a human format (US numeric only when the day is > 12, so it is unambiguous)."""
    if difficulty == 1:
        return d.isoformat()
    month = MONTHS[d.month - 1]
    style = rng.randrange(5)
    if style == 0:
        return f"{month} {d.day}, {d.year}"
    if style == 1:
        return f"{d.day} {month[:3]} {d.year}"
    if style == 2:
        return f"{d.day} {month} {d.year}"
    if style == 3 and d.day > 12:
        return f"{d.month:02d}/{d.day:02d}/{d.year}"
    return f"{WEEKDAYS[d.weekday()]}, {month} {d.day}, {d.year}"


def _amount(rng: random.Random, low: float, high: float) -> float:
    return round(rng.uniform(low, high), 2)


def _fmt_money(rng: random.Random, value: float, currency: str | None) -> str:
    if currency is None:
        return f"{value:,.2f}"
    symbol = SYMBOLS.get(currency)
    if symbol and rng.random() < 0.5:
        return f"{symbol}{value:,.2f}"
    return rng.choice([f"{currency} {value:,.2f}", f"{value:,.2f} {currency}"])


def _person(rng: random.Random) -> tuple[str, str]:
    return rng.choice(FIRST), rng.choice(LAST)


def _company(rng: random.Random) -> str:
    return " ".join(p for p in (rng.choice(CO_HEAD), rng.choice(CO_TAIL), rng.choice(CO_SUFFIX)) if p)


def _domain(rng: random.Random, company: str) -> str:
    head, tail = company.split()[:2]
    return f"{head}{rng.choice(['', '-' + tail])}".lower() + rng.choice([".com", ".io", ".de", ".co.uk", ".net"])


def _email(rng: random.Random, first: str, last: str, domain: str) -> str:
    local = rng.choice([f"{first}.{last}", f"{first[0]}{last}", f"{first}"])
    return f"{local.lower()}@{domain}"


def _phone(rng: random.Random) -> str:
    cc = rng.choice(["1", "44", "49", "33", "31", "41"])
    return f"+{cc} {rng.randint(20, 999)} {rng.randint(100, 999)} {rng.randint(1000, 9999)}"


def _absent(rng: random.Random, difficulty: int, optional: list[str]) -> set[str]:
    """Fields left out of a difficulty-3 document (their gold is null)."""
    if difficulty < 3:
        return set()
    return set(rng.sample(optional, k=min(len(optional), rng.choice([0, 1, 1, 1, 2]))))


def _count_text(rng: random.Random, n: int, difficulty: int) -> str:
    if difficulty > 1 and n < len(NUMBER_WORDS) and rng.random() < 0.5:
        return NUMBER_WORDS[n]
    return str(n)


Doc = tuple[str, dict[str, Gold]]


def _invoice(rng: random.Random, difficulty: int) -> Doc:
    vendor, client = _company(rng), _company(rng)
    issued = _day(rng)
    due = issued + timedelta(days=rng.choice([14, 30, 45, 60]))
    number = rng.choice(
        [
            f"INV-{issued.year}-{rng.randint(1, 9999):04d}",
            f"A{rng.randint(1, 9)}-{rng.randint(10000, 99999)}",
            f"{rng.randint(100000, 999999)}",
        ]
    )
    total = _amount(rng, 80, 25000)
    currency = rng.choice(CURRENCIES)
    service = rng.choice(SERVICES)
    absent = _absent(rng, difficulty, ["due_date", "currency"])
    gold: dict[str, Gold] = {
        "invoice_number": number,
        "vendor": vendor,
        "date": issued.isoformat(),
        "total": total,
        "currency": currency,
        "due_date": due.isoformat(),
    }
    if difficulty == 1:
        if rng.random() < 0.5:
            doc = (
                f"INVOICE\nInvoice No: {number}\nVendor: {vendor}\nBill to: {client}\nInvoice Date: {issued}\n"
                f"Due Date: {due}\nDescription: {service}\nCurrency: {currency}\nTotal: {total:,.2f}"
            )
        else:
            doc = (
                f"{vendor} | Invoice #{number}\nDate: {issued}    Due: {due}\nCustomer: {client}\n"
                f"Amount due: {total:,.2f} {currency}"
            )
    elif difficulty == 2:
        money, d_issued, d_due = _fmt_money(rng, total, currency), _fmt_date(rng, issued, 2), _fmt_date(rng, due, 2)
        doc = rng.choice(
            [
                f"Thank you for your business. This is invoice {number} from {vendor}, issued on {d_issued} for "
                f"{service} delivered to {client}. Please pay {money} by {d_due}.",
                f"{vendor} hereby bills {client} for {service}. Invoice reference {number}, dated {d_issued}. "
                f"The amount of {money} is payable no later than {d_due}.",
            ]
        )
    else:
        for f in absent:
            gold[f] = None
        cur = None if "currency" in absent else currency
        money = _fmt_money(rng, total, cur)
        prev = _fmt_money(rng, _amount(rng, 80, 25000), cur)
        prev_day = _fmt_date(rng, issued - timedelta(days=rng.randint(20, 60)), 3)
        due_text = "" if "due_date" in absent else f" Payment is due by {_fmt_date(rng, due, 3)}."
        doc = (
            f"From: {vendor} accounts team\nTo: {client}\n\nHello, our previous invoice (total {prev}) was settled "
            f"on {prev_day}, thank you. Please find attached invoice {number}, dated {_fmt_date(rng, issued, 3)}, "
            f"for {service}. The total for this invoice is {money}.{due_text}"
        )
    return doc, gold


def _email_doc(rng: random.Random, difficulty: int) -> Doc:
    first, last = _person(rng)
    company = _company(rng)
    sender = _email(rng, first, last, _domain(rng, company))
    subject = rng.choice(SUBJECTS)
    when = _day(rng)
    where = rng.choice(LOCATIONS)
    to_first, to_last = _person(rng)
    absent = _absent(rng, difficulty, ["meeting_date", "location"])
    gold: dict[str, Gold] = {
        "sender_name": f"{first} {last}",
        "sender_email": sender,
        "subject": subject,
        "meeting_date": when.isoformat(),
        "location": where,
    }
    if difficulty == 1:
        doc = (
            f"From: {first} {last} <{sender}>\nTo: {to_first.lower()}@{_domain(rng, _company(rng))}\n"
            f"Subject: {subject}\nMeeting date: {when}\nLocation: {where}\n\n"
            f"Hi {to_first}, please join the meeting. Thanks, {first}"
        )
    elif difficulty == 2:
        d = _fmt_date(rng, when, 2)
        doc = rng.choice(
            [
                f"From: {sender}\nSubject: {subject}\n\nHello team,\nI'd like to meet on {d} in {where} to go through "
                f"this. Let me know if that works.\nBest regards,\n{first} {last}\n{company}",
                f"From: {first} {last} <{sender}>\nSubject: {subject}\n\nHi {to_first},\nCould we get together in "
                f"{where}? {d} would suit me best.\nCheers,\n{first}",
            ]
        )
    else:
        for f in absent:
            gold[f] = None
        cc_first, cc_last = _person(rng)
        cc_email = _email(rng, cc_first, cc_last, _domain(rng, _company(rng)))
        prev = _fmt_date(rng, when - timedelta(days=rng.randint(3, 20)), 3)
        when_text = "sometime next week" if "meeting_date" in absent else f"on {_fmt_date(rng, when, 3)}"
        where_text = "" if "location" in absent else f" in {where}"
        doc = (
            f"From: {first} {last} <{sender}>\nTo: {to_first} {to_last}\nCc: {cc_first} {cc_last} <{cc_email}>\n"
            f"Subject: {subject}\n\nHi {to_first},\nFollowing up on our call on {prev}: let's meet {when_text}"
            f"{where_text}. {cc_first} will send the agenda beforehand.\nThanks,\n{first}"
        )
    return doc, gold


def _ticket(rng: random.Random, difficulty: int) -> Doc:
    ticket = rng.choice([f"TCK-{rng.randint(10000, 99999)}", f"SR-{rng.randint(100000, 999999)}"])
    customer, product, severity = _company(rng), rng.choice(PRODUCTS), rng.choice(SEVERITIES)
    opened, issue = _day(rng), rng.choice(ISSUES)
    absent = _absent(rng, difficulty, ["severity", "product"])
    gold: dict[str, Gold] = {
        "ticket_id": ticket,
        "customer": customer,
        "product": product,
        "severity": severity,
        "opened_date": opened.isoformat(),
    }
    if difficulty == 1:
        doc = (
            f"Ticket ID: {ticket}\nCustomer: {customer}\nProduct: {product}\nSeverity: {severity}\n"
            f"Opened: {opened}\nIssue: {product} {issue}."
        )
    elif difficulty == 2:
        d = _fmt_date(rng, opened, 2)
        doc = rng.choice(
            [
                f"Ticket {ticket} was opened on {d} on behalf of {customer}. They report that {product} {issue}. "
                f"Support rated this as {severity} severity.",
                f"New case for {customer} ({ticket}), logged {d}: {product} {issue}. "
                f"Severity: {severity.capitalize()}. Assigned to second-level support.",
            ]
        )
    else:
        for f in absent:
            gold[f] = None
        prev_ticket = f"{ticket.split('-')[0]}-{rng.randint(10000, 99999)}"
        prev_day = _fmt_date(rng, opened - timedelta(days=rng.randint(10, 90)), 3)
        what = "the application" if "product" in absent else product
        sev = "" if "severity" in absent else f" We classify this as {severity} severity."
        doc = (
            f"Case {ticket}, opened {_fmt_date(rng, opened, 3)}.\n{customer} writes that {what} {issue}. "
            f"They had a similar problem in {prev_ticket} (opened {prev_day}, since resolved).{sev} "
            f"Their IT contact asked for an update within two days."
        )
    return doc, gold


def _contact(rng: random.Random, difficulty: int) -> Doc:
    first, last = _person(rng)
    company, title = _company(rng), rng.choice(TITLES)
    domain = _domain(rng, company)
    email, phone = _email(rng, first, last, domain), _phone(rng)
    absent = _absent(rng, difficulty, ["title", "phone", "email"])
    gold: dict[str, Gold] = {
        "name": f"{first} {last}",
        "company": company,
        "title": title,
        "email": email,
        "phone": phone,
    }
    if difficulty == 1:
        if rng.random() < 0.5:
            doc = f"Name: {first} {last}\nCompany: {company}\nTitle: {title}\nEmail: {email}\nPhone: {phone}"
        else:
            doc = f"{first} {last}\n{title}, {company}\n{email} | {phone}"
    elif difficulty == 2:
        doc = rng.choice(
            [
                f"Met {first} {last} at {rng.choice(EVENTS)}. {first} works as {title} at {company} and is interested "
                f"in a demo. Reach {first} at {email} or call {phone}.",
                f"Note for CRM: new lead from {company}. Contact person is {first} {last}, {title}. Best reached by "
                f"phone on {phone}; email {email} also works.",
            ]
        )
    else:
        for f in absent:
            gold[f] = None
        a_first, a_last = _person(rng)
        lines = [f"{first} {last}"]
        if "title" not in absent:
            lines.append(title)
        lines.append(company)
        own = [x for f, x in (("email", email), ("phone", phone)) if f not in absent]
        if own:
            lines.append(" | ".join(own))
        assistant = _email(rng, a_first, a_last, domain)
        lines.append(f"For scheduling, please contact my assistant {a_first} {a_last} at {assistant} or {_phone(rng)}.")
        doc = "Kind regards,\n" + "\n".join(lines)
    return doc, gold


def _purchase_order(rng: random.Random, difficulty: int) -> Doc:
    buyer, supplier = _company(rng), _company(rng)
    ordered = _day(rng)
    delivery = ordered + timedelta(days=rng.randint(7, 40))
    number = rng.choice([f"PO-{rng.randint(10000, 99999)}", f"PO{ordered.year}{rng.randint(1, 9999):04d}"])
    count, goods = rng.randint(1, 60), rng.choice(GOODS)
    total = _amount(rng, 50, 40000)
    currency = rng.choice(CURRENCIES)
    absent = _absent(rng, difficulty, ["delivery_date", "item_count"])
    gold: dict[str, Gold] = {
        "po_number": number,
        "buyer": buyer,
        "supplier": supplier,
        "item_count": count,
        "total": total,
        "delivery_date": delivery.isoformat(),
    }
    if difficulty == 1:
        doc = (
            f"PURCHASE ORDER {number}\nBuyer: {buyer}\nSupplier: {supplier}\nItems: {count} ({goods})\n"
            f"Total: {total:,.2f} {currency}\nDelivery date: {delivery}"
        )
    elif difficulty == 2:
        money, d = _fmt_money(rng, total, currency), _fmt_date(rng, delivery, 2)
        n = _count_text(rng, count, 2)
        doc = rng.choice(
            [
                f"{buyer} places purchase order {number} with {supplier} for {n} items ({goods}), total value {money}. "
                f"Requested delivery: {d}.",
                f"Please confirm order {number}. We ({buyer}) would like {n} items of {goods} from {supplier} "
                f"delivered on {d}. Agreed total: {money}.",
            ]
        )
    else:
        for f in absent:
            gold[f] = None
        money = _fmt_money(rng, total, currency)
        prev = _fmt_money(rng, _amount(rng, 50, 40000), currency)
        qty = "the items" if "item_count" in absent else f"{_count_text(rng, count, 3)} items"
        deliver = (
            "Delivery date to be confirmed."
            if "delivery_date" in absent
            else f"Deliver by {_fmt_date(rng, delivery, 3)}."
        )
        doc = (
            f"Order date: {_fmt_date(rng, ordered, 3)}\nPurchase order {number} from {buyer} to {supplier}.\n"
            f"Please ship {qty} ({goods}) listed in the attachment; order total {money}. "
            f"Our last order came to {prev}. {deliver}"
        )
    return doc, gold


MAKERS: dict[str, Callable[[random.Random, int], Doc]] = {
    "invoice": _invoice,
    "email": _email_doc,
    "support_ticket": _ticket,
    "contact_card": _contact,
    "purchase_order": _purchase_order,
}


def generate(seed: int = DEFAULT_SEED, count: int = DEFAULT_COUNT) -> list[ExtractionItem]:
    """Deterministic items: kinds cycle, difficulties cycle in step, so the mix is even for any ``count``."""
    rng = random.Random(seed)
    items: list[ExtractionItem] = []
    for i in range(count):
        kind, difficulty = KINDS[i % len(KINDS)], 1 + (i // len(KINDS)) % 3
        document, gold = MAKERS[kind](rng, difficulty)
        items.append(
            ExtractionItem(
                id=f"extraction-{i:04d}",
                category=kind,
                difficulty=difficulty,
                document=document,
                fields=SCHEMAS[kind],
                gold=dict(sorted(gold.items())),
            )
        )
    return items


def write_dataset(out_dir: Path, seed: int = DEFAULT_SEED, count: int = DEFAULT_COUNT) -> Path:
    """Write ``items.jsonl`` and its ``manifest.json`` into ``out_dir``; returns the manifest path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_jsonl(out_dir / ITEMS_FILE, generate(seed, count))
    return write_manifest(
        out_dir,
        suite=SUITE_ID,
        version=SUITE_VERSION,
        generator=GENERATOR,
        generator_version=GENERATOR_VERSION,
        seed=seed,
        count=count,
        files=[ITEMS_FILE],
    )


def default_data_dir() -> Path:
    """``$LALO_EVAL_SUITES/extraction/v1`` when set, else the folder shipped with lalo-bench."""
    return datafiles.eval_suites() / SUITE_ID / f"v{SUITE_VERSION}"


def load_items(data_dir: Path) -> list[ExtractionItem]:
    """Items from a verified folder (raises :class:`LaloError` if the files do not match the manifest)."""
    verify(data_dir)
    text = (data_dir / ITEMS_FILE).read_text(encoding="utf-8")
    return [ExtractionItem.model_validate_json(line) for line in text.splitlines() if line.strip()]


# ---------------------------------------------------------------- ordering


def interleave(items: list[ExtractionItem]) -> list[ExtractionItem]:
    """Round-robin over (category, difficulty) groups, ordered diagonally so each round also cycles difficulties."""
    cats = sorted({i.category for i in items}, key=lambda c: (KINDS.index(c) if c in KINDS else len(KINDS), c))
    diffs = sorted({i.difficulty for i in items})
    groups: dict[tuple[str, int], list[ExtractionItem]] = {}
    for it in items:
        groups.setdefault((it.category, it.difficulty), []).append(it)
    # Round r pairs category c with difficulty (c + r) mod len(diffs): every (c, d) once, each round mixes both.
    order = [(c, diffs[(ci + r) % len(diffs)]) for r in range(len(diffs)) for ci, c in enumerate(cats)]
    keys = [k for k in order if k in groups]
    out: list[ExtractionItem] = []
    for j in range(max((len(g) for g in groups.values()), default=0)):
        out.extend(groups[k][j] for k in keys if j < len(groups[k]))
    return out


# ---------------------------------------------------------------- prompt

SYSTEM_PROMPT = (
    "You extract data from documents. Reply with only a JSON object, no explanation and no code "
    "fences. Use null for fields the document does not state."
)
TYPE_HINTS = {"string": "string", "number": "number", "integer": "integer", "date": "date YYYY-MM-DD"}


def _field_line(name: str, spec: FieldSpec) -> str:
    kind = f"one of {', '.join(spec.enum or [])}" if spec.type == "enum" else TYPE_HINTS[spec.type]
    return f"- {name} ({kind}): {spec.description}"


def build_request(item: ExtractionItem, max_tokens: int) -> GenerationRequest:
    fields = "\n".join(_field_line(n, s) for n, s in item.fields.items())
    user = (
        f'Extract these fields as a JSON object (use null if absent):\n{fields}\n\nDocument:\n"""\n{item.document}\n"""'
    )
    return GenerationRequest(
        messages=[ChatMessage(role="system", content=SYSTEM_PROMPT), ChatMessage(role="user", content=user)],
        max_tokens=max_tokens,
    )


# ---------------------------------------------------------------- scoring


class InvalidReply(ValueError):
    """The reply holds no usable JSON object."""


FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)


def _first_balanced(text: str) -> str | None:
    """The first ``{...}`` span with balanced braces, ignoring braces inside JSON strings."""
    start = text.find("{")
    if start < 0:
        return None
    depth, in_str, escaped = 0, False, False
    for i in range(start, len(text)):
        ch = text[i]
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start : i + 1]
    return None


def _as_object(candidate: str) -> dict[str, Any]:
    try:
        value = json.loads(candidate)
    except json.JSONDecodeError as exc:
        raise InvalidReply(f"{exc.msg} at char {exc.pos}") from None
    if not isinstance(value, dict):
        raise InvalidReply(f"expected an object, got {type(value).__name__}")
    return value


def parse_reply(text: str) -> dict[str, Any]:
    """The JSON object in a reply: the whole text, a fenced block, else the first balanced ``{...}``."""
    fence = FENCE.search(text)
    for candidate in (text.strip(), fence.group(1).strip() if fence else ""):
        try:
            value = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if not isinstance(value, dict):
            raise InvalidReply(f"expected an object, got {type(value).__name__}")
        return value
    span = _first_balanced(fence.group(1) if fence else text)
    if span is None:
        raise InvalidReply("no complete JSON object in reply")
    return _as_object(span)


EMPTY = {"", "n/a", "na", "null", "none"}
EDGE = string.punctuation + string.whitespace
MONEY = re.compile(r"^(?:[A-Za-z]{3}\s*)?[$€£]?\s*(-?[\d,]*\.?\d+)\s*(?:[A-Za-z]{3})?$")
DATE_FORMATS = ["%Y-%m-%d", "%Y/%m/%d", "%m/%d/%Y", "%B %d %Y", "%b %d %Y", "%d %B %Y", "%d %b %Y", "%Y %B %d"]
WEEKDAY_RE = re.compile(r"^(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?,?\s+", re.IGNORECASE)
ORDINAL_RE = re.compile(r"(\d)(?:st|nd|rd|th)\b", re.IGNORECASE)


def is_empty(value: object) -> bool:
    return value is None or (isinstance(value, str) and value.strip().casefold() in EMPTY)


def norm_text(value: object) -> str:
    """Casefolded, whitespace collapsed, surrounding punctuation stripped."""
    return " ".join(str(value).casefold().split()).strip(EDGE)


def parse_number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        m = MONEY.match(value.strip())
        if m:
            return float(m.group(1).replace(",", ""))
    return None


def parse_integer(value: object) -> int | None:
    number = parse_number(value)
    return int(number) if number is not None and number.is_integer() else None


def parse_date(value: object) -> date | None:
    """ISO and common written formats; all-numeric slashes are read as US month/day/year."""
    if not isinstance(value, str):
        return None
    s = value.strip()
    if re.match(r"^\d{4}-\d{2}-\d{2}T", s):
        s = s[:10]
    s = ORDINAL_RE.sub(r"\1", WEEKDAY_RE.sub("", s))
    s = " ".join(s.replace(",", " ").replace(".", " ").split())
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(s, fmt).date()
        except ValueError:
            continue
    return None


def values_match(spec: FieldSpec, gold: Gold, predicted: object) -> bool:
    """Whether a prediction equals the gold value of one field; null gold matches any empty value."""
    if gold is None or is_empty(gold):
        return is_empty(predicted)
    if is_empty(predicted):
        return False
    if spec.type == "number":
        g, p = parse_number(gold), parse_number(predicted)
        return g is not None and p is not None and abs(g - p) <= 0.01 + 1e-9
    if spec.type == "integer":
        g_int, p_int = parse_integer(gold), parse_integer(predicted)
        return g_int is not None and g_int == p_int
    if spec.type == "date":
        g_date, p_date = parse_date(gold), parse_date(predicted)
        return g_date is not None and g_date == p_date
    if isinstance(predicted, dict | list):
        return False
    return norm_text(gold) == norm_text(predicted)


class FieldCounts(BaseModel):
    """Per-item tallies behind precision and recall."""

    true_positives: int
    predictions: int
    gold_values: int
    exact: bool

    @property
    def precision(self) -> float:
        if self.predictions:
            return self.true_positives / self.predictions
        return 1.0 if self.gold_values == 0 else 0.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.gold_values if self.gold_values else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def count_fields(item: ExtractionItem, reply: dict[str, Any]) -> FieldCounts:
    """Keys outside the schema count as false-positive predictions and break exact match."""
    extra = [k for k in reply if k not in item.fields]
    tp = predictions = gold_values = 0
    exact = not extra
    for name, spec in item.fields.items():
        gold, predicted = item.gold.get(name), reply.get(name)
        match = values_match(spec, gold, predicted)
        exact = exact and match
        if gold is not None:
            gold_values += 1
        if not is_empty(predicted):
            predictions += 1
            tp += int(match and gold is not None)
    return FieldCounts(true_positives=tp, predictions=predictions + len(extra), gold_values=gold_values, exact=exact)


def score_reply(item: ExtractionItem, output: str) -> ItemScore:
    """F1 over fields; an unparseable reply (or a non-object) scores 0 with ``error`` set."""
    try:
        reply = parse_reply(output)
    except InvalidReply as exc:
        zeros = {"precision": 0.0, "recall": 0.0, "f1": 0.0, "exact": 0.0}
        return ItemScore(score=0.0, correct=False, details=zeros, error=f"invalid JSON: {exc}")
    c = count_fields(item, reply)
    details = {"precision": c.precision, "recall": c.recall, "f1": c.f1, "exact": float(c.exact)}
    return ItemScore(score=c.f1, correct=c.exact, details=details)


def aggregate(scores: list[ItemScore]) -> dict[str, float]:
    """Macro means of precision, recall, f1 and exact, plus the share of replies that were not valid JSON."""
    keys = ("precision", "recall", "f1", "exact")
    if not scores:
        return {**dict.fromkeys(keys, 0.0), "invalid_json_rate": 0.0}
    n = len(scores)
    out = {k: sum(s.details.get(k, 0.0) for s in scores) / n for k in keys}
    out["invalid_json_rate"] = sum(s.error is not None for s in scores) / n
    return out


# ---------------------------------------------------------------- suite


def _narrow(item: SuiteItem) -> ExtractionItem:
    if not isinstance(item, ExtractionItem):
        raise TypeError(f"extraction suite got a {type(item).__name__}, not an ExtractionItem")
    return item


class ExtractionSuite:
    """The extraction suite over the pinned data folder (verified against its manifest on load)."""

    id: str = SUITE_ID
    version: str = SUITE_VERSION
    task_type: TaskType = "extraction"

    def __init__(self, data_dir: Path | None = None) -> None:
        self.data_dir = data_dir or default_data_dir()
        if not self.data_dir.is_dir():
            raise LaloError(
                f"{self.data_dir}: extraction data folder not found; regenerate with "
                f"`lalo-bench suites generate {SUITE_ID}` or set {ENV_ROOT}"
            )
        self._items = interleave(load_items(self.data_dir))

    def items(self, limit: int | None = None) -> list[SuiteItem]:
        chosen = self._items if limit is None else self._items[:limit]
        return list(chosen)

    def request(self, item: SuiteItem, max_tokens: int) -> GenerationRequest:
        return build_request(_narrow(item), max_tokens)

    def score(self, item: SuiteItem, output: str) -> ItemScore:
        return score_reply(_narrow(item), output)

    def summarize(self, records: Sequence[ItemRecord]) -> dict[str, float]:
        return mean_details(records)
