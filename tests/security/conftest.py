"""The hostile-tenant suite shares the sandbox fixtures (temp base dirs, both isolation modes)."""

from tests.sandboxes.conftest import base_dir, make_backend, mode  # noqa: F401
