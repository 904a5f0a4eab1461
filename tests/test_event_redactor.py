"""EventRedactor: opt-in secret removal before persistence, total when on: every event
type, data and metadata, map keys, any depth a record can have."""

from __future__ import annotations

import json
import re
import string
from typing import Any

import pytest
from agent_loop_support import raises_code
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_sessions import Event, EventType
from agent_sessions.domain.event_redactor import (
    MAX_DEPTH,
    REDACTION_KEY,
    EventRedactor,
    RedactionConfig,
)
from agent_sessions.domain.redaction_patterns import DEFAULT_PATTERNS
from agent_sessions.domain.serialization import MAX_DEPTH as RECORD_MAX_DEPTH

SAMPLES = {
    "aws_access_key": "AKIAIOSFODNN7EXAMPLE",
    "aws_secret_key": "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG",
    "gcp_api_key": "AIza" + "SyA1234567890abcdefghijklmnopqrstuv",
    "anthropic_key": "sk-ant-api03-" + "a1B2c3D4e5F6g7H8i9J0kLmN",
    "openai_key": "sk-proj-" + "Ab12Cd34Ef56Gh78Ij90Kl12",
    "openai_legacy_key": "sk-" + "A1b2C3d4E5" * 5,
    "github_pat": "ghp_" + "a" * 36,
    "github_oauth": "gho_" + "B1" * 18,
    "github_app": "ghs_" + "c2" * 18,
    "github_refresh": "ghr_" + "D3" * 18,
    "github_fine_pat": "github_pat_" + "11ABCDEFG0_abcdefghijklmnop",
    "gitlab_token": "glpat-" + "x" * 20,
    "jwt_token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_Xg",
    "bearer_token": "Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345",
    "password": "password=hunter2",
    "api_key_generic": "api_key: 12345-abcde",
    "secret_key": "secret_key=s3cr3t",
    "access_token": "access_token=tok123",
    "auth_token": "auth_token: tok456",
    "connection_string": "postgres://admin:pw@db.internal:5432/prod",
    "private_key": (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA0Z3\n-----END RSA PRIVATE KEY-----"
    ),
    "env_secret": "SECRET_KEY_BASE=0f9e8d7c6b5a",
    "url_password": "https://deploy:Zq8-w1nd0w@git.example.com/repo.git",
}
ON = RedactionConfig()


def message(data: dict[str, Any], event_type: str = "message_received", **kw: Any) -> Event:
    return Event.new(type=event_type, session_id="ses_1", data=data, **kw)


def redact(event: Event, config: RedactionConfig = ON) -> tuple[Event, Any]:
    return EventRedactor(config).redact(event)


def test_the_23_default_patterns_and_their_categories() -> None:
    assert [category for category, _ in DEFAULT_PATTERNS] == list(SAMPLES)


@pytest.mark.parametrize(("category", "secret"), SAMPLES.items())
def test_each_default_pattern_redacts_its_secret(category: str, secret: str) -> None:
    redacted, report = redact(message({"content": f"before {secret} after"}))
    content = redacted.data["content"]
    assert f"[REDACTED:{category}]" in content
    assert content.startswith("before ")
    assert secret not in content
    assert report.categories.get(category, 0) >= 1


def test_a_mixed_line_counts_three_matches() -> None:
    text = "AKIAIOSFODNN7EXAMPLE password=hunter2 Authorization: Bearer abcdefghijklmnopqrstuvwxyz"
    redacted, report = redact(message({"content": text}), RedactionConfig(replacement="[REDACTED]"))
    assert report.count == 3
    assert redacted.data["content"] == "[REDACTED] [REDACTED] Authorization: [REDACTED]"


def test_a_private_key_block_goes_whole_even_when_cut_off() -> None:
    body = "MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn\nR2a8Lq0k9TzYb5RrWkKx7Hqw2f\n"
    whole = f"-----BEGIN PRIVATE KEY-----\n{body}-----END PRIVATE KEY-----\nafter"
    cut = f"key: -----BEGIN OPENSSH PRIVATE KEY-----\n{body}"
    (a, _), (b, _) = redact(message({"content": whole})), redact(message({"content": cut}))
    assert a.data["content"] == "[REDACTED:private_key]\nafter"
    assert b.data["content"] == "key: [REDACTED:private_key]"


def test_the_report_says_what_went_without_the_secret() -> None:
    secret = SAMPLES["github_pat"]
    redacted, report = redact(
        message({"content": f"{secret} {secret}", "role": "assistant", "n": 3}, metadata={"a": 1})
    )
    assert redacted.metadata[REDACTION_KEY] == {
        "count": 2,
        "categories": {"github_pat": 2},
        "fields": ["content"],
    }
    assert redacted.metadata["a"] == 1
    assert secret not in json.dumps(redacted.to_dict())
    assert report.count == 2


def test_redaction_is_off_unless_enabled() -> None:
    event = message({"content": SAMPLES["password"]})
    assert redact(event, RedactionConfig(enabled=False))[0] is event


@pytest.mark.parametrize("event_type", sorted(EventType))
def test_every_event_type_is_redacted(event_type: EventType) -> None:
    """No type is trusted to carry no secret: ``run_started`` carries the model and the
    prompt's options, ``turn_completed`` and ``token_usage_updated`` whatever the
    provider adds."""
    event = message({"content": SAMPLES["password"]}, event_type)
    redacted, report = redact(event)
    assert redacted.data["content"] == "[REDACTED:password]"
    assert report.count == 1


@pytest.mark.parametrize("event_type", ["run_failed", "session_failed", "error_occurred"])
def test_error_events_are_redacted_including_the_provider_error(event_type: str) -> None:
    data = {
        "error_message": "connect failed: postgres://u:p@h/db",
        "provider_error": {"stderr": "export DATABASE_URL=sqlite:///x"},
    }
    _, report = redact(message(data, event_type))
    assert report.categories == {"connection_string": 1, "env_secret": 1}
    assert report.fields == ["error_message", "provider_error"]


def nest(value: Any, depth: int) -> Any:
    """``value`` inside ``depth`` maps and lists, alternating."""
    for level in range(depth):
        value = {"k": value} if level % 2 else [value]
    return value


def test_the_scan_reaches_as_deep_as_a_record_can_nest() -> None:
    assert MAX_DEPTH == RECORD_MAX_DEPTH
    secret = SAMPLES["aws_access_key"]
    # The deepest value an event can hold: the data map is level 0, its values level 1,
    # and nothing may be deeper than RECORD_MAX_DEPTH.
    deepest = nest(secret, RECORD_MAX_DEPTH - 1)
    event = message({"shallow": nest(secret, 5), "deep": deepest})
    redacted, report = redact(event)
    assert secret not in json.dumps(redacted.data)
    assert report.fields == ["shallow", "deep"]
    assert report.count == 2


def test_a_map_deeper_than_any_record_is_refused_not_passed_through() -> None:
    too_deep = {"a": nest(SAMPLES["aws_access_key"], RECORD_MAX_DEPTH + 1)}
    with raises_code("validation_error"):
        EventRedactor(ON).redact_map(too_deep)


def test_non_string_scalars_never_change() -> None:
    data = {"content": SAMPLES["password"], "n": 12345678901234567890, "f": 1.5, "b": True}
    redacted, _ = redact(message({**data, "none": None}))
    assert (redacted.data["n"], redacted.data["f"], redacted.data["b"]) == (data["n"], 1.5, True)
    assert redacted.data["none"] is None


def test_without_deep_scan_only_the_known_fields_of_a_type_are_scanned() -> None:
    secret = SAMPLES["password"]
    config = RedactionConfig(deep_scan=False)
    tool, _ = redact(
        message({"tool_input": secret, "tool_name": secret}, "tool_call_started"), config
    )
    assert tool.data == {"tool_input": "[REDACTED:password]", "tool_name": secret}
    run_completed = message({"result": secret}, "run_completed")
    assert redact(run_completed, config)[0] is run_completed


def test_metadata_is_scanned_unless_turned_off() -> None:
    event = message({}, metadata={"env": SAMPLES["env_secret"], "n": [{"x": SAMPLES["jwt_token"]}]})
    redacted, report = redact(event)
    assert redacted.metadata["env"] == "[REDACTED:env_secret]"
    assert redacted.metadata["n"] == [{"x": "[REDACTED:jwt_token]"}]
    assert report.categories == {"env_secret": 1, "jwt_token": 1}
    assert redact(event, RedactionConfig(scan_metadata=False))[0] is event


def test_user_patterns_are_added_to_the_defaults() -> None:
    config = RedactionConfig(patterns=[("employee_id", r"EMP-\d{6}"), re.compile(r"ticket#\d+")])
    redacted, report = redact(
        message({"content": f"EMP-123456 ticket#42 {SAMPLES['password']}"}), config
    )
    assert redacted.data["content"] == (
        "[REDACTED:employee_id] [REDACTED:custom] [REDACTED:password]"
    )
    assert report.categories == {"password": 1, "employee_id": 1, "custom": 1}


def test_user_patterns_can_replace_the_defaults() -> None:
    config = RedactionConfig(patterns=[r"EMP-\d{6}"], use_default_patterns=False)
    redacted, _ = redact(message({"content": f"EMP-123456 {SAMPLES['password']}"}), config)
    assert redacted.data["content"] == f"[REDACTED:custom] {SAMPLES['password']}"


def test_a_replacement_is_literal_text() -> None:
    config = RedactionConfig(replacement=r"<\g<0> \1>")
    redacted, _ = redact(message({"content": SAMPLES["password"]}), config)
    assert redacted.data["content"] == r"<\g<0> \1>"


@pytest.mark.parametrize(
    "patterns", [["("], [("", "x")], [("a", "b", "c")], [42], [("cat", 42)], "x+"]
)
def test_bad_patterns_are_refused_up_front(patterns: Any) -> None:
    with raises_code("validation_error"):
        RedactionConfig(patterns=patterns)


def test_redact_map_scans_every_key() -> None:
    value = {"a": [SAMPLES["jwt_token"]], "b": {"c": SAMPLES["gitlab_token"]}, "d": 1}
    assert EventRedactor(ON).redact_map(value) == {
        "a": ["[REDACTED:jwt_token]"],
        "b": {"c": "[REDACTED:gitlab_token]"},
        "d": 1,
    }
    assert EventRedactor(RedactionConfig(enabled=False)).redact_map(value) == value


OPENAI_BODY = "T3BlbkFJ-x_Yq9" + "Ab-Cd_Ef" * 8


@pytest.mark.parametrize("kind", ["proj", "svcacct", "admin"])
def test_openai_keys_go_whole_dashes_and_underscores_included(kind: str) -> None:
    key = f"sk-{kind}-{OPENAI_BODY}"
    redacted, report = redact(message({"content": f"export OPENAI={key} next"}))
    assert redacted.data["content"] == "export OPENAI=[REDACTED:openai_key] next"
    assert report.categories == {"openai_key": 1}


@pytest.mark.parametrize(
    ("url", "readable"),
    [
        (
            "https://deploy:Zq8-w1nd0w@git.example.com/r.git",
            "https://deploy:{}@git.example.com/r.git",
        ),
        ("postgresql+psycopg://app:pa55:w0rd@db:5432/x", "postgresql+psycopg://app:{}@db:5432/x"),
        (
            "mongodb+srv://root:hunter2@cluster0.example.net",
            "mongodb+srv://root:{}@cluster0.example.net",
        ),
        ("sftp://:s3cr3t@files:2222/in", "sftp://:{}@files:2222/in"),
        ("amqps://guest:gu3st/x@mq.internal/vh", "amqps://guest:{}@mq.internal/vh"),
    ],
)
def test_a_url_keeps_all_but_its_password(url: str, readable: str) -> None:
    redacted, report = redact(message({"content": f"cloning {url} now"}))
    assert redacted.data["content"] == f"cloning {readable.format('[REDACTED:url_password]')} now"
    assert report.categories == {"url_password": 1}


@pytest.mark.parametrize(
    "text", ["https://example.com/a@b", "https://example.com:8080/", "mailto:bob@example.com"]
)
def test_urls_without_a_password_are_left_alone(text: str) -> None:
    event = message({"content": text})
    assert redact(event)[0] is event


def test_redacting_twice_changes_and_counts_nothing_more() -> None:
    text = f"{SAMPLES['url_password']} {SAMPLES['password']} {SAMPLES['openai_key']}"
    once, first = redact(message({"content": text}, metadata={"m": SAMPLES["github_pat"]}))
    twice, second = redact(once)
    assert twice is once
    assert second.count == 0
    assert first.count == 4
    assert once.metadata[REDACTION_KEY]["count"] == 4


def test_a_second_redaction_with_more_patterns_adds_to_the_report() -> None:
    once, _ = redact(message({"content": f"EMP-123456 {SAMPLES['password']}"}))
    more = RedactionConfig(patterns=[("employee_id", r"EMP-\d{6}")])
    twice, report = redact(once, more)
    assert twice.data["content"] == "[REDACTED:employee_id] [REDACTED:password]"
    assert report.categories == {"employee_id": 1}
    assert twice.metadata[REDACTION_KEY] == {
        "count": 2,
        "categories": {"password": 1, "employee_id": 1},
        "fields": ["content"],
    }


def test_secrets_used_as_map_keys_are_redacted_at_every_level() -> None:
    key = SAMPLES["github_pat"]
    data = {key: "top", "env": {key: {"nested": [{SAMPLES["aws_access_key"]: 1}]}}}
    redacted, report = redact(message(data, metadata={key: True}))
    assert key not in json.dumps(redacted.to_dict())
    assert redacted.data == {
        "[REDACTED:github_pat]": "top",
        "env": {"[REDACTED:github_pat]": {"nested": [{"[REDACTED:aws_access_key]": 1}]}},
    }
    assert redacted.metadata["[REDACTED:github_pat]"] is True
    # The report names keys as they read now, never as they were.
    assert report.fields == ["[REDACTED:github_pat]", "env"]
    assert report.categories == {"github_pat": 3, "aws_access_key": 1}


def test_keys_that_redact_alike_keep_every_value() -> None:
    a, b = "ghp_" + "a" * 36, "ghp_" + "b" * 36
    data = {a: 1, b: 2, "[REDACTED:github_pat]": 3, "x": {a: 4, b: 5}}
    redacted, _ = redact(message(data))
    assert redacted.data == {
        "[REDACTED:github_pat] #2": 1,
        "[REDACTED:github_pat] #3": 2,
        "[REDACTED:github_pat]": 3,
        "x": {"[REDACTED:github_pat]": 4, "[REDACTED:github_pat] #2": 5},
    }


def test_a_user_pattern_with_a_secret_group_replaces_only_that_group() -> None:
    config = RedactionConfig(
        patterns=[("pin", r"PIN (?P<secret>\d{4})\b")], use_default_patterns=False
    )
    redacted, _ = redact(message({"content": "card PIN 1234 ok"}), config)
    assert redacted.data["content"] == "card PIN [REDACTED:pin] ok"


HOSTILE_FRAGMENTS = ["eyJ", "eyJaaaa.", "a://", "a://:", "a.", "ab-", "sk-", "x:"]


@pytest.mark.parametrize("fragment", HOSTILE_FRAGMENTS)
def test_hostile_text_made_to_backtrack_is_scanned_in_one_pass(fragment: str) -> None:
    """Half a megabyte of one pattern's prefix repeated: each pattern does linear work
    (it used to rescan the run from every prefix: minutes, a stalled write, for text
    anyone can send). No secret in it, so it comes back unchanged."""
    text = fragment * (500_000 // len(fragment))
    event = message({"content": text})
    assert redact(event)[0] is event


# properties ----------------------------------------------------------------------------

ALNUM = string.ascii_letters + string.digits
aws_keys = st.text(string.ascii_uppercase + string.digits, min_size=16, max_size=16).map(
    lambda s: "AKIA" + s
)
github_tokens = st.builds(
    lambda prefix, body: prefix + body,
    st.sampled_from(["ghp_", "gho_", "ghs_", "ghr_"]),
    st.text(ALNUM, min_size=36, max_size=36),
)
_jwt_segment = st.text(ALNUM + "_-", min_size=10, max_size=40)
jwts = st.builds(lambda a, b, c: f"eyJ{a}.{b}.{c}", _jwt_segment, _jwt_segment, _jwt_segment)
private_keys = st.builds(
    lambda kind, lines: (
        f"-----BEGIN {kind}PRIVATE KEY-----\n"
        + "\n".join(lines)
        + f"\n-----END {kind}PRIVATE KEY-----"
    ),
    st.sampled_from(["", "RSA ", "EC ", "DSA ", "OPENSSH "]),
    st.lists(st.text(ALNUM + "+/=", min_size=16, max_size=64), min_size=1, max_size=5),
)
bearer_tokens = st.builds(
    lambda word, space, token: f"{word}{space}{token}",
    st.sampled_from(["Bearer", "bearer", "BEARER"]),
    st.text(" \t", min_size=1, max_size=3),
    st.text(ALNUM + "._~+/=-", min_size=20, max_size=60),
)
openai_keys = st.builds(
    lambda kind, body: f"sk-{kind}-{body}",
    st.sampled_from(["proj", "svcacct", "admin"]),
    st.text(ALNUM + "-_", min_size=20, max_size=80),
)
url_passwords = st.builds(
    lambda scheme, user, password, host: f"{scheme}://{user}:{password}@{host}",
    st.sampled_from(["https", "ftp", "postgresql+psycopg", "mongodb+srv", "amqps", "redis"]),
    st.text(ALNUM + "._-", max_size=10),
    st.text(ALNUM + "!$%&*+,;=~-_./:", min_size=1, max_size=30),
    st.sampled_from(["db.internal", "10.0.0.7:5432", "example.com/path"]),
)
secrets = st.one_of(
    aws_keys, github_tokens, jwts, private_keys, bearer_tokens, openai_keys, url_passwords
)


def secret_text(secret: str) -> str:
    """What must not survive of ``secret``: the password alone for a URL (the rest of it
    is kept readable on purpose) where it stood, else the whole secret."""
    if "://" in secret:
        password = secret.split("://", 1)[1].split(":", 1)[1].rsplit("@", 1)[0]
        return f":{password}@"
    return secret


# Fragments that look like the start of a secret, so generated text comes near the
# patterns instead of being random letters nothing could match.
near_misses = st.lists(
    st.one_of(
        st.sampled_from(["AKIA", "ghp_", "eyJ", "Bearer ", "sk-", "-----BEGIN ", "key", ".", "="]),
        st.text(max_size=12),
    ),
    max_size=6,
).map("".join)


def _clean(text: str) -> bool:
    return not any(pattern.search(text) for _, pattern in DEFAULT_PATTERNS)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    secret=secrets, before=st.text(max_size=30), after=st.text(max_size=30), nested=st.booleans()
)
def test_generated_secrets_never_survive(
    secret: str, before: str, after: str, nested: bool
) -> None:
    # Separated from its neighbours as text usually is: a secret glued to random text
    # can become another string (a URL's password running into what follows).
    text = f"{before} {secret} {after}"
    data: dict[str, Any] = {"content": {"parts": [{"text": text}]} if nested else text}
    redacted, report = redact(message(data))
    content = redacted.data["content"]
    out = content["parts"][0]["text"] if nested else content
    assert secret_text(secret) not in out
    assert report.count >= 1
    assert secret not in json.dumps(redacted.metadata)
    if secret.startswith("-----BEGIN"):  # and nothing of the key material is left
        for line in secret.splitlines()[1:-1]:
            if line not in before and line not in after:
                assert line not in out


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.one_of(st.text(), near_misses).filter(_clean),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=8).filter(_clean), inner, max_size=4),
    ),
    max_leaves=20,
)
redactable_types = st.sampled_from(sorted(EventType))


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(
    event_type=redactable_types,
    data=st.dictionaries(st.text(max_size=8).filter(_clean), json_values, max_size=5),
    metadata=st.dictionaries(st.text(max_size=8).filter(_clean), json_values, max_size=3),
)
def test_events_without_secrets_are_never_changed(
    event_type: EventType, data: dict[str, Any], metadata: dict[str, Any]
) -> None:
    event = message(data, event_type, metadata=metadata)
    redacted, report = redact(event)
    assert redacted == event
    assert report.count == 0
    assert REDACTION_KEY not in redacted.metadata


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    secret=secrets,
    depth=st.integers(min_value=0, max_value=RECORD_MAX_DEPTH - 2),
    as_key=st.booleans(),
    in_metadata=st.booleans(),
    event_type=st.sampled_from(sorted(EventType)),
)
def test_a_secret_anywhere_in_any_event_never_survives(
    secret: str, depth: int, as_key: bool, in_metadata: bool, event_type: EventType
) -> None:
    """Value or key, data or metadata, any type, any depth a record can hold."""
    leaf: Any = {secret: 1} if as_key else secret
    planted = {"x": nest(leaf, depth)}
    event = message({} if in_metadata else planted, event_type, metadata=planted)
    redacted, report = redact(event)
    assert secret_text(secret) not in json.dumps(redacted.to_dict())
    assert report.count >= 1
