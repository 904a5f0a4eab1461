"""What a run cost, from its token usage and a pricing table.

Pure, so that the session manager (at finalization) and cost queries (after the fact, for
runs stored without a cost) price tokens the same way.

Rates are US dollars **per token**. A table maps a provider name (``Run.provider``) to a
default rate and per-model rates; a model is priced by its exact name, else by the
longest model-name prefix in the table (``claude-sonnet-4`` prices
``claude-sonnet-4-20250514``), else by the provider default. An unknown provider, or no
provider at all, has no cost (``None``), which callers count as unmapped rather than as
free.

Each token kind has its own rate, as on the bill: input, output, cache reads and cache
writes. Anthropic bills a cache write by how long it is kept: five minutes (the
``cache_creation`` rate) or one hour (``cache_creation_1h``, twice the input rate). A
usage map says how many of its ``cache_creation_tokens`` were one-hour writes in
``cache_creation_1h_tokens`` (a part of them, not an addition: the other counts and the
views stay as they are); without it every cache write is priced at ``cache_creation``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .checks import FLOAT_MAX, MAX_COST_USD, is_within, refuse_unknown_keys
from .errors import ValidationError
from .run import Run
from .token_usage import token_count

_RATE_FIELDS = ("input", "output", "cache_read", "cache_creation", "cache_creation_1h")
#: The ``token_usage`` keys priced, and the rate each uses.
_TOKEN_KEYS = (
    ("input_tokens", "input"),
    ("output_tokens", "output"),
    ("cache_read_tokens", "cache_read"),
    ("cache_creation_tokens", "cache_creation"),
)
#: The part of ``cache_creation_tokens`` written to the one-hour cache.
CACHE_1H_KEY = "cache_creation_1h_tokens"


def _rate(value: Any, name: str) -> float:
    if not is_within(value, -FLOAT_MAX, FLOAT_MAX):
        raise ValidationError(f"rate {name} must be a number", details={"field": name})
    if value < 0:
        raise ValidationError(f"rate {name} must not be negative", details={"field": name})
    return float(value)


def _recordable(cost: float) -> float | None:
    """A cost a run cannot record (absurd rates times 64-bit counts: beyond
    ``MAX_COST_USD``, or too large for a float at all) is unknown, like an unpriced
    run, rather than a value that would be refused on save or break a sum of costs."""
    return float(cost) if is_within(cost, 0, MAX_COST_USD) else None


@dataclass(frozen=True, slots=True)
class ModelRates:
    """Dollars per token. Cache reads and cache writes default to the input rate; one-hour
    cache writes default to the (five-minute) cache write rate."""

    input: float
    output: float
    cache_read: float | None = None
    cache_creation: float | None = None
    cache_creation_1h: float | None = None

    def __post_init__(self) -> None:
        for name in _RATE_FIELDS:
            value = getattr(self, name)
            if value is not None or name in ("input", "output"):
                object.__setattr__(self, name, _rate(value, name))

    @classmethod
    def coerce(cls, value: ModelRates | Mapping[str, Any]) -> ModelRates:
        if isinstance(value, ModelRates):
            return value
        if not isinstance(value, Mapping):
            raise ValidationError("model rates must be a map of input/output rates")
        refuse_unknown_keys(value, _RATE_FIELDS, "rate(s)")
        return cls(
            input=value.get("input"),  # type: ignore[arg-type]  # checked in __post_init__
            output=value.get("output"),  # type: ignore[arg-type]
            cache_read=value.get("cache_read"),
            cache_creation=value.get("cache_creation"),
            cache_creation_1h=value.get("cache_creation_1h"),
        )

    def cost(self, token_usage: Mapping[str, Any]) -> float:
        write = self.input if self.cache_creation is None else self.cache_creation
        rates = {
            "input": self.input,
            "output": self.output,
            "cache_read": self.input if self.cache_read is None else self.cache_read,
            "cache_creation": write,
        }
        cost = sum(token_count(token_usage, key) * rates[rate] for key, rate in _TOKEN_KEYS)
        # One-hour writes are a part of the cache writes priced above: add what they
        # cost beyond the five-minute rate (never more of them than there are writes).
        long_writes = min(
            token_count(token_usage, CACHE_1H_KEY),
            token_count(token_usage, "cache_creation_tokens"),
        )
        if long_writes and self.cache_creation_1h is not None:
            cost += long_writes * (self.cache_creation_1h - write)
        return cost


@dataclass(frozen=True, slots=True)
class ProviderPricing:
    default: ModelRates | None = None
    models: Mapping[str, ModelRates] = field(default_factory=dict)

    @classmethod
    def coerce(cls, value: ProviderPricing | Mapping[str, Any]) -> ProviderPricing:
        """Either ``{default?, models?}`` or a flat legacy ``{input, output, ...}``,
        which becomes the provider default."""
        if isinstance(value, ProviderPricing):
            return value
        if not isinstance(value, Mapping):
            raise ValidationError("provider pricing must be a map")
        if "default" not in value and "models" not in value:
            return cls(default=ModelRates.coerce(value))
        refuse_unknown_keys(value, ("default", "models"), "provider pricing key(s)")
        default = value.get("default")
        models = value.get("models") or {}
        if not isinstance(models, Mapping):
            raise ValidationError("models must be a map of model name to rates")
        return cls(
            default=None if default is None else ModelRates.coerce(default),
            models={str(name): ModelRates.coerce(rates) for name, rates in models.items()},
        )

    def rates_for(self, model: str | None) -> ModelRates | None:
        if model:
            exact = self.models.get(model)
            if exact is not None:
                return exact
            prefixes = [name for name in self.models if model.startswith(name)]
            if prefixes:
                return self.models[max(prefixes, key=len)]
        return self.default


@dataclass(frozen=True, slots=True)
class PricingTable:
    providers: Mapping[str, ProviderPricing] = field(default_factory=dict)

    @classmethod
    def coerce(cls, value: PricingTable | Mapping[str, Any] | None) -> PricingTable:
        """A table, a mapping of provider name to pricing (flat legacy entries
        included), or ``None`` for the built-in :data:`DEFAULT_PRICING`."""
        if value is None:
            return DEFAULT_PRICING
        if isinstance(value, PricingTable):
            return value
        if not isinstance(value, Mapping):
            raise ValidationError("a pricing table must be a map of provider to pricing")
        return cls({str(name): ProviderPricing.coerce(p) for name, p in value.items()})

    def rates_for(self, provider: str | None, model: str | None) -> ModelRates | None:
        pricing = self.providers.get(provider) if provider else None
        return None if pricing is None else pricing.rates_for(model)

    def cost(
        self, token_usage: Mapping[str, Any], provider: str | None, model: str | None
    ) -> float | None:
        rates = self.rates_for(provider, model)
        return None if rates is None else _recordable(rates.cost(token_usage))


def calculate_cost(
    token_usage: Mapping[str, Any],
    provider: str | None,
    model: str | None,
    table: PricingTable | Mapping[str, Any] | None = None,
) -> float | None:
    """The cost of these tokens, or ``None`` when the table has no rate for them."""
    return PricingTable.coerce(table).cost(token_usage, provider, model)


def default_pricing_table() -> PricingTable:
    """The built-in table (:data:`DEFAULT_PRICING`)."""
    return DEFAULT_PRICING


def run_cost(run: Run, table: PricingTable | Mapping[str, Any] | None = None) -> float | None:
    """The run's recorded ``cost_usd``, else its cost computed from its token usage,
    provider and ``provider_metadata["model"]``; ``None`` when neither is known."""
    if run.cost_usd is not None:
        return run.cost_usd
    model = run.provider_metadata.get("model")
    return calculate_cost(
        run.token_usage, run.provider, model if isinstance(model, str) else None, table
    )


def reported_cost(value: object) -> float | None:
    """A cost a provider reported, when it is one: a positive finite number (``0``
    means "not reported", so the run is priced from its tokens instead; NaN, infinities
    and numbers beyond ``MAX_COST_USD`` are not costs a run may record)."""
    if not is_within(value, 0, MAX_COST_USD) or value == 0:
        return None
    return float(value)


def _per_million(
    input: float,  # noqa: A002 - the rate's name
    output: float,
    cache_read: float | None = None,
    cache_creation: float | None = None,
    cache_creation_1h: float | None = None,
) -> dict[str, float]:
    rates = {
        "input": input,
        "output": output,
        "cache_read": cache_read,
        "cache_creation": cache_creation,
        "cache_creation_1h": cache_creation_1h,
    }
    return {name: value / 1_000_000 for name, value in rates.items() if value is not None}


#: Anthropic's columns, in its order: input, output, cache reads, five-minute cache
#: writes (1.25x input), one-hour cache writes (2x input).
_ANTHROPIC = {
    # An unknown Claude model is priced as Sonnet, the middle of the range.
    "default": _per_million(3.0, 15.0, 0.30, 3.75, 6.0),
    "models": {
        # Opus 4.5 and later cost a third of Opus 4 and 4.1 (the longest prefix wins:
        # ``claude-opus-4-20250514`` and ``claude-opus-4-1-...`` are the old tier).
        "claude-opus-4": _per_million(15.0, 75.0, 1.50, 18.75, 30.0),
        "claude-opus-4-1": _per_million(15.0, 75.0, 1.50, 18.75, 30.0),
        "claude-opus-4-5": _per_million(5.0, 25.0, 0.50, 6.25, 10.0),
        "claude-opus-4-6": _per_million(5.0, 25.0, 0.50, 6.25, 10.0),
        "claude-sonnet-4": _per_million(3.0, 15.0, 0.30, 3.75, 6.0),
        "claude-haiku-4": _per_million(1.0, 5.0, 0.10, 1.25, 2.0),
        "claude-3-opus": _per_million(15.0, 75.0, 1.50, 18.75, 30.0),
        "claude-3-7-sonnet": _per_million(3.0, 15.0, 0.30, 3.75, 6.0),
        "claude-3-5-sonnet": _per_million(3.0, 15.0, 0.30, 3.75, 6.0),
        "claude-3-5-haiku": _per_million(0.80, 4.0, 0.08, 1.0, 1.6),
        "claude-3-haiku": _per_million(0.25, 1.25, 0.03, 0.30, 0.50),
    },
}
#: OpenAI bills no cache writes (its prompt caching is automatic): only cached input
#: has its own, lower rate.
_OPENAI = {
    "default": _per_million(1.25, 10.0, 0.125, 1.25),
    "models": {
        "gpt-5": _per_million(1.25, 10.0, 0.125, 1.25),
        "gpt-5.1": _per_million(1.25, 10.0, 0.125, 1.25),
        "gpt-5.2": _per_million(1.75, 14.0, 0.175, 1.75),
        "gpt-5-mini": _per_million(0.25, 2.0, 0.025, 0.25),
        "gpt-5-nano": _per_million(0.05, 0.40, 0.005, 0.05),
        "gpt-5.1-codex-mini": _per_million(0.25, 2.0, 0.025, 0.25),
        "gpt-4.1": _per_million(2.0, 8.0, 0.50, 2.0),
        "gpt-4.1-mini": _per_million(0.40, 1.60, 0.10, 0.40),
        "gpt-4.1-nano": _per_million(0.10, 0.40, 0.025, 0.10),
        "gpt-4o": _per_million(2.50, 10.0, 1.25, 2.50),
        "gpt-4o-mini": _per_million(0.15, 0.60, 0.075, 0.15),
        "o1": _per_million(15.0, 60.0, 7.50, 15.0),
        "o3": _per_million(2.0, 8.0, 0.50, 2.0),
        "o3-mini": _per_million(1.10, 4.40, 0.55, 1.10),
        "o4-mini": _per_million(1.10, 4.40, 0.275, 1.10),
    },
}
_GEMINI = {
    "default": _per_million(1.25, 10.0),
    "models": {
        "gemini-2.5-pro": _per_million(1.25, 10.0),
        "gemini-2.5-flash": _per_million(0.30, 2.50),
        "gemini-2.0-flash": _per_million(0.10, 0.40),
    },
}

#: List prices as of February 2026 (standard tier, prompts up to 200K tokens: the batch
#: discount, priority tiers, long-context surcharges and per-request server tool fees are
#: not priced); pass your own table for anything you bill on (every caller that prices
#: takes one). Each vendor is listed under its API name and under the name its CLI
#: agent's adapter records as ``Run.provider`` (``claude``, ``codex``), so runs recorded
#: either way are priced.
DEFAULT_PRICING = PricingTable.coerce(
    {
        "anthropic": _ANTHROPIC,
        "claude": _ANTHROPIC,
        "openai": _OPENAI,
        "codex": _OPENAI,
        "gemini": _GEMINI,
        "google": _GEMINI,
    }
)
