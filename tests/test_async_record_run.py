"""``async with store.record_run(...)`` on the async facade: the sync ``RunRecorder``
whose start and finish run in the facade's executor -- completed, failed or cancelled,
the buffered events and the outcome written by one atomic flush."""

from __future__ import annotations

import asyncio

import pytest

from agent_sessions import AgentSessionsError, AsyncStore, Session, open_async_store
from agent_sessions.services.run_recorder import RunRecorder


async def _session(store: AsyncStore) -> Session:
    session = Session.new(agent_id="loop")
    await store.save_session(session)
    return session


def test_a_completed_run_is_written_by_one_flush_at_the_end(store_url: str) -> None:
    async def scenario() -> None:
        async with open_async_store(store_url) as store:
            session = await _session(store)
            async with store.record_run(
                session.id, input={"prompt": "Weather?"}, provider="claude"
            ) as run:
                assert isinstance(run, RunRecorder)
                run.user("Weather in Paris?")
                call_id = run.tool_call("weather", {"city": "Paris"})
                run.tool_result(call_id, "18°C, sunny")
                run.assistant("18°C and sunny.")
                run.usage(input_tokens=1200, output_tokens=80)
                # Saved running on entry; the events only buffered so far.
                assert (await store.get_run(run.run_id)).status == "running"
                assert await store.get_events(session.id) == []
            stored = await store.get_events(session.id)
            assert [e.id for e in stored] == [e.id for e in run.events]
            assert [e.type for e in stored][-1] == "run_completed"
            assert [e.sequence_number for e in stored] == list(range(1, len(stored) + 1))
            final = await store.get_run(run.run_id)
            assert final.status == "completed"
            assert final.output == {"content": "18°C and sunny."}
            assert final.token_usage["input_tokens"] == 1200
            assert final.turn_count == 1
            assert run.run.status == "completed"

    asyncio.run(scenario())


def test_an_exception_fails_the_run_and_goes_on() -> None:
    async def scenario() -> None:
        async with open_async_store("memory://") as store:
            session = await _session(store)
            recorder = store.record_run(session.id)

            async def loop() -> None:
                async with recorder as run:
                    run.user("hi")
                    raise ValueError("model exploded")

            with pytest.raises(ValueError, match="model exploded"):
                await loop()
            final = await store.get_run(recorder.run_id)
            assert final.status == "failed"
            assert final.error is not None
            assert "model exploded" in str(final.error)
            types = [e.type for e in await store.get_events(session.id)]
            assert types == ["message_sent", "run_failed"]

    asyncio.run(scenario())


def test_cancelling_the_task_cancels_the_run(store_url: str) -> None:
    async def scenario() -> None:
        async with open_async_store(store_url) as store:
            session = await _session(store)
            recorder = store.record_run(session.id)
            inside = asyncio.Event()

            async def loop() -> None:
                async with recorder as run:
                    run.user("a long question")
                    inside.set()
                    await asyncio.Event().wait()  # the model call that never returns

            task = asyncio.create_task(loop())
            await asyncio.wait_for(inside.wait(), 30)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            final = await store.get_run(recorder.run_id)
            assert final.status == "cancelled"
            types = [e.type for e in await store.get_events(session.id)]
            assert types == ["message_sent", "run_cancelled"]

    asyncio.run(scenario())


def test_the_async_recorder_refuses_a_sync_block_and_a_second_run() -> None:
    async def scenario() -> tuple[str, str, list[str]]:
        async with open_async_store("memory://") as store:
            session = await _session(store)
            recorder = store.record_run(session.id)
            with pytest.raises(AgentSessionsError) as sync_block, recorder:
                pass
            async with recorder as run:
                run.assistant("done")
            with pytest.raises(AgentSessionsError) as again:
                async with recorder:
                    pass
            runs = await store.list_runs(session.id)
            return sync_block.value.code, again.value.code, [r.status for r in runs]

    sync_code, again_code, statuses = asyncio.run(scenario())
    assert sync_code == "invalid_operation"
    assert again_code == "invalid_operation"
    assert statuses == ["completed"]


def test_builder_errors_are_validation_errors_and_fail_the_run() -> None:
    async def scenario() -> tuple[str, str]:
        async with open_async_store("memory://") as store:
            session = await _session(store)
            recorder = store.record_run(session.id)
            with pytest.raises(AgentSessionsError) as caught:
                async with recorder as run:
                    run.tool_result("call_unknown", "output")
            return caught.value.code, (await store.get_run(recorder.run_id)).status

    assert asyncio.run(scenario()) == ("validation_error", "failed")
