"""Redis connections for ingestion and retrieval: RESP2 (parsed here, the same on Redis Stack,
Redis 8 and Valkey), short timeouts, and a small retry that rides over a reconnect."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


def connect(
    url: str,
    *,
    socket_timeout: float = 5.0,
    connect_timeout: float = 2.0,
    retries: int = 2,
    max_connections: int = 32,
) -> aioredis.Redis:
    """A pooled async client; connections that died (e.g. a Redis restart) are replaced on use."""
    return aioredis.Redis.from_url(
        url,
        protocol=2,
        decode_responses=False,
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        socket_keepalive=True,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.02), retries),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        health_check_interval=30,
        max_connections=max_connections,
    )


async def command(client: aioredis.Redis, *args: Any) -> Any:
    """A raw command (FT.*); redis-py leaves ``execute_command`` untyped."""
    return await client.execute_command(*args)  # type: ignore[no-untyped-call]
