"""EventRedactor: opt-in secret removal before persistence."""

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
    SKIPPED_TYPES,
    EventRedactor,
    RedactionConfig,
)
from agent_sessions.domain.redaction_patterns import DEFAULT_PATTERNS

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
}
ON = RedactionConfig()


def message(data: dict[str, Any], event_type: str = "message_received", **kw: Any) -> Event:
    return Event.new(type=event_type, session_id="ses_1", data=data, **kw)


def redact(event: Event, config: RedactionConfig = ON) -> tuple[Event, Any]:
    return EventRedactor(config).redact(event)


def test_the_22_default_patterns_and_their_categories() -> None:
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


@pytest.mark.parametrize("event_type", sorted(SKIPPED_TYPES))
def test_skipped_types_are_never_redacted(event_type: EventType) -> None:
    event = message({"content": SAMPLES["password"]}, event_type)
    assert redact(event)[0] is event


@pytest.mark.parametrize("event_type", ["run_failed", "session_failed", "error_occurred"])
def test_error_events_are_redacted_including_the_provider_error(event_type: str) -> None:
    data = {
        "error_message": "connect failed: postgres://u:p@h/db",
        "provider_error": {"stderr": "export DATABASE_URL=sqlite:///x"},
    }
    _, report = redact(message(data, event_type))
    assert report.categories == {"connection_string": 1, "env_secret": 1}
    assert report.fields == ["error_message", "provider_error"]


def test_nested_maps_and_lists_are_scanned_up_to_the_depth_limit() -> None:
    secret = SAMPLES["aws_access_key"]

    def nest(depth: int) -> Any:
        value: Any = secret
        for level in range(depth):
            value = {"k": value} if level % 2 else [value]
        return value

    shallow, deep = nest(5), nest(MAX_DEPTH + 2)
    redacted, report = redact(message({"shallow": shallow, "deep": deep}))
    assert secret not in json.dumps(redacted.data["shallow"])
    assert redacted.data["deep"] == deep
    assert report.fields == ["shallow"]


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


def test_metadata_is_scanned_only_when_asked() -> None:
    event = message({}, metadata={"env": SAMPLES["env_secret"]})
    assert redact(event)[0] is event
    redacted, _ = redact(event, RedactionConfig(scan_metadata=True))
    assert redacted.metadata["env"] == "[REDACTED:env_secret]"


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
secrets = st.one_of(aws_keys, github_tokens, jwts, private_keys, bearer_tokens)
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
    text = before + secret + after
    data: dict[str, Any] = {"content": {"parts": [{"text": text}]} if nested else text}
    redacted, report = redact(message(data))
    content = redacted.data["content"]
    out = content["parts"][0]["text"] if nested else content
    assert secret not in out
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
redactable_types = st.sampled_from(sorted(set(EventType) - SKIPPED_TYPES))


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(
    event_type=redactable_types,
    data=st.dictionaries(st.text(max_size=8), json_values, max_size=5),
    metadata=st.dictionaries(st.text(max_size=8), json_values, max_size=3),
)
def test_events_without_secrets_are_never_changed(
    event_type: EventType, data: dict[str, Any], metadata: dict[str, Any]
) -> None:
    event = message(data, event_type, metadata=metadata)
    redacted, report = redact(event, RedactionConfig(scan_metadata=True))
    assert redacted == event
    assert report.count == 0
    assert REDACTION_KEY not in redacted.metadata
