"""Pricing: the cost formula (USD per token) and how a run's rates are resolved."""

from __future__ import annotations

from typing import Any

import pytest
from agent_loop_support import raises_code

from agent_sessions import Run
from agent_sessions.domain.checks import MAX_COST_USD
from agent_sessions.domain.pricing import (
    DEFAULT_PRICING,
    ModelRates,
    PricingTable,
    calculate_cost,
    default_pricing_table,
    reported_cost,
    run_cost,
)
from agent_sessions.domain.token_usage import token_count

TABLE = {
    "acme": {
        "default": {"input": 1.0, "output": 2.0},
        "models": {
            "rocket": {"input": 10.0, "output": 20.0},
            "rocket-mini": {"input": 3.0, "output": 4.0},
            "rocket-mini-2024": {"input": 5.0, "output": 6.0},
        },
    },
    "legacy": {"input": 0.5, "output": 0.25},
}
ONE_EACH = {"input_tokens": 1, "output_tokens": 1}


def test_the_formula_prices_every_token_kind() -> None:
    rates = ModelRates(input=1.0, output=2.0, cache_read=0.1, cache_creation=1.25)
    usage = {
        "input_tokens": 100,
        "output_tokens": 10,
        "cache_read_tokens": 1000,
        "cache_creation_tokens": 4,
    }
    assert rates.cost(usage) == pytest.approx(100 * 1.0 + 10 * 2.0 + 1000 * 0.1 + 4 * 1.25)


def test_cache_rates_default_to_the_input_rate() -> None:
    usage = {"cache_read_tokens": 3, "cache_creation_tokens": 4}
    assert ModelRates(input=2.0, output=9.0).cost(usage) == pytest.approx(14.0)


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("rocket", 30.0),  # exact
        ("rocket-mini", 7.0),  # exact beats the shorter prefix
        ("rocket-mini-2024-05-01", 11.0),  # longest prefix
        ("rocket-9", 30.0),  # prefix
        ("bicycle", 3.0),  # provider default
        (None, 3.0),  # no model: provider default
    ],
)
def test_rate_resolution(model: str | None, expected: float) -> None:
    assert calculate_cost(ONE_EACH, "acme", model, TABLE) == pytest.approx(expected)


@pytest.mark.parametrize("provider", [None, "", "unknown-provider"])
def test_no_rate_means_no_cost(provider: str | None) -> None:
    assert calculate_cost(ONE_EACH, provider, "rocket", TABLE) is None


def test_a_provider_without_default_has_no_cost_for_unknown_models() -> None:
    table = {"acme": {"models": {"rocket": {"input": 1.0, "output": 1.0}}}}
    assert calculate_cost(ONE_EACH, "acme", "bicycle", table) is None


def test_flat_legacy_tables_become_the_provider_default() -> None:
    table = PricingTable.coerce(TABLE)
    assert table.providers["legacy"].default == ModelRates(input=0.5, output=0.25)
    assert dict(table.providers["legacy"].models) == {}
    assert calculate_cost(ONE_EACH, "legacy", "anything", table) == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(7, 7), (7.9, 7), (-3, 0), (-0.5, 0), ("12", 0), (None, 0), (True, 0), (float("nan"), 0)],
)
def test_token_counts_are_non_negative_integers(value: Any, expected: int) -> None:
    assert token_count({"input_tokens": value}, "input_tokens") == expected


@pytest.mark.parametrize("value", [2**63, 10**19, 1e19, 10**400, float("inf")])
def test_token_counts_beyond_a_64_bit_integer_count_as_zero(value: Any) -> None:
    """Records refuse them; a foreign map that holds one prices it as 0 rather than
    overflowing."""
    assert token_count({"input_tokens": value}, "input_tokens") == 0
    assert token_count({"input_tokens": 2**63 - 1}, "input_tokens") == 2**63 - 1


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 10**400, -1, 0, "1.5", True, None])
def test_a_reported_cost_is_a_positive_finite_number(value: Any) -> None:
    assert reported_cost(value) is None
    assert reported_cost(0.25) == 0.25


def test_a_cost_no_run_may_record_is_unknown() -> None:
    """Beyond a float, or beyond ``MAX_COST_USD`` (what a record accepts): unknown."""
    table = {"acme": {"input": 1e300, "output": 1e300}}
    assert calculate_cost({"input_tokens": 2**63 - 1}, "acme", None, table) is None
    assert calculate_cost({"input_tokens": 2}, "acme", None, table) is None
    at_most = {"acme": {"input": MAX_COST_USD / 2, "output": 0.0}}
    assert calculate_cost({"input_tokens": 2}, "acme", None, at_most) == MAX_COST_USD


@pytest.mark.parametrize(
    "table",
    [
        {"acme": {"input": 10**400, "output": 1.0}},
        {"acme": {"input": float("nan"), "output": 1.0}},
        {"acme": {"input": "cheap", "output": 1.0}},
        {"acme": {"input": -1.0, "output": 1.0}},
        {"acme": {"output": 1.0}},
        {"acme": {"input": 1.0, "output": 1.0, "surcharge": 2.0}},
        {"acme": {"default": {"input": 1.0, "output": 1.0}, "extra": {}}},
        {"acme": {"models": ["rocket"]}},
        {"acme": "free"},
        ["acme"],
    ],
)
def test_malformed_tables_are_refused(table: Any) -> None:
    with raises_code("validation_error"):
        PricingTable.coerce(table)


def test_the_built_in_table_knows_the_reference_adapter_names() -> None:
    assert default_pricing_table() is DEFAULT_PRICING is PricingTable.coerce(None)
    usage = {"input_tokens": 1_000_000, "output_tokens": 1_000_000}
    sonnet = calculate_cost(usage, "claude", "claude-sonnet-4-20250514")
    assert sonnet == pytest.approx(18.0)
    assert calculate_cost(usage, "anthropic", "claude-sonnet-4-20250514") == sonnet
    assert calculate_cost(usage, "codex", "gpt-4o-mini") == pytest.approx(0.75)
    assert calculate_cost(usage, "amp", "whatever") is None


def test_run_cost_prefers_the_recorded_cost() -> None:
    run = Run.new(session_id="ses_1").add_token_usage(ONE_EACH).with_provider("acme")
    assert run_cost(run.with_cost(0.42), TABLE) == 0.42
    assert run_cost(run.with_provider("acme", {"model": "rocket"}), TABLE) == pytest.approx(30.0)
    assert run_cost(run.replace(provider=None), TABLE) is None
