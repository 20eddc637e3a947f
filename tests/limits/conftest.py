from tests.state.stores import store

__all__ = ["store"]
