"""Counting what clients do: request windows (the `limits` library) and stream slots (leases).

Both count in Redis when it is configured, so every process sees the same numbers, and in this process's
memory otherwise. Redis is a fast path here too: while it is unreachable both fall back to memory."""
