"""The recordings' storage (agent_runtime/recording/storage.py) and ``kubevox-agent recordings
expire``, against a real S3-compatible server (S3Proxy, which checks AWS signatures and reports
a file's time as its LastModified): uploads signed with the agent's key pair and refused with
another, objects named per agent and day, a phone caller's number kept only as an HMAC, expiry
by age. test_erase.py erases by call and by number."""

from __future__ import annotations

import json
import os
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kubevox_api.voiceagent_recording import (
    STORAGE_ACCESS_KEY_ENV,
    STORAGE_SECRET_KEY_ENV,
    RecordingStorage,
)
from kubevox_devenv.s3 import S3Server
from minio.error import S3Error

from agent_runtime.cli import main
from agent_runtime.recording.storage import RecordingStore
from tests.support.runtime import make_config

NUMBER = "+1 (555) 010-0100"


@pytest.fixture
def bucket(s3_server: S3Server) -> str:
    name = f"rec-{uuid.uuid4().hex[:8]}"
    s3_server.make_bucket(name)
    return name


def _recording_spec(s3: S3Server, bucket: str) -> dict[str, object]:
    return {
        "notice": "This call may be recorded. Is that all right?",
        "retentionDays": 30,
        "storage": {
            "endpoint": s3.endpoint,
            "bucket": bucket,
            "prefix": "calls/",
            "accessKeyRef": {"name": "s3", "key": "access"},
            "secretKeyRef": {"name": "s3", "key": "secret"},
        },
    }


def _env(s3: S3Server, secret: str | None = None) -> dict[str, str]:
    return {STORAGE_ACCESS_KEY_ENV: s3.access_key, STORAGE_SECRET_KEY_ENV: secret or s3.secret_key}


def _store(s3: S3Server, bucket: str, secret: str | None = None) -> RecordingStore:
    storage = RecordingStorage.model_validate(_recording_spec(s3, bucket)["storage"])
    return RecordingStore(storage, "clinic", "front-desk", _env(s3, secret))


@pytest.fixture
def audio(tmp_path: Path) -> Path:
    path = tmp_path / "call.ogg"
    path.write_bytes(b"OggS" + os.urandom(2048))
    return path


def _upload(store: RecordingStore, audio: Path, call_id: str, number: str | None = None) -> str:
    name = store.object_name(call_id, datetime(2026, 12, 1, 23, 59, tzinfo=UTC))
    store.upload(audio, name, call_id, number)
    return name


def _age(s3: S3Server, bucket: str, name: str, days: float) -> None:
    """Dates the object back on the server's disk (S3Proxy reports the file's time)."""
    then = time.time() - days * 86400
    os.utime(s3.basedir / bucket / name, (then, then))


def test_an_upload_is_named_per_agent_and_day_and_signed(
    s3_server: S3Server, bucket: str, audio: Path
) -> None:
    store = _store(s3_server, bucket)
    name = _upload(store, audio, "call-a", NUMBER)
    assert name == "calls/clinic/front-desk/2026-12-01/call-a.ogg"
    stat = s3_server.client().stat_object(bucket, name)
    assert stat.content_type == "audio/ogg"
    assert stat.metadata["x-amz-meta-call-id"] == "call-a"
    tag = stat.metadata["x-amz-meta-caller"]
    assert tag == store.caller_tag("+15550100100")  # the digits, however they were written
    assert "5550100100" not in json.dumps(dict(stat.metadata))  # the number itself: nowhere
    body = s3_server.client().get_object(bucket, name)
    try:
        assert body.read() == audio.read_bytes()
    finally:
        body.close()


def test_a_wrong_secret_key_uploads_nothing(s3_server: S3Server, bucket: str, audio: Path) -> None:
    with pytest.raises(S3Error) as refused:
        _upload(_store(s3_server, bucket, secret="not-the-key"), audio, "call-b")
    assert refused.value.code == "SignatureDoesNotMatch"
    assert list(s3_server.client().list_objects(bucket, recursive=True)) == []


def test_the_caller_tag_needs_the_key() -> None:
    """The same number under another key is another tag: without the storage's secret key the
    number cannot be found by trying every number."""
    spec = RecordingStorage.model_validate(
        {"endpoint": "http://s3:9000", "bucket": "bkt", "accessKeyRef": {"name": "s", "key": "a"},
         "secretKeyRef": {"name": "s", "key": "s"}}
    )  # fmt: skip
    one = RecordingStore(
        spec, "ns", "a", {STORAGE_ACCESS_KEY_ENV: "a", STORAGE_SECRET_KEY_ENV: "1"}
    )
    two = RecordingStore(
        spec, "ns", "a", {STORAGE_ACCESS_KEY_ENV: "a", STORAGE_SECRET_KEY_ENV: "2"}
    )
    assert one.caller_tag(NUMBER) != two.caller_tag(NUMBER)
    assert one.caller_tag(NUMBER) == one.caller_tag("+15550100100")


@pytest.fixture
def config_file(s3_server: S3Server, bucket: str, tmp_path: Path) -> Path:
    config = make_config({"recording": _recording_spec(s3_server, bucket)}, name="front-desk")
    path = tmp_path / "agent.json"
    path.write_text(config.model_dump_json(by_alias=True))
    return path


def _run(
    args: list[str], config: Path, s3: S3Server, capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict[str, object]]:
    os.environ.update(_env(s3))
    try:
        code = main(["recordings", "--config", str(config), *args])
    finally:
        for var in (STORAGE_ACCESS_KEY_ENV, STORAGE_SECRET_KEY_ENV):
            os.environ.pop(var, None)
    out = capsys.readouterr().out.strip().splitlines()[-1]
    return code, json.loads(out)


def test_expire_deletes_only_the_agents_recordings_past_retention(
    s3_server: S3Server,
    bucket: str,
    audio: Path,
    config_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = _store(s3_server, bucket)
    old, recent = _upload(store, audio, "call-old"), _upload(store, audio, "call-recent")
    _age(s3_server, bucket, old, 31)
    _age(s3_server, bucket, recent, 29)
    other = "calls/clinic/billing/2026-10-01/call-other.ogg"  # another agent's, as old
    s3_server.client().fput_object(bucket, other, str(audio))
    _age(s3_server, bucket, other, 90)

    code, out = _run(["expire"], config_file, s3_server, capsys)

    assert code == 0
    assert out["deleted"] == [old]
    assert out["retention_days"] == 30
    left = {o.object_name for o in s3_server.client().list_objects(bucket, recursive=True)}
    assert left == {recent, other}


def test_a_command_without_the_key_pair_says_which_variable(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for var in (STORAGE_ACCESS_KEY_ENV, STORAGE_SECRET_KEY_ENV):
        os.environ.pop(var, None)
    assert main(["recordings", "--config", str(config_file), "expire"]) == 2
    assert STORAGE_ACCESS_KEY_ENV in capsys.readouterr().err
