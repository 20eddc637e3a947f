"""The ``podium`` command line: one module per command group."""
