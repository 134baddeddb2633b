"""Scale-out by enterprise: which shard owns an enterprise (stable across processes/hosts)."""

from __future__ import annotations

import zlib

from hazmon.errors import ConfigError


def parse_shard(text: str) -> tuple[int, int]:
    """Parse ``K/N`` (0 <= K < N)."""
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard must look like K/N (e.g. 0/2), got {text!r}") from None
    if not (n >= 1 and 0 <= k < n):
        raise ConfigError(f"--shard {text}: need 0 <= K < N")
    return k, n


def shard_of(enterprise: str, n: int) -> int:
    """The shard of an enterprise: crc32 of its code mod N (Python's hash() is per-process)."""
    return zlib.crc32(enterprise.encode("utf-8")) % n


def owns(shard: tuple[int, int] | None, enterprise: str) -> bool:
    """Whether this process (None = unsharded) handles the enterprise."""
    return shard is None or shard_of(enterprise, shard[1]) == shard[0]
