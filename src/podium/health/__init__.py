"""Provider health: request statistics now; probes and circuit breakers build on them."""
