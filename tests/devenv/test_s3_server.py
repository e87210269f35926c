"""The local S3-compatible server (kubevox_devenv.s3: S3Proxy on its filesystem backend) is a real
one: what the minio client stores comes back byte for byte with its metadata, lands as a file
under the server's basedir, and a request signed with the wrong secret key is refused. Its
``LastModified`` is the file's mtime, so a test can age a recording by setting the mtime back."""

from __future__ import annotations

import io
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kubevox_devenv.procs import is_alive
from kubevox_devenv.s3 import S3Server
from minio.error import S3Error
from minio.helpers import DictType

AUDIO = bytes(range(256)) * 64 + b"\x00\xff" * 1000  # 18 kB, every byte value


def bucket_name() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


def put(server: S3Server, bucket: str, key: str, data: bytes, **meta: str) -> None:
    """Upload ``data`` as an Ogg recording; ``meta`` goes as ``x-amz-meta-*`` headers."""
    metadata: DictType = dict(meta)
    server.client().put_object(
        bucket, key, io.BytesIO(data), len(data), content_type="audio/ogg", metadata=metadata
    )


def test_put_read_back_list_and_remove(s3_server: S3Server) -> None:
    bucket = bucket_name()
    s3_server.make_bucket(bucket)
    client = s3_server.client()
    assert client.bucket_exists(bucket)
    put(s3_server, bucket, "calls/agent-a/c1.ogg", AUDIO, **{"call-id": "c1", "agent": "agent-a"})
    put(s3_server, bucket, "calls/agent-a/c2.ogg", b"second")
    put(s3_server, bucket, "calls/agent-b/c3.ogg", b"third")

    response = client.get_object(bucket, "calls/agent-a/c1.ogg")
    try:
        assert response.read() == AUDIO
    finally:
        response.close()
        response.release_conn()
    stat = client.stat_object(bucket, "calls/agent-a/c1.ogg")
    assert stat.size == len(AUDIO)
    assert stat.content_type == "audio/ogg"
    assert stat.metadata is not None
    assert stat.metadata["x-amz-meta-call-id"] == "c1"
    assert stat.metadata["x-amz-meta-agent"] == "agent-a"

    listed = client.list_objects(bucket, prefix="calls/agent-a/", recursive=True)
    assert sorted(o.object_name for o in listed if o.object_name) == [
        "calls/agent-a/c1.ogg",
        "calls/agent-a/c2.ogg",
    ]
    folders = client.list_objects(bucket, prefix="calls/")
    assert sorted(o.object_name for o in folders if o.object_name) == [
        "calls/agent-a/",
        "calls/agent-b/",
    ]

    client.remove_object(bucket, "calls/agent-a/c1.ogg")
    with pytest.raises(S3Error) as gone:
        client.stat_object(bucket, "calls/agent-a/c1.ogg")
    assert gone.value.code == "NoSuchKey"
    remaining = client.list_objects(bucket, recursive=True)
    assert sorted(o.object_name for o in remaining if o.object_name) == [
        "calls/agent-a/c2.ogg",
        "calls/agent-b/c3.ogg",
    ]


def test_an_object_is_a_file_under_basedir(s3_server: S3Server) -> None:
    bucket = bucket_name()
    s3_server.make_bucket(bucket)
    s3_server.make_bucket(bucket)  # again: nothing to do
    assert (s3_server.basedir / bucket).is_dir()
    put(s3_server, bucket, "calls/2026/c1.ogg", AUDIO)

    path = s3_server.basedir / bucket / "calls" / "2026" / "c1.ogg"
    assert path.read_bytes() == AUDIO
    s3_server.client().remove_object(bucket, "calls/2026/c1.ogg")
    assert not path.exists()


def test_a_wrong_secret_key_is_refused(s3_server: S3Server) -> None:
    bucket = bucket_name()
    s3_server.make_bucket(bucket)
    wrong = s3_server.client(secret_key="not-" + s3_server.secret_key)

    with pytest.raises(S3Error) as put_refused:
        wrong.put_object(bucket, "intruder.ogg", io.BytesIO(b"x"), 1)
    assert put_refused.value.code == "SignatureDoesNotMatch"
    with pytest.raises(S3Error) as list_refused:
        list(wrong.list_objects(bucket))
    assert list_refused.value.code == "SignatureDoesNotMatch"
    assert not (s3_server.basedir / bucket / "intruder.ogg").exists()
    assert list(s3_server.client().list_objects(bucket)) == []


def test_an_unknown_access_key_is_refused(s3_server: S3Server) -> None:
    from minio import Minio

    bucket = bucket_name()
    s3_server.make_bucket(bucket)
    stranger = Minio(
        s3_server.netloc,
        access_key="someone-else",
        secret_key=s3_server.secret_key,
        secure=False,
        region=s3_server.region,
    )
    # A GET: the error's code is in its body (a HEAD's 403 has none, minio says AccessDenied).
    with pytest.raises(S3Error) as refused:
        list(stranger.list_objects(bucket))
    assert refused.value.code == "InvalidAccessKeyId"


def test_last_modified_follows_the_files_mtime(s3_server: S3Server) -> None:
    bucket = bucket_name()
    s3_server.make_bucket(bucket)
    put(s3_server, bucket, "old.ogg", b"old")
    put(s3_server, bucket, "new.ogg", b"new")
    client = s3_server.client()
    now = datetime.now(UTC)
    fresh = client.stat_object(bucket, "old.ogg").last_modified
    assert fresh is not None
    assert abs(fresh - now) < timedelta(minutes=2)

    aged = time.time() - timedelta(days=40).total_seconds()
    os.utime(s3_server.basedir / bucket / "old.ogg", (aged, aged))

    stat = client.stat_object(bucket, "old.ogg")
    assert stat.last_modified is not None
    assert abs(stat.last_modified - (now - timedelta(days=40))) < timedelta(minutes=2)
    listed = {o.object_name: o.last_modified for o in client.list_objects(bucket)}
    assert listed["old.ogg"] is not None
    assert listed["new.ogg"] is not None
    assert abs(listed["old.ogg"] - stat.last_modified) < timedelta(seconds=1)
    assert listed["new.ogg"] - listed["old.ogg"] > timedelta(days=39)


def test_a_given_basedir_outlives_the_server(tmp_path: Path) -> None:
    """A server of its own: it is stopped here, which the session's must not be."""
    basedir = tmp_path / "objects"
    with S3Server(host="127.0.0.1", basedir=basedir) as server:
        assert server.endpoint == f"http://127.0.0.1:{server.port}"
        assert server.running()
        pid = server.pid
        assert pid is not None
        server.make_bucket("kept")
        put(server, "kept", "c1.ogg", AUDIO)
        run_dir = server.run_dir
        assert server.log.is_file()
    assert not is_alive(pid)
    assert not run_dir.exists()
    assert (basedir / "kept" / "c1.ogg").read_bytes() == AUDIO
