"""The hostile-tenant suite shares the sandbox fixtures (temp base dirs, both isolation modes) and the sandbox
API's `runplane serve` (client, and through it alice and bob)."""

from tests.sandbox_api.conftest import client, sbx  # noqa: F401
from tests.sandboxes.conftest import base_dir, make_backend, mode  # noqa: F401
