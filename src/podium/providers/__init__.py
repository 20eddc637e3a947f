"""Provider adapters: one module per API family; see ``registry.py``."""
