"""A call recording read back: its channels and how loud each is (both sides recorded)."""

from __future__ import annotations

import io

import av
import numpy as np


def channel_levels(data: bytes) -> tuple[int, list[float]]:
    """An audio file's channel count and each channel's RMS level (0..1)."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        channels = stream.codec_context.channels
        blocks = [f.to_ndarray() for f in container.decode(stream)]
    samples = np.concatenate(blocks, axis=1)  # planar float: (channels, samples)
    return channels, [float(np.sqrt(np.mean(np.square(c)))) for c in samples]
