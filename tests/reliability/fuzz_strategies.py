"""Hypothesis strategies for the fuzzing suite (``test_fuzz.py``): hostile input of every
kind a caller can hand the library.

Mostly plausible values, some hostile ones, some of the wrong type altogether: the
property under test is that each is either stored and read back identical or refused
with a coded error naming the argument, so both kinds must be drawn often. The hostile
values are the ones the issue's defect classes were found with:

* text no backend can store alike (NUL, lone surrogates), very long text, text shaped
  like the store's own stream ids (``log:``, ``erased:``, ``artifact:``...);
* JSON values with ints beyond 64 bits and beyond 4,300 digits, NaN and the
  infinities, naive datetimes, nesting at and past the depth limit, and maps shaped like
  the ``eventsourcing`` transcoder's envelope (``{"_type_": ..., "_data_": ...}``) at
  any depth, with known and unknown type names (class 1);
* ids of another kind: a run's id for a session, ``log:<session id>`` and the other
  prefixes, another session's event id (classes 2 and 3). They are drawn as
  :class:`IdForm` and resolved against the records each example creates
  (:class:`Victims`), so every example starts from fresh ids and what it must not
  change is known.

Values whose ``repr`` would be unreadable or impossible in a failure report (a
megabyte of text, an int past the digit limit Python prints) are instances of small
subclasses that print what they are: they are still a ``str`` and an ``int``.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from enum import Enum, IntEnum
from typing import Any

from hypothesis import strategies as st

from agent_sessions import EventType, RunStatus, SessionStatus
from agent_sessions.domain.serialization import MAX_DEPTH, MAX_INT_DIGITS

# values with a short repr -------------------------------------------------------------


class LongText(str):
    """A long text that prints as its length (a failure report stays readable)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"LongText({self[:1]!r} * {len(self)})"


class HugeInt(int):
    """An int of more digits than Python prints by default: shown by its digit count."""

    digits: int = 0

    def __repr__(self) -> str:
        return f"HugeInt({'-' if self < 0 else ''}<{self.digits} digits>)"


def huge_int(digits: int, negative: bool = False) -> HugeInt:
    """``±(10**digits - 1)`` (``digits`` nines): the largest int of that many digits."""
    value = 10**digits - 1
    result = HugeInt(-value if negative else value)
    result.digits = digits
    return result


class Nested(list[Any]):
    """A list nested ``depth`` levels deep (``[[[...]]]``), printed by its depth."""

    depth: int = 0

    def __repr__(self) -> str:
        return f"Nested(depth={self.depth})"


def nested(depth: int, leaf: Any = 0) -> Nested:
    value: Any = leaf
    for _ in range(depth - 1):
        value = [value]
    result = Nested([value])
    result.depth = depth
    return result


class Colour(Enum):
    RED = "red"


class Level(IntEnum):
    HIGH = 3


# text --------------------------------------------------------------------------------

#: Text that looks like the store's own stream ids or like SQL, paths and wildcards.
TRICKY = [
    "",
    " ",
    "a",
    "%",
    "_",
    "'",
    '"',
    "\\",
    "'; DROP TABLE stored_events; --",
    "\n",
    "\t",
    "\u202e",  # right-to-left override
    "\ufeff",  # byte-order mark
    "\U0001f600",  # outside the BMP
    "log:x",
    "erased:x",
    "pruned:x",
    "artifact:k",
    "session:x",
    "run:x",
    "../..",
    "/etc/passwd",
    "C:\\x",
    "NULL",
    "null",
]
#: Text every backend must refuse the same way wherever it reaches a column, and keep
#: inside JSON (NUL) or refuse everywhere (lone surrogates).
NUL_TEXT = ["\x00", "a\x00b"]
SURROGATES = ["\ud800", "a\udfffb", "\udc00\ud800"]

plain_text = st.text(max_size=12)
long_text = st.sampled_from([5_000, 100_000, 1_000_000]).map(lambda n: LongText("x" * n))
#: Valid Unicode, NUL included (``st.text`` draws no surrogates).
text = plain_text | st.sampled_from(TRICKY + NUL_TEXT)
#: Any Python ``str``: valid text, lone surrogates, very long text.
hostile_text = text | st.sampled_from(SURROGATES) | long_text
#: Names: ``[a-z0-9_]`` words (agents, providers, models, tags).
word = st.text(string.ascii_lowercase + string.digits + "_", min_size=1, max_size=8)
#: Text any record field takes: valid Unicode without NUL, the tricky kinds included.
valid_text = text.filter(lambda t: "\x00" not in t)

# JSON values -------------------------------------------------------------------------

#: The type names the ``eventsourcing`` JSON transcoder knows, and some it does not.
ENVELOPE_TYPES = ["datetime_iso", "uuid_hex", "decimal_str", "unknown", "", "tuple", "int"]

INT64_MAX = 2**63 - 1
edge_ints = st.sampled_from(
    [0, -1, 2**31, INT64_MAX, INT64_MAX + 1, -(2**63), -(2**63) - 1, 2**64, 10**30]
).map(int) | st.sampled_from([MAX_INT_DIGITS - 1, MAX_INT_DIGITS]).map(huge_int)
json_ints = st.integers() | edge_ints
json_floats = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(
    [0.0, -0.0, 1.0, 5e-324, 1.7976931348623157e308, 1e16, 0.1]
)
json_scalars = st.none() | st.booleans() | json_ints | json_floats | text
json_keys = text | st.sampled_from(["_type_", "_data_", "_type", "__type__"])


def envelopes(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Maps shaped like the transcoder's ``{"_type_": name, "_data_": value}``: exactly
    those two keys (what it decoded), or with more beside them."""
    exact = st.builds(
        lambda name, data: {"_type_": name, "_data_": data},
        st.sampled_from(ENVELOPE_TYPES) | text,
        st.sampled_from(["x", "2020-01-01T00:00:00+00:00", "0" * 32, "1.5", ""]) | inner,
    )
    wider = st.builds(
        lambda base, extra: {**extra, **base}, exact, st.dictionaries(json_keys, inner, max_size=2)
    )
    return exact | wider


def json_values(*, max_leaves: int = 8) -> st.SearchStrategy[Any]:
    """Any JSON value (as Python: None, bool, int, float, str, list, dict with str keys),
    envelope-shaped maps at any depth included. Stored, each must come back identical."""
    return st.recursive(
        json_scalars,
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(json_keys, inner, max_size=4)
            | envelopes(inner)
        ),
        max_leaves=max_leaves,
    )


def json_maps(*, max_leaves: int = 8) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(json_keys, json_values(max_leaves=max_leaves), max_size=4) | (
        envelopes(json_values(max_leaves=max_leaves))
    )


#: Values a map field takes but stores converted: the record holds (and the store must
#: return) the converted value. Tuples become lists, enums their value or name, aware
#: datetimes UTC text, int/float/bool/None keys their text.
convertible = st.sampled_from(
    [
        (1, "a"),
        Colour.RED,
        Level.HIGH,
        datetime(2020, 1, 1, 12, tzinfo=timezone(timedelta(hours=5))),
        datetime.max.replace(tzinfo=timezone(timedelta(hours=23, minutes=59))),
        {2: "int key", 1.5: "float key", True: "bool key", None: "none key"},
        {Colour.RED: "enum key"},
    ]
)

#: Values no JSON map field may hold; each must be refused naming the field.
refused_values = (
    st.sampled_from(
        [
            math.nan,
            math.inf,
            -math.inf,
            huge_int(MAX_INT_DIGITS + 1),
            huge_int(5000, negative=True),
            datetime(2020, 1, 1),  # naive
            datetime.min.replace(tzinfo=timezone(timedelta(hours=23, minutes=59))),  # no UTC date
            b"bytes",
            bytearray(b"x"),
            {1, 2},
            frozenset(),
            object(),
            1 + 2j,
            {("tuple", "key"): 1},
            {b"bytes key": 1},
        ]
    )
    | st.sampled_from(SURROGATES)
    | st.sampled_from(SURROGATES).map(lambda k: {k: 1})
)


def deep(*, refused: bool) -> st.SearchStrategy[Nested]:
    """Lists nested to the depth limit (stored) or past it (refused). The map field is
    depth 0, so a value inside it may be nested ``MAX_DEPTH`` levels."""
    depths = [MAX_DEPTH + 1, MAX_DEPTH + 2, 1000, 20_000] if refused else [MAX_DEPTH - 1, MAX_DEPTH]
    return st.sampled_from(depths).map(nested)


def hostile_json_values() -> st.SearchStrategy[Any]:
    """JSON values with, somewhere inside, a value that is refused or converted."""
    bad = refused_values | deep(refused=True) | convertible | long_text
    return st.recursive(
        bad | json_scalars,
        lambda inner: (
            st.lists(inner, min_size=1, max_size=3)
            | st.dictionaries(json_keys, inner, min_size=1, max_size=3)
            | envelopes(inner)
        ),
        max_leaves=4,
    )


#: Anything at all, for arguments of the wrong type.
anything = (
    st.none()
    | st.booleans()
    | json_ints
    | st.floats()
    | hostile_text
    | st.binary(max_size=4)
    | st.lists(text, max_size=3)
    | st.dictionaries(text, json_scalars, max_size=2)
    | st.sampled_from([object(), {1, 2}, (), 1 + 2j, Colour.RED, Level.HIGH, math.nan])
    | st.datetimes(timezones=st.none() | st.just(UTC))
)


def map_field() -> st.SearchStrategy[Any]:
    """What a record's map field (metadata, context, data...) is given: mostly JSON
    maps, sometimes maps holding a hostile value, sometimes not a map at all."""
    return st.one_of(
        json_maps(),
        json_maps(),
        st.dictionaries(json_keys, hostile_json_values(), min_size=1, max_size=2),
        st.builds(lambda d: {"deep": d}, deep(refused=False)),
        st.builds(lambda t: {"long": t}, long_text),
        anything,
    )


# datetimes and the other record fields ------------------------------------------------

FAR_EAST = timezone(timedelta(hours=23, minutes=59))
FAR_WEST = timezone(-timedelta(hours=23, minutes=59))
zones = st.sampled_from([UTC, FAR_EAST, FAR_WEST, timezone(timedelta(hours=5, minutes=30))])
aware = st.datetimes(timezones=zones) | st.sampled_from(
    [datetime.min.replace(tzinfo=FAR_WEST), datetime.max.replace(tzinfo=FAR_EAST)]
)
#: What a timestamp field is given: aware datetimes (stored), naive ones, ends of the
#: range without a UTC date, and other types (refused).
timestamps = (
    aware
    | aware
    | st.datetimes(timezones=st.none())
    | st.sampled_from(
        [
            datetime.min.replace(tzinfo=FAR_EAST),
            datetime.max.replace(tzinfo=FAR_WEST),
            None,
            "2020-01-01T00:00:00+00:00",
            0,
        ]
    )
)


def sometimes(plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A plausible value four draws in five, anything at all the fifth."""
    return st.integers(0, 4).flatmap(lambda n: anything if n == 0 else plausible)


def statuses(enum: type[SessionStatus] | type[RunStatus]) -> st.SearchStrategy[Any]:
    return sometimes(st.sampled_from([*enum]) | st.sampled_from([*enum]).map(str) | text)


event_types = sometimes(
    st.sampled_from([*EventType]) | st.sampled_from([*EventType]).map(str) | text
)
optional_text = sometimes(st.none() | word | hostile_text)
counts = sometimes(
    st.integers(0, 1000) | st.sampled_from([INT64_MAX, INT64_MAX + 1, -1, 10**30]) | json_floats
)
token_usage = sometimes(
    st.dictionaries(
        st.sampled_from(
            ["input_tokens", "output_tokens", "total_tokens", "cache_read_tokens", "x"]
        ),
        counts | json_values(max_leaves=2),
        max_size=4,
    )
)
costs = sometimes(
    st.none()
    | st.floats(min_value=0, allow_infinity=False)
    | st.sampled_from([math.nan, math.inf, -1.0, 0, 10**400])
)
tags = sometimes(st.lists(word | hostile_text, max_size=3) | st.tuples(word))


# ids ---------------------------------------------------------------------------------

#: What an :class:`IdForm` is built from: a fresh id of the example, or the id of one of
#: the records the example created first (:class:`Victims`).
BASES = ["fresh", "session", "run", "event", "key", "host"]
#: Prefixes of the store's own stream ids, and others.
PREFIXES = ["", "", "", "log:", "erased:", "pruned:", "artifact:", "session:", "run:", "x:"]


@dataclass(frozen=True)
class IdForm:
    """An id to resolve against the example's records: ``prefix + <base> + suffix``."""

    base: str
    prefix: str = ""
    suffix: str = ""


@dataclass(frozen=True)
class Victims:
    """Records each example creates before the fuzzed call, with fresh ids: the call
    must leave them as they were, whatever ids it uses."""

    session: str
    run: str
    event: str
    key: str
    host: str
    fresh: str

    def resolve(self, value: Any) -> Any:
        """An :class:`IdForm` as text; any other value as it is."""
        if isinstance(value, IdForm):
            return value.prefix + getattr(self, value.base) + value.suffix
        return value


def id_forms(
    *, bases: list[str] | None = None, prefixes: list[str] | None = None, valid: bool = False
) -> st.SearchStrategy[IdForm]:
    """Forms of ids; ``valid`` ones have suffixes every backend stores (no NUL, no
    lone surrogate)."""
    suffixes = (
        st.just("") | st.just("") | (valid_text if valid else text | st.sampled_from(SURROGATES))
    )
    return st.builds(
        IdForm,
        st.sampled_from(bases or BASES),
        st.sampled_from(prefixes if prefixes is not None else PREFIXES),
        suffixes,
    )


def ids(*, fresh_only: bool = False) -> st.SearchStrategy[Any]:
    """An id argument: mostly an :class:`IdForm` (fresh, or another record's id, with
    or without a stream prefix), sometimes anything at all."""
    forms = id_forms(bases=["fresh"]) if fresh_only else id_forms()
    return sometimes(forms | forms | id_forms(bases=["fresh"], prefixes=[""]))


# filters, limits, cursors ------------------------------------------------------------

#: 70,000 ids: past every backend's bound on parameters in one statement.
SEVENTY_THOUSAND = [f"evt_{n:032x}" for n in range(70_000)]


class ManyIds(list[str]):
    """A long list of ids, printed by its length."""

    def __repr__(self) -> str:
        return f"ManyIds(<{len(self)} ids>)"


many_ids = st.just(None).map(lambda _: ManyIds(SEVENTY_THOUSAND))
limits = sometimes(
    st.none()
    | st.integers(-2, 20)
    | st.sampled_from([1000, 1001, INT64_MAX, INT64_MAX + 1, 2**64, 10**30, -(10**30)])
    | st.sampled_from([1.0, 2.5, True])
)
positions = sometimes(
    st.none()
    | st.integers(-1, 20)
    | st.sampled_from([INT64_MAX, INT64_MAX + 1, 10**30, huge_int(MAX_INT_DIGITS + 1)])
)
#: A long-poll wait: refused values and waits short enough to keep examples fast.
waits = st.none() | st.sampled_from([0, 1, 5, -1, 10**30, 2**63, 1.5, True, "10"])
flags = sometimes(st.booleans() | st.none() | st.sampled_from([0, 1, "yes", "no", ""]))

#: The ``order_by`` values of every paged query, and one none has.
ORDERS = [
    "updated_at_desc",
    "updated_at_asc",
    "created_at_desc",
    "created_at_asc",
    "started_at_desc",
    "started_at_asc",
    "token_usage_desc",
    "sequence_asc",
    "sequence_desc",
    "timestamp_asc",
    "timestamp_desc",
    "bogus",
]


@dataclass(frozen=True)
class CursorForm:
    """A cursor argument to build from genuine cursors the example obtained first:
    ``source`` names one of them (or none), ``edit`` how to damage it."""

    source: int
    edit: str
    cut: int = 0
    junk: str = ""


CURSOR_EDITS = ["as_is", "truncate", "drop_tail", "append", "flip", "padding", "upper", "reencode"]

cursor_forms = st.builds(
    CursorForm,
    st.integers(0, 20),
    st.sampled_from(CURSOR_EDITS),
    st.integers(1, 60),
    st.sampled_from(["", "!", "=", "A", "-_", "\x00", "\ud800", "é"]),
)
#: Random cursor text, base64 of random JSON, and cursors made from genuine ones.
cursor_values = st.one_of(
    cursor_forms,
    cursor_forms,
    st.none(),
    st.text(max_size=40),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | text,
        lambda inner: st.lists(inner, max_size=6),
        max_leaves=10,
    ).map(lambda v: ("json", v)),
    anything,
)

# open_store options ------------------------------------------------------------------

#: Every option some backend takes, and names none takes.
OPTION_NAMES = [
    "lock_timeout",
    "schema",
    "pool_size",
    "max_overflow",
    "connect_timeout",
    "statement_timeout",
    "application_name",
    "max_event_bytes",
    "bogus",
    "",
    "Schema",
]
option_values = st.one_of(
    st.sampled_from(["1", "4", "0", "-1", "1.5", "nan", "inf", "1e400", "", " 2", "x", "3 "]),
    st.sampled_from(['x"y', "a b", "public", "a" * 64, "Ünïcode", "a\x00b", "\ud800"]),
    st.integers(-2, 10),
    st.sampled_from([True, None, 1.5, math.nan, 10**30, [1], {"a": 1}, b"4"]),
    text,
)
#: Things handed to ``open_store(artifacts=...)``.
artifact_targets = st.one_of(
    st.sampled_from(["file", "s3://", "s3://bucket", "ftp://x", "", "file://", "memory://"]),
    text,
    st.sampled_from([5, object(), b"file:///tmp", ["file:///tmp"], True]),
)


__all__ = [
    "BASES",
    "CURSOR_EDITS",
    "ENVELOPE_TYPES",
    "OPTION_NAMES",
    "ORDERS",
    "SEVENTY_THOUSAND",
    "CursorForm",
    "HugeInt",
    "IdForm",
    "LongText",
    "ManyIds",
    "Nested",
    "Victims",
    "anything",
    "artifact_targets",
    "aware",
    "costs",
    "counts",
    "cursor_forms",
    "cursor_values",
    "deep",
    "envelopes",
    "event_types",
    "flags",
    "hostile_json_values",
    "hostile_text",
    "huge_int",
    "id_forms",
    "ids",
    "json_maps",
    "json_values",
    "limits",
    "long_text",
    "many_ids",
    "map_field",
    "nested",
    "option_values",
    "optional_text",
    "positions",
    "sometimes",
    "statuses",
    "tags",
    "text",
    "valid_text",
    "timestamps",
    "token_usage",
    "waits",
    "word",
]
