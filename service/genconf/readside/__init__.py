"""One change stream -> one in-memory model: multiwatcher, cache, waiters, health."""
