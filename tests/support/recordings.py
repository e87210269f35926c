"""A call recording read back: its channels and how loud each is (both sides recorded)."""

from __future__ import annotations

import io

import av
import numpy as np
from minio import Minio
from minio.error import S3Error


def channel_levels(data: bytes) -> tuple[int, list[float]]:
    """An audio file's channel count and each channel's RMS level (0..1)."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        channels = stream.codec_context.channels
        blocks = [f.to_ndarray() for f in container.decode(stream)]
    samples = np.concatenate(blocks, axis=1)  # planar float: (channels, samples)
    return channels, [float(np.sqrt(np.mean(np.square(c)))) for c in samples]


def stored(client: Minio, bucket: str, prefix: str) -> tuple[str, bytes] | None:
    """The name and bytes of the one object under ``prefix``, once it can be read whole (a
    server may list an object a moment before it serves it); None until then."""
    names = [o.object_name for o in client.list_objects(bucket, prefix=prefix, recursive=True)]
    if len(names) != 1 or names[0] is None:
        return None
    try:
        response = client.get_object(bucket, names[0])
    except S3Error:
        return None
    try:
        return names[0], bytes(response.read())
    finally:
        response.close()
        response.release_conn()
