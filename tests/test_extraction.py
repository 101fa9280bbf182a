"""The extraction suite: seeded data, pinned files, prompt shape and the field-level scorer."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import date
from pathlib import Path

import pytest

from lalo_bench.errors import LaloError
from lalo_bench.suites.extraction import (
    KINDS,
    MONTHS,
    NUMBER_WORDS,
    ExtractionItem,
    ExtractionSuite,
    FieldSpec,
    aggregate,
    default_data_dir,
    generate,
    interleave,
    json_schema,
    parse_date,
    score_reply,
    write_dataset,
)
from lalo_bench.suites.manifest import Manifest, verify

DATA_DIR = Path(__file__).resolve().parents[1] / "eval_suites" / "extraction" / "v1"


@pytest.fixture(scope="module")
def items() -> list[ExtractionItem]:
    return generate()


def _date_renderings(iso: str) -> list[str]:
    d = date.fromisoformat(iso)
    month = MONTHS[d.month - 1]
    return [
        iso,
        f"{month} {d.day}, {d.year}",
        f"{d.day} {month[:3]} {d.year}",
        f"{d.day} {month} {d.year}",
        f"{d.month:02d}/{d.day:02d}/{d.year}",
    ]


def _invoice() -> ExtractionItem:
    """A hand-made item so scorer expectations can be computed by hand."""
    return ExtractionItem(
        id="t-1",
        category="invoice",
        difficulty=3,
        document="(unused)",
        fields={
            "invoice_number": FieldSpec(type="string", description="id"),
            "vendor": FieldSpec(type="string", description="vendor"),
            "date": FieldSpec(type="date", description="issued"),
            "total": FieldSpec(type="number", description="total"),
            "currency": FieldSpec(type="enum", description="cur", enum=["USD", "EUR"]),
            "due_date": FieldSpec(type="date", description="due"),
        },
        gold={
            "invoice_number": "INV-7",
            "vendor": "Northwind Logistics Ltd",
            "date": "2025-03-03",
            "total": 1234.5,
            "currency": "USD",
            "due_date": None,
        },
    )


# ---------------------------------------------------------------- data


def test_generation_is_deterministic(items: list[ExtractionItem]) -> None:
    again = generate()
    assert [i.model_dump() for i in again] == [i.model_dump() for i in items]
    assert generate(seed=99)[0].document != items[0].document


def test_regenerated_file_matches_shipped_manifest(tmp_path: Path) -> None:
    manifest = Manifest.model_validate_json((DATA_DIR / "manifest.json").read_bytes())
    assert (manifest.suite, manifest.version, manifest.seed, manifest.count) == ("extraction", "1", 1234, 240)
    assert manifest.generator == "lalo_bench.suites.extraction"
    write_dataset(tmp_path, seed=manifest.seed, count=manifest.count)
    produced = (tmp_path / "items.jsonl").read_bytes()
    assert hashlib.sha256(produced).hexdigest() == manifest.files["items.jsonl"].sha256
    assert produced == (DATA_DIR / "items.jsonl").read_bytes()
    assert (tmp_path / "manifest.json").read_bytes() == (DATA_DIR / "manifest.json").read_bytes()


def test_shipped_items_load_equal_to_generated(items: list[ExtractionItem]) -> None:
    suite = ExtractionSuite(DATA_DIR)
    loaded = {i.id: i for i in suite.items()}
    assert len(loaded) == len(items)
    assert all(loaded[i.id] == i for i in items)
    assert suite.id == "extraction" and suite.version == "1"


def test_size_kinds_and_difficulties(items: list[ExtractionItem]) -> None:
    assert len(items) >= 200
    assert (
        {i.category for i in items}
        == set(KINDS)
        == {"invoice", "email", "support_ticket", "contact_card", "purchase_order"}
    )
    assert {i.difficulty for i in items} == {1, 2, 3}
    for i in items:
        assert 4 <= len(i.fields) <= 7
        assert set(i.gold) == set(i.fields)
        assert len(i.document.split()) <= 120


def test_nulls_only_at_difficulty_three(items: list[ExtractionItem]) -> None:
    with_null = [i for i in items if any(v is None for v in i.gold.values())]
    assert with_null and all(i.difficulty == 3 for i in with_null)
    assert {i.category for i in with_null} == set(KINDS)


def test_difficulty_one_gold_appears_in_document(items: list[ExtractionItem]) -> None:
    for item in (i for i in items if i.difficulty == 1):
        for name, value in item.gold.items():
            spec, doc = item.fields[name], item.document
            assert value is not None, (item.id, name)
            if spec.type == "number":
                assert f"{value:,.2f}" in doc, (item.id, name)
            elif spec.type in ("integer", "date", "string"):
                assert str(value) in doc, (item.id, name)
            else:
                assert str(value).casefold() in doc.casefold(), (item.id, name)


def test_all_gold_is_derivable_from_document(items: list[ExtractionItem]) -> None:
    symbols = {"USD": "$", "EUR": "€", "GBP": "£"}
    for item in items:
        doc = item.document
        for name, value in item.gold.items():
            if value is None:
                continue
            kind = item.fields[name].type
            if kind == "string":
                assert str(value) in doc, (item.id, name)
            elif kind == "number":
                assert f"{value:,.2f}" in doc, (item.id, name)
            elif kind == "integer":
                n = int(value)
                spelled = [f"{n} items", f"Items: {n}", *([f"{NUMBER_WORDS[n]} items"] if n <= 12 else [])]
                assert any(t in doc for t in spelled), (item.id, name)
            elif kind == "date":
                assert any(r in doc for r in _date_renderings(str(value))), (item.id, name)
            elif name == "currency":
                assert str(value) in doc or symbols.get(str(value), "\0") in doc, (item.id, name)
            else:
                assert str(value).casefold() in doc.casefold(), (item.id, name)


def test_every_prefix_mixes_kinds_and_difficulties(items: list[ExtractionItem]) -> None:
    suite = ExtractionSuite(DATA_DIR)
    head = suite.items(limit=10)
    assert len(head) == 10
    assert len({i.category for i in head}) >= 4
    assert len({i.difficulty for i in head}) == 3
    assert len(suite.items(limit=20)) == 20
    # Order must not depend on how the file happens to be ordered.
    by_kind = sorted(items, key=lambda i: (i.category, i.difficulty))
    assert len({i.category for i in interleave(by_kind)[:5]}) == 5
    assert {i.difficulty for i in interleave(by_kind)[:3]} == {1, 2, 3}


def test_default_data_dir_env_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LALO_EVAL_SUITES", raising=False)
    assert default_data_dir() == DATA_DIR
    monkeypatch.setenv("LALO_EVAL_SUITES", str(tmp_path))
    assert default_data_dir() == tmp_path / "extraction" / "v1"


# ---------------------------------------------------------------- manifest


def test_verify_refuses_tampered_copy(tmp_path: Path) -> None:
    copy = tmp_path / "extraction" / "v1"
    shutil.copytree(DATA_DIR, copy)
    verify(copy)
    data = bytearray((copy / "items.jsonl").read_bytes())
    data[100] = ord("X") if data[100] != ord("X") else ord("Y")
    (copy / "items.jsonl").write_bytes(bytes(data))
    with pytest.raises(LaloError, match=r"items\.jsonl: sha256 mismatch with manifest") as err:
        ExtractionSuite(copy)
    assert "lalo-bench suites generate extraction" in str(err.value)
    assert "\n" not in str(err.value)


def test_verify_refuses_missing_file(tmp_path: Path) -> None:
    copy = tmp_path / "v1"
    shutil.copytree(DATA_DIR, copy)
    (copy / "items.jsonl").unlink()
    with pytest.raises(LaloError, match=r"items\.jsonl: missing"):
        verify(copy)
    (copy / "manifest.json").unlink()
    with pytest.raises(LaloError, match=r"manifest\.json: manifest missing"):
        verify(copy)


# ---------------------------------------------------------------- prompt


def test_request_lists_fields_and_document(items: list[ExtractionItem]) -> None:
    suite = ExtractionSuite(DATA_DIR)
    ticket = next(i for i in suite.items() if i.category == "support_ticket")
    assert isinstance(ticket, ExtractionItem)
    req = suite.request(ticket, max_tokens=200)
    system, user = req.messages
    assert system.role == "system" and "only a JSON object" in system.content
    assert user.role == "user" and ticket.document in user.content and "use null if absent" in user.content
    assert "one of low, medium, high, critical" in user.content
    assert all(f"- {name} (" in user.content for name in ticket.fields)
    assert req.max_tokens == 200 and req.temperature == 0.0
    longest = max(items, key=lambda i: len(i.document))
    assert len(suite.request(longest, 200).messages[1].content) < 2000  # well inside a 2048-token context


def test_json_schema_shape() -> None:
    schema = json_schema(_invoice())
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert set(schema["required"]) == set(_invoice().fields)
    assert schema["properties"]["total"]["type"] == ["number", "null"]
    assert schema["properties"]["currency"]["enum"] == ["USD", "EUR", None]
    assert schema["properties"]["date"]["format"] == "date"


# ---------------------------------------------------------------- scorer


def _perfect(item: ExtractionItem) -> str:
    return json.dumps(item.gold)


def test_perfect_reply_on_every_item(items: list[ExtractionItem]) -> None:
    for item in items:
        s = score_reply(item, _perfect(item))
        assert (s.score, s.correct, s.error) == (1.0, True, None), item.id
        assert s.details == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "exact": 1.0}


def test_fenced_and_chatty_replies_parse() -> None:
    item = _invoice()
    fenced = f"Here you go:\n```json\n{_perfect(item)}\n```\nAnything else?"
    chatty = f"Sure! The extracted data is {_perfect(item)} — hope it helps."
    for reply in (fenced, chatty, "```\n" + _perfect(item) + "\n```"):
        s = score_reply(item, reply)
        assert (s.score, s.correct, s.error) == (1.0, True, None)


def test_braces_inside_strings_do_not_break_parsing() -> None:
    item = _invoice()
    reply = 'Result: {"invoice_number": "INV-7", "vendor": "Northwind Logistics Ltd {EU}"} done'
    s = score_reply(item, reply)
    assert s.error is None
    assert s.details["precision"] == pytest.approx(0.5)


def test_partly_wrong_reply_hand_computed() -> None:
    item = _invoice()
    reply = json.dumps(
        {
            "invoice_number": "INV-7",  # TP
            "vendor": "Southwind Ltd",  # wrong -> FP, gold missed
            "date": "2025-03-03",  # TP
            "total": 999.0,  # wrong -> FP
            "currency": None,  # gold USD missed, not a prediction
            "due_date": None,  # null gold, null prediction: fine
        }
    )
    s = score_reply(item, reply)
    # predictions = 4 (invoice_number, vendor, date, total); TP = 2; non-null gold = 5
    p, r = 2 / 4, 2 / 5
    assert s.details["precision"] == pytest.approx(p)
    assert s.details["recall"] == pytest.approx(r)
    assert s.details["f1"] == pytest.approx(2 * p * r / (p + r))
    assert s.score == pytest.approx(2 * p * r / (p + r))
    assert s.details["exact"] == 0.0 and s.correct is False and s.error is None


@pytest.mark.parametrize(
    "reply",
    ["Sure! Here it is: {name: Bob", "I could not find anything.", "", '{"vendor": "x",}', "{name: 'Bob'}"],
)
def test_invalid_json_scores_zero(reply: str) -> None:
    s = score_reply(_invoice(), reply)
    assert s.score == 0.0 and s.correct is False
    assert s.error is not None and s.error.startswith("invalid JSON: ")
    assert s.details == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "exact": 0.0}


@pytest.mark.parametrize("reply", ['[{"invoice_number": "INV-7"}]', '```json\n[{"vendor": "x"}]\n```', '"INV-7"'])
def test_non_object_json_is_invalid(reply: str) -> None:
    s = score_reply(_invoice(), reply)
    assert s.score == 0.0 and s.error is not None and "expected an object" in s.error


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("date", "March 3, 2025"),
        ("date", "03/03/2025"),
        ("date", "3 Mar 2025"),
        ("date", "Monday, March 3rd, 2025"),
        ("date", "2025-03-03T00:00:00"),
        ("total", "$1,234.50"),
        ("total", "1234.5 USD"),
        ("total", 1234.509),
        ("total", "1,234.50"),
        ("vendor", "  northwind   LOGISTICS ltd. "),
        ("currency", "usd"),
        ("invoice_number", '"inv-7"'),
    ],
)
def test_normalized_values_match(field: str, value: object) -> None:
    item = _invoice()
    reply = {**item.gold, field: value}
    s = score_reply(item, json.dumps(reply))
    assert s.correct, (field, value, s.details)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("date", "2025-03-04"),
        ("date", "04/03/2025"),
        ("total", 1234.52),
        ("total", "about a thousand"),
        ("vendor", "Northwind"),
        ("currency", "EUR"),
        ("total", True),
    ],
)
def test_different_values_do_not_match(field: str, value: object) -> None:
    item = _invoice()
    s = score_reply(item, json.dumps({**item.gold, field: value}))
    assert not s.correct and s.details["precision"] == pytest.approx(4 / 5)


def test_integer_fields_are_exact() -> None:
    item = ExtractionItem(
        id="t-2",
        category="purchase_order",
        difficulty=1,
        document="",
        fields={"item_count": FieldSpec(type="integer", description="n")},
        gold={"item_count": 12},
    )
    assert score_reply(item, '{"item_count": 12}').correct
    assert score_reply(item, '{"item_count": "12"}').correct
    assert not score_reply(item, '{"item_count": 12.5}').correct
    assert not score_reply(item, '{"item_count": 13}').correct


def test_extra_key_lowers_precision_and_breaks_exact() -> None:
    item = _invoice()
    s = score_reply(item, json.dumps({**item.gold, "notes": "paid"}))
    assert s.details["precision"] == pytest.approx(5 / 6)
    assert s.details["recall"] == 1.0
    assert s.details["exact"] == 0.0 and not s.correct


@pytest.mark.parametrize("empty", [None, "", "N/A", "n/a", "  "])
def test_null_gold_matches_missing_null_or_empty(empty: object) -> None:
    item = _invoice()
    gold = {k: v for k, v in item.gold.items() if k != "due_date"}
    assert score_reply(item, json.dumps(gold)).correct  # key missing
    s = score_reply(item, json.dumps({**gold, "due_date": empty}))
    assert s.correct and s.score == 1.0


def test_null_gold_predicted_as_value_is_false_positive() -> None:
    item = _invoice()
    s = score_reply(item, json.dumps({**item.gold, "due_date": "2025-04-02"}))
    assert s.details["precision"] == pytest.approx(5 / 6)
    assert s.details["recall"] == 1.0 and not s.correct


def test_all_null_gold_edge_cases() -> None:
    item = ExtractionItem(
        id="t-3",
        category="contact_card",
        difficulty=3,
        document="",
        fields={"phone": FieldSpec(type="string", description="p")},
        gold={"phone": None},
    )
    s = score_reply(item, "{}")
    assert s.details == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "exact": 1.0}
    s = score_reply(item, '{"phone": "+1 555"}')
    assert s.details["precision"] == 0.0 and s.details["recall"] == 1.0 and s.score == 0.0


def test_empty_reply_object_on_nonnull_gold() -> None:
    s = score_reply(_invoice(), "{}")
    assert s.error is None and s.score == 0.0
    assert s.details["precision"] == 0.0 and s.details["recall"] == 0.0


def test_parse_date_formats() -> None:
    d = date(2025, 3, 3)
    for text in (
        "2025-03-03",
        "March 3, 2025",
        "Mar 3, 2025",
        "3 Mar 2025",
        "3 March 2025",
        "03/03/2025",
        "3/3/2025",
        "2025/03/03",
        "Mon, 3 Mar 2025",
    ):
        assert parse_date(text) == d, text
    assert parse_date("next Tuesday") is None
    assert parse_date(20250303) is None


def test_aggregate_means_and_invalid_rate() -> None:
    item = _invoice()
    scores = [score_reply(item, _perfect(item)), score_reply(item, "no json here")]
    agg = aggregate(scores)
    assert agg == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "exact": 0.5, "invalid_json_rate": 0.5}
    assert aggregate([])["invalid_json_rate"] == 0.0
