"""A real local identity provider for external-issuer tests: a JWKS endpoint and a token signer.

Not a mock: uvicorn serves `/.well-known/jwks.json` on 127.0.0.1 (free port) from a background
thread, and the runplane server under test fetches it over TCP exactly as it would fetch Clerk's.
Keys are RSA keys generated here; `rotate()` publishes a new one (optionally dropping the old),
and `fetches` counts how often the document was downloaded.

    with FakeJWKSServer(issuer="https://clerk.test") as idp:
        token = idp.token(sub="user_1", aud="runplane-web")
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Self

import jwt
import uvicorn
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

JWKS_PATH = "/.well-known/jwks.json"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey = field(repr=False)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(kid=f"kid-{uuid.uuid4().hex[:12]}", private_key=rsa.generate_private_key(65537, 2048))

    @property
    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def jwk(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private_key.public_key()))
        return {**data, "kid": self.kid, "use": "sig", "alg": "RS256"}


class FakeJWKSServer:
    def __init__(self, *, issuer: str = "https://idp.runplane.test", audience: str | None = "runplane-tests") -> None:
        self.issuer = issuer
        self.audience = audience
        self.keys: list[SigningKey] = [SigningKey.generate()]
        # Raw entries appended to the document as they are (malformed or foreign keys real JWKS carry).
        self.extra_jwks: list[dict[str, Any]] = []
        self.fail_with: int | None = None  # an outage: answer this status instead of the document
        self.fetches = 0
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.app = Starlette(routes=[Route(JWKS_PATH, self._jwks, methods=["GET"])])

    # ---- test-facing API ---------------------------------------------------------------------

    @property
    def jwks_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{JWKS_PATH}"

    @property
    def current(self) -> SigningKey:
        """The key new tokens are signed with (the last one published)."""
        return self.keys[-1]

    def rotate(self, *, keep_old: bool = False) -> SigningKey:
        """Publish a fresh key; without keep_old the previous keys disappear from the document."""
        key = SigningKey.generate()
        self.keys = [*self.keys, key] if keep_old else [key]
        return key

    def token(
        self,
        sub: str = "user_ext_1",
        *,
        key: SigningKey | None = None,
        ttl: int = 300,
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """An RS256 token as the issuer would mint it; any claim can be overridden (None drops it)."""
        now = int(time.time())
        payload: dict[str, Any] = {"iss": self.issuer, "sub": sub, "iat": now, "nbf": now, "exp": now + ttl}
        if self.audience is not None:
            payload["aud"] = self.audience
        payload.update(claims)
        payload = {name: value for name, value in payload.items() if value is not None}
        signer = key or self.current
        return jwt.encode(
            payload, signer.private_key, algorithm="RS256", headers={"kid": signer.kid, **(headers or {})}
        )

    def hs256_with_public_key(self, **claims: Any) -> str:
        """Algorithm confusion: an HS256 token whose HMAC secret is the issuer's public key PEM.

        PyJWT refuses to use a PEM as an HMAC key, which is exactly the point: forge it by hand.
        """
        now = int(time.time())
        payload = {"iss": self.issuer, "sub": "attacker", "iat": now, "exp": now + 300, "aud": self.audience, **claims}
        header = {"alg": "HS256", "typ": "JWT", "kid": self.current.kid}
        return sign_hs256(header, payload, self.current.public_pem)

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))  # port 0: the OS picks a free port
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                sock.close()
                raise RuntimeError("fake JWKS server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(10)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ---- server side -------------------------------------------------------------------------

    async def _jwks(self, request: Request) -> Response:
        self.fetches += 1
        if self.fail_with is not None:
            return JSONResponse({"error": "unavailable"}, status_code=self.fail_with)
        document = {"keys": [*self.extra_jwks, *(key.jwk() for key in self.keys)]}
        return JSONResponse(document, headers={"Cache-Control": "max-age=300"})


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_hs256(header: dict[str, Any], payload: dict[str, Any], secret: bytes) -> str:
    """A compact JWS built by hand, for tokens no well-behaved library would produce."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def sign_rs256(header: dict[str, Any], payload: dict[str, Any], key: SigningKey) -> str:
    """RS256 by hand: lets a test put headers in a token that PyJWT would refuse to encode (a non-string kid)."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    signature = key.private_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url(signature)}"


def unsigned_token(payload: dict[str, Any], alg: str = "none") -> str:
    """`alg: none` (or any spelling of it) with an empty signature."""
    header = {"alg": alg, "typ": "JWT"}
    return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}."
