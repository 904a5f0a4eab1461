"""FileArtifactStore: the artifact contract, plus what only files on disk can show.

Containment (every key lands in one flat name inside the root), the on-disk layout,
operating-system failures, and atomicity under writers in threads and processes.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from urllib.parse import unquote, urlsplit

import artifact_workers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent_sessions import AgentSessionsError
from agent_sessions.artifacts import ArtifactStore, FileArtifactStore
from agent_sessions.artifacts.artifact_input import MAX_METADATA_BYTES
from agent_sessions.artifacts.file_store import file_name
from agent_sessions.testing.artifact_contract import ArtifactStoreContract

SPAWN = multiprocessing.get_context("spawn")
NAME = re.compile(r"[A-Za-z0-9_-]{1,32}_[0-9a-f]{64}")


def data_path(store: FileArtifactStore, key: str) -> Path:
    return store.root / file_name(key)


def sidecar(store: FileArtifactStore, key: str) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(Path(f"{data_path(store, key)}.meta.json").read_text())
    return loaded


def leftovers(root: Path) -> list[str]:
    """Temporary files a put left behind."""
    return [name for name in os.listdir(root) if name.endswith(".tmp")]


class TestFileArtifactStore(ArtifactStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> FileArtifactStore:
        return FileArtifactStore(tmp_path / "artifacts")

    def replace_stored_bytes(self, store: ArtifactStore, key: str, data: bytes) -> None:
        assert isinstance(store, FileArtifactStore)
        data_path(store, key).write_bytes(data)


# root and layout ----------------------------------------------------------------------


@pytest.mark.parametrize("root", ["", None])
def test_root_is_required(root: str) -> None:
    with pytest.raises(AgentSessionsError) as caught:
        FileArtifactStore(root)
    assert caught.value.code == "validation_error"
    assert caught.value.message == "root directory is required"


def test_root_is_created_with_its_parents(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path / "a" / "b" / "c")
    assert store.root == (tmp_path / "a" / "b" / "c").resolve()
    assert store.root.is_dir()


def test_a_root_that_cannot_be_a_directory_is_storage_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(AgentSessionsError) as caught:
        FileArtifactStore(tmp_path / "file" / "root")
    assert caught.value.code == "storage_error"
    assert "cause" in caught.value.details


def test_names_are_a_readable_prefix_and_the_whole_hash() -> None:
    key = "patch_abc/../déf"
    digest = hashlib.sha256(key.encode()).hexdigest()
    assert file_name(key) == f"patch_abc____d__f_{digest}"
    assert file_name("k" * 100) == f"{'k' * 32}_{hashlib.sha256(b'k' * 100).hexdigest()}"


def test_storage_ref_is_the_file_uri_of_the_bytes(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path / "with space")
    ref = store.put("k", b"bytes")
    assert ref.storage_backend == "file"
    assert ref.storage_ref.startswith("file:///")
    path = Path(unquote(urlsplit(ref.storage_ref).path))
    assert path == data_path(store, "k")
    assert path.read_bytes() == b"bytes"


def test_sidecar_keeps_key_content_type_metadata_and_checksum(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path)
    store.put("report", b"{}", content_type="application/json", metadata={"n": [1, 2]})
    assert sidecar(store, "report") == {
        "format": 1,
        "key": "report",
        "byte_size": 2,
        "checksum_sha256": hashlib.sha256(b"{}").hexdigest(),
        "content_type": "application/json",
        "metadata": {"n": [1, 2]},
    }


# containment ----------------------------------------------------------------------------


def test_metadata_is_bounded_as_on_s3(tmp_path: Path) -> None:
    """Metadata is bounded on every backend by what S3 can carry in its headers
    (issue 11, class 9: S3 refused a large one as a storage_error after the upload
    began, the file store took it): at the bound it is stored, past it refused before
    any byte is written. Non-ASCII counts as its JSON escape (``é`` is six bytes)."""
    store = FileArtifactStore(tmp_path)
    fits = {"m": "x" * (MAX_METADATA_BYTES - len('{"m": ""}'))}
    assert len(json.dumps(fits, sort_keys=True)) == MAX_METADATA_BYTES
    assert store.put("fits", b"x", metadata=fits).metadata == fits
    for over in ({"m": fits["m"] + "x"}, {"m": "é" * (MAX_METADATA_BYTES // 6)}):
        with pytest.raises(AgentSessionsError) as raised:
            store.put("over", b"x", metadata=over)
        assert raised.value.code == "validation_error"
        assert raised.value.details["field"] == "metadata"
        assert not store.exists("over")
    assert leftovers(tmp_path) == []


def test_traversal_keys_stay_inside_the_root(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path / "root")
    for key in ("../outside", "../../outside", "/tmp/outside", "a/../../outside", ".."):
        store.put(key, b"x")
    assert os.listdir(tmp_path) == ["root"]
    names = set(os.listdir(store.root)) - {".lock"}
    assert len(names) == 2 * 5
    assert all(NAME.fullmatch(name.removesuffix(".meta.json")) for name in names)


def test_the_longest_key_still_has_a_short_name(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path)
    longest = "é" * 512  # 1024 bytes in UTF-8, the limit
    ref = store.put(longest, b"long")
    assert store.get(longest) == b"long"
    assert len(Path(urlsplit(ref.storage_ref).path).name) == 32 + 1 + 64


@settings(max_examples=300, deadline=None)
@given(key=st.text())
def test_any_text_maps_inside_the_root_or_is_refused(key: str) -> None:
    refused = (
        key == ""
        or re.search("[\x00-\x1f\x7f-\x9f\ud800-\udfff]", key) is not None
        or len(key.encode("utf-8", "surrogatepass")) > 1024
    )
    if refused:
        with pytest.raises(AgentSessionsError) as caught:
            file_name(key)
        assert caught.value.code == "validation_error"
    else:
        name = file_name(key)
        assert NAME.fullmatch(name)
        assert (Path("/srv/artifacts") / name).parent == Path("/srv/artifacts")


@settings(max_examples=50, deadline=None)
@given(
    keys=st.lists(
        st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=99),
        unique=True,
    )
)
def test_distinct_keys_never_share_a_file(keys: list[str]) -> None:
    assert len({file_name(key) for key in keys}) == len(keys)


# failures -------------------------------------------------------------------------------


def test_an_unwritable_destination_is_storage_error_and_leaves_nothing(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path)
    data_path(store, "blocked").mkdir()  # a directory where the bytes should go
    with pytest.raises(AgentSessionsError) as caught:
        store.put("blocked", b"data")
    error = caught.value
    assert error.code == "storage_error"
    assert error.message == "Failed to write artifact: blocked"
    assert error.details["operation"] == "write"
    assert "Error" in error.details["cause"]
    assert leftovers(store.root) == []
    assert not store.exists("blocked")


def test_a_failing_source_keeps_the_old_bytes_and_leaves_nothing(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path)
    store.put("k", b"old")

    def failing() -> Iterator[bytes]:
        yield b"new "
        raise RuntimeError("source broke")

    with pytest.raises(RuntimeError, match="source broke"):
        store.put("k", failing())
    assert store.get("k") == b"old"
    assert leftovers(store.root) == []


def test_unreadable_sidecar_is_storage_error(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path)
    store.put("k", b"data")
    Path(f"{data_path(store, 'k')}.meta.json").write_text("{not json")
    with pytest.raises(AgentSessionsError) as caught:
        store.get("k")
    assert caught.value.code == "storage_error"
    assert caught.value.details["reason"] == "invalid_sidecar"


def test_bytes_missing_behind_a_sidecar_is_storage_error(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path)
    store.put("k", b"data")
    data_path(store, "k").unlink()
    with pytest.raises(AgentSessionsError) as caught:
        store.get("k")
    assert caught.value.code == "storage_error"
    assert "FileNotFoundError" in caught.value.details["cause"]


def test_a_read_error_is_storage_error(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path)
    store.put("k", b"data")
    sidecar_path = Path(f"{data_path(store, 'k')}.meta.json")
    sidecar_path.unlink()
    sidecar_path.mkdir()  # reading a directory fails with IsADirectoryError
    with pytest.raises(AgentSessionsError) as caught:
        store.get("k")
    assert caught.value.code == "storage_error"
    assert caught.value.details["operation"] == "read"


# atomicity ------------------------------------------------------------------------------


def _assert_whole_and_consistent(store: FileArtifactStore, key: str, payloads: list[bytes]) -> None:
    data = store.get(key)  # verifies the bytes against the sidecar's checksum
    assert data in payloads
    assert sidecar(store, key)["checksum_sha256"] == hashlib.sha256(data).hexdigest()
    assert sidecar(store, key)["metadata"] == {"writer": payloads.index(data)}
    assert leftovers(store.root) == []


def _read_until(
    store: FileArtifactStore, key: str, payloads: list[bytes], done: threading.Event
) -> int:
    """Read ``key`` until ``done``; every read must be one writer's whole payload."""
    reads = 0
    while not done.is_set():
        assert store.get(key) in payloads
        reads += 1
    return reads


def test_writer_threads_never_tear_an_artifact(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path)
    payloads = [artifact_workers.payload(seed, 512 * 1024) for seed in range(6)]
    store.put("shared", payloads[0], metadata={"writer": 0})
    done = threading.Event()

    def write(seed: int) -> None:
        for _ in range(15):
            store.put(
                "shared", artifact_workers.in_chunks(payloads[seed]), metadata={"writer": seed}
            )

    with ThreadPoolExecutor(max_workers=8) as pool:
        readers = [pool.submit(_read_until, store, "shared", payloads, done) for _ in range(2)]
        writers = [pool.submit(write, seed) for seed in range(6)]
        for writer in writers:
            writer.result()
        done.set()
        assert all(reader.result() > 0 for reader in readers)
    _assert_whole_and_consistent(store, "shared", payloads)


def test_writer_processes_never_tear_an_artifact(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path)
    size, seeds = 2 * 1024 * 1024, range(4)
    payloads = [artifact_workers.payload(seed, size) for seed in seeds]
    store.put("shared", payloads[0], metadata={"writer": 0})
    done = threading.Event()
    with ProcessPoolExecutor(max_workers=4, mp_context=SPAWN) as processes:
        writers = [
            processes.submit(
                artifact_workers.write_repeatedly, str(tmp_path), "shared", seed, size, 8
            )
            for seed in seeds
        ]
        with ThreadPoolExecutor(max_workers=1) as reader_pool:
            reader = reader_pool.submit(_read_until, store, "shared", payloads, done)
            assert sorted(writer.result(timeout=120) for writer in writers) == list(seeds)
            done.set()
            assert reader.result() > 0
    _assert_whole_and_consistent(store, "shared", payloads)
