"""Cache-aside for catalog reads: Redis first, Postgres on a miss, Postgres alone when Redis fails."""

import logging
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from .metrics import CACHE_ERRORS, CACHE_HITS, CACHE_MISSES

log = logging.getLogger(__name__)

# Short timeouts and no retries: a slow or dead Redis must cost a read little before it falls back.
REDIS_TIMEOUT_SECONDS = 0.25


def create_redis(url: str) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        url,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 0),
    )


class Cache:
    """Caches serialized JSON bodies under a key for `ttl_seconds`; a TTL of 0 turns caching off."""

    def __init__(self, redis: aioredis.Redis, ttl_seconds: int) -> None:
        self._redis = redis
        self._ttl = ttl_seconds

    async def get_or_load(self, cache: str, key: str, load: Callable[[], Awaitable[bytes]]) -> bytes:
        """Return the cached body for `key`, or `load()` it and cache it; `cache` labels the metrics."""
        if self._ttl == 0:
            return await load()
        try:
            body = await self._redis.get(key)
        except RedisError as exc:
            CACHE_ERRORS.labels(cache).inc()
            log.debug("cache read failed", extra={"cache": cache, "error": repr(exc)})
            return await load()
        if body is not None:
            CACHE_HITS.labels(cache).inc()
            return body
        CACHE_MISSES.labels(cache).inc()
        body = await load()
        try:
            await self._redis.set(key, body, ex=self._ttl)
        except RedisError as exc:
            CACHE_ERRORS.labels(cache).inc()
            log.debug("cache write failed", extra={"cache": cache, "error": repr(exc)})
        return body
