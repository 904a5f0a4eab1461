"""Secrets planted through every channel a caller or a provider has into a store, and
everything read back out of it (issue 11, class 8).

Each channel gets a secret of its own, in one of the default patterns' shapes, and a
*needle*: the part of it that must never be found again (16 hex characters derived from
the channel's name, so a leak names its channel). ``plant_through_store`` writes with
every write method of the ``SessionStore`` port (and artifacts); ``plant_through_manager``
drives a ``SessionManager`` through a session's whole life with a provider whose every
output carries secrets; ``read_everything`` renders every read API's answer as text.
The tests check that text, and the raw storage, for needles.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import datetime
from enum import Enum
from typing import Any

from agent_sessions import (
    Event,
    EventType,
    ExecutionResult,
    ProviderError,
    ProviderResult,
    Run,
    RunResult,
    Session,
    SessionManager,
    SessionStore,
)
from agent_sessions.domain.error_payload import ERROR_TEXT_MAX_BYTES
from agent_sessions.domain.serialization import MAX_DEPTH

#: Secret shapes of the default patterns, each built around a needle ``u`` (16 lowercase
#: hex characters). The OpenAI and URL shapes are the ones issue 11 found missed.
SHAPES: tuple[Callable[[str], str], ...] = (
    lambda u: f"ghp_{u}{'A' * 20}",
    lambda u: f"sk-proj-{u}-Ab_{'c' * 20}",
    lambda u: f"sk-svcacct-{u}_x-{'Z' * 20}",
    lambda u: f"https://ci:{u}@git.example.com/r.git",
    lambda u: f"password={u}",
    lambda u: f"eyJ{u}.{u}abcd.{u}wxyz",
    lambda u: f"-----BEGIN RSA PRIVATE KEY-----\nMII{u}\n-----END RSA PRIVATE KEY-----",
    lambda u: f"Authorization: Bearer {u}{u}",
    lambda u: f"postgresql+psycopg://app:{u}@db.internal:5432/prod",
    lambda u: f"sk-ant-api03-{u}{u}",
)
AWS_SHAPE = 99  # ``AKIA`` + the needle in capitals: the one shape with another alphabet
#: Deep enough to have been left unscanned before (10 levels), as deep as a record allows
#: with a map around the leaf.
DEEP = MAX_DEPTH - 4


def nest(value: Any, depth: int) -> Any:
    for level in range(depth):
        value = {"k": value} if level % 2 else [value]
    return value


class Secrets:
    """Hands out one secret per channel and remembers its needle."""

    def __init__(self, salt: str = "") -> None:
        self.salt = salt
        self.needles: dict[str, str] = {}

    def __call__(self, channel: str, shape: int | None = None) -> str:
        digest = hashlib.sha256(f"{self.salt}/{channel}".encode()).hexdigest()
        needle = digest[:16]
        if shape is None:
            shape = len(self.needles) % (len(SHAPES) + 1)
        if shape >= len(SHAPES):
            needle = needle.upper()
            secret = f"AKIA{needle}"
        else:
            secret = SHAPES[shape](needle)
        if channel in self.needles and self.needles[channel] != needle:
            raise AssertionError(f"channel {channel} planted twice with different needles")
        self.needles[channel] = needle
        return secret

    def found_in(self, text: str) -> list[str]:
        """The channels whose needle ``text`` contains."""
        return sorted(channel for channel, needle in self.needles.items() if needle in text)

    def found_in_bytes(self, blob: bytes) -> list[str]:
        return sorted(
            channel for channel, needle in self.needles.items() if needle.encode() in blob
        )


def cut_secret_stderr(secret: str, max_bytes: int = ERROR_TEXT_MAX_BYTES) -> str:
    """Provider stderr longer than is kept, the byte cut falling inside ``secret`` after
    its needle: what is kept of it is no longer a whole secret, yet holds the needle."""
    keep = 4 + 16 + 8  # ``ghp_``, the needle, and a little more: short of a whole token
    head = "x" * (max_bytes - keep - 1) + " "
    return head + secret + " and more output\n"


# writing ------------------------------------------------------------------------------


def plant_through_store(store: SessionStore, s: Secrets, *, artifacts: bool = False) -> str:
    """Every write method of the port, each record field a caller fills, secrets as
    values and as keys, shallow and deep. Returns the session id."""
    session = Session.new(
        agent_id="agent",
        metadata={"note": s("session.metadata"), s("session.metadata.key"): 1},
        context={"deep": nest({s("session.context.deep.key"): s("session.context.deep")}, DEEP)},
        tags=[s("session.tags")],
    )
    store.save_session(session)
    session = session.with_metadata({"later": s("session.metadata.update")})
    store.save_session(session)

    run = Run.new(
        session_id=session.id,
        input={"prompt": s("run.input"), s("run.input.key"): [s("run.input.list")]},
        metadata={"m": s("run.metadata")},
    )
    store.save_run(run)
    running = run.with_status("running").with_provider(
        "claude", {"resume": s("run.provider_metadata")}
    )
    running = running.replace(token_usage={"input_tokens": 3, "note": s("run.token_usage")})
    store.save_run(running)

    events = [
        Event.new(
            type=event_type,
            session_id=session.id,
            run_id=run.id,
            data={
                "text": s(f"event.{event_type.value}.data"),
                s(f"event.{event_type.value}.key"): 1,
                "deep": nest(s(f"event.{event_type.value}.deep"), DEEP),
            },
            metadata={"m": s(f"event.{event_type.value}.metadata")},
        )
        for event_type in EventType
    ]
    store.append_events(events[:-2])
    store.append_event(events[-2])
    store.append_event_with_sequence(events[-1])

    failed = running.set_error(
        {
            "code": "provider_error",
            "message": s("run.error.message"),
            "provider_error": {"stderr": s("run.error.stderr"), "kind": "exit"},
        }
    )
    flushed = Event.new(
        type="run_failed",
        session_id=session.id,
        run_id=run.id,
        data={"error_message": s("flush.event")},
    )
    store.flush(
        ExecutionResult(
            session=session.with_metadata({"flushed": s("flush.session.metadata")}),
            run=failed,
            events=[flushed],
            provider_metadata={"x": s("flush.provider_metadata")},
        )
    )

    done = Run.new(session_id=session.id, input={"q": s("run2.input")})
    store.save_run(done.set_output({"answer": s("run.output"), s("run.output.key"): True}))
    active = Run.new(session_id=session.id, input={"q": s("active.input")})
    store.save_run(active.with_status("running"))
    if artifacts:
        store.put_artifact(  # type: ignore[attr-defined]
            session.id,
            done.id,
            "reports/out.txt",
            b"blob bytes are the caller's and are stored as given",
            metadata={"m": s("artifact.metadata"), s("artifact.metadata.key"): "v"},
        )
        store.registry.register(  # type: ignore[attr-defined]
            key="reports/registered-elsewhere.txt",
            byte_size=1,
            checksum_sha256="0" * 64,
            storage_backend="elsewhere",
            storage_ref="elsewhere://x",
            session_id=session.id,
            metadata={"m": s("registry.metadata"), s("registry.metadata.key"): 1},
        )
    return session.id


@dataclasses.dataclass
class PlantingProvider:
    """A provider whose events, result and failure all carry secrets."""

    s: Secrets
    tag: str
    fail_with: BaseException | None = None
    name: str = "claude"

    def run(self, input: Mapping[str, Any] | None, emit: Callable[[Any], None]) -> ProviderResult:
        s, tag = self.s, self.tag
        for event_type in EventType:
            emit(
                {
                    "type": event_type.value,
                    "data": {
                        "content": s(f"{tag}.emit.{event_type.value}"),
                        s(f"{tag}.emit.{event_type.value}.key"): 1,
                        "deep": nest(s(f"{tag}.emit.{event_type.value}.deep"), DEEP),
                    },
                    "metadata": {"m": s(f"{tag}.emit.{event_type.value}.metadata")},
                }
            )
        emit({"type": s(f"{tag}.emit.unknown_type"), "data": {}})
        stderr = cut_secret_stderr(s(f"{tag}.emit.stderr_cut", shape=0))
        emit(
            {
                "type": "error_occurred",
                "data": {
                    "error_message": s(f"{tag}.emit.error_message"),
                    "provider_error": {"kind": "exit", "stderr": stderr},
                },
            }
        )
        # Refused (a key that is not a string), and the refusal is logged.
        emit({"type": "message_sent", "data": {s(f"{tag}.emit.refused", shape=4).encode(): 1}})
        if self.fail_with is not None:
            raise self.fail_with
        return ProviderResult(
            output={"answer": s(f"{tag}.result.output")},
            token_usage={"input_tokens": 10, "output_tokens": 2, "note": s(f"{tag}.usage")},
            provider_metadata={"model": "claude-sonnet-4", "k": s(f"{tag}.provider_metadata")},
            metadata={"from_result": s(f"{tag}.result.metadata")},
        )


def plant_through_manager(
    make: Callable[[PlantingProvider], SessionManager], s: Secrets
) -> tuple[list[str], list[RunResult]]:
    """A session's whole life through ``SessionManager``: a completed run, a run the
    provider fails (with stderr cut inside a secret), one that crashes, an approval
    cancellation, a recorded event and a failed session. Returns the session ids and
    the run results."""
    ok = make(PlantingProvider(s, "ok"))
    session = ok.start_session(
        "agent",
        metadata={"m": s("mgr.session.metadata")},
        context={"deep": nest(s("mgr.session.context"), DEEP)},
        tags=[s("mgr.session.tags")],
    )
    ok.activate_session(session.id)
    results = [
        ok.run_once(
            session.id,
            {"prompt": s("mgr.run.input"), "options": {s("mgr.run.input.key"): 1}},
            metadata={"m": s("mgr.run.metadata")},
        )
    ]
    provider_error = ProviderError(
        s("mgr.fail.message"),
        details={"d": s("mgr.fail.details")},
        provider_error={
            "kind": "exit",
            "message": s("mgr.fail.provider_message"),
            "stderr": cut_secret_stderr(s("mgr.fail.stderr_cut", shape=0)),
        },
    )
    failing = make(PlantingProvider(s, "fail", fail_with=provider_error))
    results.append(failing.run_once(session.id, {"messages": [s("mgr.fail.input")]}))
    crashing = make(PlantingProvider(s, "crash", fail_with=RuntimeError(s("mgr.crash"))))
    results.append(crashing.run_once(session.id, {"content": s("mgr.crash.input")}))

    pending = ok.start_run(session.id, {"prompt": s("mgr.approval.input")})
    ok.cancel_for_approval(
        pending.id,
        tool_name="bash",
        policy_name="ask",
        tool_input={"cmd": s("mgr.approval.tool_input")},
    )
    ok.record_event(
        session.id, "policy_violation", {"policy": "p", "kind": "k", "details": s("mgr.policy")}
    )
    other = ok.start_session("agent", context={"c": s("mgr.other.context")})
    ok.fail_session(other.id, {"message": s("mgr.fail_session"), "details": {"x": s("mgr.fs.d")}})
    return [session.id, other.id], results


# reading ------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, (datetime, Enum)):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, BaseException):
        return {"str": str(value), "repr": repr(value), "details": getattr(value, "details", {})}
    return repr(value)


def render(*values: Any) -> str:
    """Values as JSON text (records through ``to_dict``) and as ``repr``: a needle in
    either is a leak."""
    return "\n".join(
        json.dumps(v, default=_plain, ensure_ascii=False) + "\n" + repr(v) for v in values
    )


def read_everything(store: Any, session_ids: list[str]) -> str:
    """Every read API's answer about these sessions, as text."""
    parts: list[Any] = [store.list_sessions()]
    query = store.query() if hasattr(store, "query") else None
    for session_id in session_ids:
        runs = store.list_runs(session_id)
        parts += [store.get_session(session_id), runs, store.get_active_run(session_id)]
        parts += [store.get_run(run.id) for run in runs]
        events = store.get_events(session_id)
        parts += [events, store.get_events_by_ids([e.id for e in events])]
        if query is not None:
            parts += [
                query.get_session_stats(session_id),
                query.export_session(
                    session_id, include_artifacts=getattr(store, "artifact_store", None) is not None
                ),
            ]
    if query is not None:
        parts += [
            query.search_sessions(include_deleted=True),
            query.search_runs(),
            query.search_events(limit=1000),
            query.get_usage_summary(),
            query.get_cost_summary(),
        ]
    return render(*parts)
