"""Recordings the storage did not take at their call's end (agent_runtime/recording/spool.py):
kept in the worker's spool and uploaded again, against a real S3-compatible server (S3Proxy)
that is down, then back. tests/e2e/test_recording.py proves it through a real worker."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubevox_api.voiceagent_recording import (
    STORAGE_ACCESS_KEY_ENV,
    STORAGE_SECRET_KEY_ENV,
    RecordingStorage,
)
from kubevox_devenv.s3 import S3Server

from agent_runtime.callrecord import CallRecord
from agent_runtime.recording import CallRecording, spool_uploads
from agent_runtime.recording.spool import SPOOL_ENV, Spool, Spooled, SpoolUploads, spool_dir
from agent_runtime.recording.storage import CALL_ID_META, RecordingStore
from tests.support.recordings import stored
from tests.support.runtime import make_config
from tests.support.waits import until

BUCKET = "spooled"


@pytest.fixture
def s3() -> Iterator[S3Server]:
    """A server of this module's own: these tests stop and restart it."""
    with S3Server() as server:
        server.make_bucket(BUCKET)
        yield server


def _store(s3: S3Server) -> RecordingStore:
    storage = RecordingStorage.model_validate(
        {
            "endpoint": s3.endpoint,
            "bucket": BUCKET,
            "accessKeyRef": {"name": "s3", "key": "access"},
            "secretKeyRef": {"name": "s3", "key": "secret"},
        }
    )
    env = {STORAGE_ACCESS_KEY_ENV: s3.access_key, STORAGE_SECRET_KEY_ENV: s3.secret_key}
    return RecordingStore(storage, "clinic", "front-desk", env)


def _recording(directory: Path, size: int = 4096) -> Path:
    path = directory / f"kubevox-recording-{uuid.uuid4().hex[:8]}.ogg"
    path.write_bytes(b"OggS" + bytes(size - 4))
    return path


def test_the_spool_holds_whole_recordings_each_agent_its_own(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    upload = Spooled("calls/clinic/front-desk/2026-12-02/c1.ogg", "c1", "+15550100")
    source = _recording(tmp_path)
    spool.keep(source, upload)
    assert not source.exists()  # moved, not copied
    ((path, pending),) = spool.pending()
    assert pending == upload
    assert path.read_bytes().startswith(b"OggS")
    # A recording whose metadata is not written yet, or is unreadable, is not pending.
    (spool.directory / "c2.ogg").write_bytes(b"OggS")
    (spool.directory / "c2.json.part").write_text("{")
    (spool.directory / "c3.ogg").write_bytes(b"OggS")
    (spool.directory / "c3.json").write_text("not json")
    assert [u.call_id for _, u in spool.pending()] == ["c1"]
    spool.done("c1")
    assert spool.pending() == []
    assert not path.exists()
    # Each agent's spool is its own, under one root.
    env = {"KUBEVOX_RECORDING_SPOOL": str(tmp_path / "root")}
    assert spool_dir("clinic", "front-desk", env) == tmp_path / "root" / "clinic" / "front-desk"
    assert spool_dir("clinic", "front-desk", env) != spool_dir("clinic", "billing", env)


def test_a_full_spool_refuses_a_recording_rather_than_fill_the_pod(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", max_bytes=10_000)
    spool.keep(_recording(tmp_path, 6000), Spooled("a.ogg", "a", None))
    with pytest.raises(OSError, match="the spool is full"):
        spool.keep(_recording(tmp_path, 6000), Spooled("b.ogg", "b", None))
    assert [u.call_id for _, u in spool.pending()] == ["a"]


async def test_spooled_recordings_reach_the_storage_once_it_is_back(
    tmp_path: Path, s3: S3Server
) -> None:
    spool = Spool(tmp_path / "spool")
    name = "calls/clinic/front-desk/2026-12-02/c9.ogg"
    spool.keep(_recording(tmp_path), Spooled(name, "c9", None))
    uploads = SpoolUploads(spool, _store(s3), ("front-desk", "clinic"))
    s3.stop()
    stop = asyncio.Event()
    retries = asyncio.create_task(uploads.run(stop))
    try:
        await until("a refused try", lambda: uploads.backoff.failures >= 1, 60)
        assert spool.pending(), "a refused recording stays in the spool"
        s3.start()
        in_bucket = lambda: stored(s3.client(), BUCKET, name) is not None  # noqa: E731
        await until("the recording in the bucket", in_bucket, 90)
        await until("the spool emptied", lambda: not spool.pending(), 10)
    finally:
        stop.set()
        await asyncio.wait_for(retries, 30)
    assert s3.client().stat_object(BUCKET, name).metadata[f"x-amz-meta-{CALL_ID_META}"] == "c9"


async def test_what_the_storage_never_took_is_tried_at_exit_and_named(
    tmp_path: Path, s3: S3Server, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path / "spool")
    spool.keep(_recording(tmp_path), Spooled("x.ogg", "c-left", None))
    s3.stop()
    stop = asyncio.Event()
    stop.set()  # the worker leaves at once: one pass, then the last
    with caplog.at_level(logging.ERROR, logger="kubevox.recording"):
        await SpoolUploads(spool, _store(s3), ("front-desk", "clinic")).run(stop)
    left = [r for r in caplog.records if r.getMessage() == "recording left in the spool"]
    assert [getattr(r, "call_id", None) for r in left] == ["c-left"]
    assert spool.pending()  # still there for the next start of a worker on this volume


def test_a_call_s_job_and_the_worker_s_parent_share_the_agent_s_spool(tmp_path: Path) -> None:
    storage = {
        "endpoint": "http://127.0.0.1:9",
        "bucket": BUCKET,
        "accessKeyRef": {"name": "s3", "key": "access"},
        "secretKeyRef": {"name": "s3", "key": "secret"},
    }
    recording = {"notice": "This call may be recorded.", "storage": storage}
    config = make_config({"recording": recording}, name="front-desk")
    env = {
        STORAGE_ACCESS_KEY_ENV: "access",
        STORAGE_SECRET_KEY_ENV: "secret",
        SPOOL_ENV: str(tmp_path),
    }
    record = CallRecord.of(config, "c1", "room-1", "abc")
    job = CallRecording.of(config, record, env)
    parent = spool_uploads(config, env)
    assert job is not None
    assert parent is not None
    assert job.spool.directory == parent.spool.directory == tmp_path / "clinic" / "front-desk"
    assert job.store.prefix == parent.store.prefix
    assert parent.labels == ("front-desk", "clinic")
    unrecorded = make_config(name="front-desk")
    assert spool_uploads(unrecorded, env) is None
    assert CallRecording.of(unrecorded, record, env) is None
