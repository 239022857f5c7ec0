"""The pure parts: webhook signatures, plan configuration, key encryption, provider event interpretation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path

import pytest

from runplane.billing.crypto import DecryptionFailed, SecretBox, key_from_setting, mask_secret, secret_box
from runplane.billing.plans import DEFAULT_PLANS, plan_book
from runplane.billing.polar import PolarProvider
from runplane.billing.providers import WebhookEvent
from runplane.billing.signatures import SignatureError, sign_standard, sign_stripe, verify_standard, verify_stripe
from runplane.billing.stripe import StripeProvider
from runplane.config import Settings

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
NOW = 1_700_000_000


def test_standard_webhook_signature_matches_the_spec() -> None:
    body = b'{"type":"subscription.active"}'
    expected = base64.b64encode(
        hmac.new(b"0123456789abcdef0123456789abcdef", b"msg_1.1700000000." + body, hashlib.sha256).digest()
    ).decode()
    assert sign_standard(SECRET, "msg_1", NOW, body) == "v1," + expected
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(NOW), "webhook-signature": "v1,bm9wZQ== v1," + expected}
    assert verify_standard(SECRET, headers, body, now=NOW + 299, tolerance=300) == "msg_1"  # any listed signature
    with pytest.raises(SignatureError) as stale:
        verify_standard(SECRET, headers, body, now=NOW + 301, tolerance=300)
    assert not stale.value.malformed
    with pytest.raises(SignatureError):
        verify_standard(SECRET, {**headers, "webhook-id": "msg_2"}, body, now=NOW, tolerance=300)
    with pytest.raises(SignatureError) as missing:
        verify_standard(SECRET, {"webhook-id": "msg_1"}, body, now=NOW, tolerance=300)
    assert missing.value.malformed


def test_polar_style_raw_secret_is_used_as_bytes() -> None:
    headers = {
        "webhook-id": "m",
        "webhook-timestamp": str(NOW),
        "webhook-signature": sign_standard("raw-polar-secret", "m", NOW, b"{}"),
    }
    assert verify_standard("raw-polar-secret", headers, b"{}", now=NOW, tolerance=300) == "m"


def test_stripe_signature() -> None:
    body = b'{"id":"evt_1"}'
    header = sign_stripe("whsec_s", NOW, body)
    assert header == f"t={NOW},v1=" + hmac.new(b"whsec_s", f"{NOW}.".encode() + body, hashlib.sha256).hexdigest()
    verify_stripe("whsec_s", header + ",v0=ignored", body, now=NOW, tolerance=300)
    for bad in (header.replace(f"t={NOW}", f"t={NOW + 1}"), header[:-1] + "0", "t=abc,v1=x"):
        with pytest.raises(SignatureError):
            verify_stripe("whsec_s", bad, body, now=NOW, tolerance=300)
    with pytest.raises(SignatureError):
        verify_stripe("whsec_s", header, body, now=NOW - 301, tolerance=300)


def test_plans_from_configuration(tmp_path: Path) -> None:
    assert [p.id for p in plan_book(Settings()).all()] == [p.id for p in DEFAULT_PLANS]
    raw = json.dumps(
        [
            {"id": "starter", "token_allowance": 10},
            {"id": "team", "price_cents": 900, "token_allowance": None, "stripe_id": "price_t"},
        ]
    )
    book = plan_book(Settings(billing_plans=raw, billing_default_plan="starter", polar_products=("team=prod_t",)))
    assert book.default.id == "starter" and book.get("team").token_allowance is None  # type: ignore[union-attr]
    assert book.by_checkout_id("polar", "prod_t").id == "team" and book.by_checkout_id("stripe", "price_t").id == "team"  # type: ignore[union-attr]
    assert book.effective("removed-plan").id == "starter"
    path = tmp_path / "plans.json"
    path.write_text(raw)
    assert plan_book(Settings(billing_plans=str(path), billing_default_plan="team")).default.id == "team"
    for bad in (
        '{"id": "x"}',
        '[{"name": "no id"}]',
        '[{"id": "x", "token_allowance": -1}]',
        '[{"id": "a"}, {"id": "a"}]',
    ):
        with pytest.raises(ValueError):
            plan_book(Settings(billing_plans=bad, billing_default_plan="a"))
    with pytest.raises(ValueError):
        plan_book(Settings(billing_default_plan="gold"))
    with pytest.raises(ValueError):
        plan_book(Settings(stripe_prices=("pro",)))


def test_secret_box(tmp_path: Path) -> None:
    box = SecretBox(key_from_setting(base64.b64encode(b"k" * 32).decode()))
    sealed = box.encrypt("sk-or-v1-secret", "user-1")
    assert sealed != box.encrypt("sk-or-v1-secret", "user-1")  # a fresh nonce every time
    assert box.decrypt(sealed, "user-1") == "sk-or-v1-secret"
    for wrong in (
        (sealed, "user-2"),
        (sealed[:-4] + "AAAA", "user-1"),
        ("v9:" + sealed[3:], "user-1"),  # an unknown version
        (sealed.replace(":", ":0", 1), "user-1"),  # a key id not in the ring
        ("v1:%%%", "user-1"),
    ):
        with pytest.raises(DecryptionFailed):
            box.decrypt(*wrong)
    with pytest.raises(DecryptionFailed):
        SecretBox(key_from_setting("another passphrase")).decrypt(sealed, "user-1")
    generated = secret_box(Settings(data_dir=tmp_path))
    assert (tmp_path / "encryption-key").stat().st_mode & 0o777 == 0o600
    again = secret_box(Settings(data_dir=tmp_path, instance_id="other"))
    assert again.decrypt(generated.encrypt("x", "a"), "a") == "x"
    assert mask_secret("sk-or-v1-abcdefghijkl1234") == "sk-or-...1234"


def test_provider_events_become_subscription_changes() -> None:
    book = plan_book(Settings(polar_products=("pro=prod_pro",), stripe_prices=("premium=price_prem",)))
    polar = PolarProvider("http://polar", None, None, tolerance=300)
    data = {
        "id": "sub_1",
        "status": "active",
        "product_id": "prod_pro",
        "metadata": {"user_id": "u1"},
        "customer_id": "c1",
        "current_period_start": "2025-01-01T00:00:00Z",
        "current_period_end": "2025-02-01T00:00:00Z",
        "cancel_at_period_end": False,
    }
    change = polar.subscription_change(WebhookEvent("m1", "subscription.active", None, data), book)
    assert change is not None and (change.state, change.plan_id, change.user_ref, change.subscription_id) == (
        "active",
        "pro",
        "u1",
        "sub_1",
    )
    assert change.period_end is not None and change.period_end.month == 2
    revoked = polar.subscription_change(WebhookEvent("m2", "subscription.revoked", None, data), book)
    assert revoked is not None and revoked.state == "ended"
    assert (
        polar.subscription_change(
            WebhookEvent("m3", "subscription.updated", None, {**data, "status": "incomplete"}), book
        )
        is None
    )
    assert polar.subscription_change(WebhookEvent("m4", "checkout.created", None, data), book) is None

    stripe = StripeProvider("http://stripe", None, None, tolerance=300)
    sub = {
        "id": "sub_s",
        "status": "past_due",
        "customer": "cus_1",
        "metadata": {"user_id": "u2"},
        "items": {
            "data": [
                {
                    "id": "si_1",
                    "price": {"id": "price_prem"},
                    "current_period_start": 1735689600,
                    "current_period_end": 1738368000,
                }
            ]
        },
    }
    change = stripe.subscription_change(WebhookEvent("e1", "customer.subscription.updated", None, sub), book)
    assert change is not None and (change.state, change.plan_id, change.user_ref) == ("past_due", "premium", "u2")
    deleted = stripe.subscription_change(
        WebhookEvent("e2", "customer.subscription.deleted", None, {**sub, "status": "active"}), book
    )
    assert deleted is not None and deleted.state == "ended"
    one_off = stripe.subscription_change(
        WebhookEvent("e3", "checkout.session.completed", None, {"mode": "payment"}), book
    )
    assert one_off is None
