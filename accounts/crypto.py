"""Secrets at rest: API secret keys are stored encrypted with a key derived from SECRET_KEY."""
from __future__ import annotations

import base64
import functools
import secrets

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


@functools.lru_cache(maxsize=4)
def _fernet(secret_key: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"nubo-secrets-at-rest", info=b"v1").derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(plaintext: str) -> str:
    return _fernet(settings.SECRET_KEY).encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    return _fernet(settings.SECRET_KEY).decrypt(token.encode()).decode()


def new_api_key() -> str:
    """CloudStack's format: 64 random bytes, base64url without padding (86 characters)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(64)).rstrip(b"=").decode()


def new_session_key() -> str:
    """CloudStack's CSRF session key: 20 random bytes, base64url without padding (27 chars)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(20)).rstrip(b"=").decode()
