"""The real services some tests need (Redis on loopback): fail under CI when absent, skip elsewhere."""

from __future__ import annotations

import os
import socket

import pytest

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_reachable() -> bool:
    """Whether the loopback Redis answers."""
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


def require_redis() -> None:
    """Fail under CI, skip elsewhere, when Redis is down."""
    if not redis_reachable():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("Redis at 127.0.0.1:6379 is required under CI")
        pytest.skip("Redis at 127.0.0.1:6379 is not reachable; start it to run this test")
