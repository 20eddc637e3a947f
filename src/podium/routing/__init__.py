"""Routing: which providers serve a request, in what order, and failover between them."""
