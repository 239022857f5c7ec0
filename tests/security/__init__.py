"""Hostile-tenant suite: each attack runs from inside a real sandbox and must fail."""
