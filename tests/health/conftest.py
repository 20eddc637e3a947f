from tests.health.stores import stores

__all__ = ["stores"]
