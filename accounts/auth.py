"""Authentication: password logins (UI, API `login`, Django admin) with lockout after repeated
failures, and API-key signatures. Both produce the same caller: a User with its account,
domain and role loaded."""
from __future__ import annotations

import datetime as dt
import hmac
import logging
import time

from django.contrib.auth.backends import BaseBackend
from django.db.models import F
from django.db.models.base import ModelState
from django.utils import timezone

from portal import config
from portal.api import signing
from portal.cache import committed_view, track
from portal.errors import AccountError, Unauthorized

from . import crypto
from .access import ACCESS
from .choices import AccountState, UserState
from .models import Account, Domain, User

log = logging.getLogger(__name__)

BAD_CREDENTIALS = "unable to verify user credentials and/or request signature"


def caller_queryset():
    return User.objects.select_related("account__domain", "account__role", "domain")


def normalise_domain_path(path: str | None) -> str:
    """CloudStack's login `domain`: "/", "ROOT", "/corp/dev", "corp/dev/" … → "/corp/dev/"."""
    text = (path or "/").strip()
    if text.upper() in ("ROOT", "/ROOT", "ROOT/", "/ROOT/"):
        return "/"
    if text.upper().startswith("ROOT/"):
        text = text[4:]
    parts = [p for p in text.split("/") if p]
    return "/" + "".join(p + "/" for p in parts) if parts else "/"


def find_login_domain(domain_path: str | None, domain_uuid: str | None) -> Domain | None:
    if domain_uuid:
        return Domain.objects.filter(uuid=domain_uuid).first() if signing_uuid_ok(domain_uuid) else None
    return Domain.objects.filter(path=normalise_domain_path(domain_path)).first()


def signing_uuid_ok(value: str) -> bool:
    from portal.api.params import UUID_RE

    return bool(UUID_RE.match(value))


def password_login(username: str, password: str, *, domain_path: str | None = None,
                   domain_uuid: str | None = None) -> User:
    """Check a password login. Raises AccountError (531) with a sentence for the user."""
    domain = find_login_domain(domain_path, domain_uuid)
    where = domain_uuid or normalise_domain_path(domain_path)
    failure = AccountError(f"Failed to authenticate user {username} in domain {where}; please provide valid credentials")
    if domain is None:
        raise failure
    user = caller_queryset().filter(domain=domain, username=username).first()
    if user is None or user.account.name == "system":
        raise failure
    now = timezone.now()
    if user.login_locked_until and user.login_locked_until > now:
        seconds = int((user.login_locked_until - now).total_seconds()) + 1
        raise AccountError(f"Too many failed login attempts for user {username}; try again in {seconds} seconds")
    if not user.check_password(password):
        allowed = config.get_value("incorrect.login.attempts.allowed")
        User.objects.filter(pk=user.pk).update(failed_login_attempts=F("failed_login_attempts") + 1)
        user.refresh_from_db(fields=["failed_login_attempts"])
        if user.failed_login_attempts >= allowed:
            lock = now + dt.timedelta(seconds=config.get_value("login.lockout.seconds"))
            User.objects.filter(pk=user.pk).update(login_locked_until=lock, failed_login_attempts=0)
            log.warning("logins for user %s in %s locked after %d failures", username, domain.display_path, allowed)
        raise failure
    if user.state != UserState.ENABLED:
        raise AccountError(f"User {username} in domain {domain.display_path} is {user.state}; ask an administrator to enable it")
    if user.account.state != AccountState.ENABLED:
        raise AccountError(f"Account {user.account.name} is {user.account.state}; ask an administrator to enable it")
    if user.failed_login_attempts or user.login_locked_until:
        User.objects.filter(pk=user.pk).update(failed_login_attempts=0, login_locked_until=None)
    return user


def check_caller_enabled(user: User) -> None:
    if user.state != UserState.ENABLED or user.account.state != AccountState.ENABLED:
        raise Unauthorized(BAD_CREDENTIALS)


def api_key_user(raw: dict[str, str]) -> User:
    """Verify a signed request (spec §2.1) and return its user; Unauthorized on any failure."""
    lowered = {k.lower(): v for k, v in raw.items()}
    api_key = lowered.get("apikey")
    signature = lowered.get("signature")
    if not api_key or not signature:
        raise Unauthorized(BAD_CREDENTIALS)
    enforce = config.get_value("enforce.post.requests.and.timestamps")
    version = lowered.get("signatureversion")
    if version == "3" or enforce:
        if version != "3":
            raise Unauthorized(BAD_CREDENTIALS)
        expires = signing.parse_expires(lowered.get("expires", ""))
        now = timezone.now()
        if expires is None or expires < now:
            raise Unauthorized(BAD_CREDENTIALS)
        if enforce and expires > now + dt.timedelta(minutes=15):
            raise Unauthorized(BAD_CREDENTIALS)
    found = CALLERS.get(api_key)
    if found is None:
        # Spend the same HMAC work so a missing key is not distinguishable by timing.
        signing.verify(raw, "x" * 86, signature)
        raise Unauthorized(BAD_CREDENTIALS)
    user, secret = found
    if not signing.verify(raw, secret, signature):
        raise Unauthorized(BAD_CREDENTIALS)
    check_caller_enabled(user)
    return user


class CallerCache:
    """API key -> the caller (user, account, role, domain) and its decrypted secret, kept in
    process memory against the ACCESS generation (accounts.access).

    Signed requests are most of the API's traffic. Every change to users, keys, accounts, domains,
    roles or role rules, made by any process, replaces the generation's token in Redis, so the
    next request anywhere reads its caller from the database again: a disabled or locked user or
    account, a deleted user, a regenerated key or a changed role holds from that request on. A
    request whose caller is kept costs no query, and no Redis read while the process holds a lease
    on the pushed generation (portal.generation_push; one GET otherwise); the rows are kept only
    when read outside a transaction (committed state), and nothing is kept without Redis. Each
    request gets new model instances built from the kept values, so what a request does to its
    caller object stays in that request."""

    def __init__(self, generation, max_age: float = 60.0, size: int = 10000):
        self.generation = generation
        self.max_age = max_age  # a backstop only: the generation is what keeps callers fresh
        self.size = size
        # api key -> (token, loaded at, ((model, field values) of user, account, role, domain), secret)
        self._entries: dict[str, tuple[bytes, float, tuple, str]] = {}

    def get(self, api_key: str) -> tuple[User, str] | None:
        token = self.generation.current()
        now = time.monotonic()
        entry = self._entries.get(api_key)
        if entry is None or token is None or entry[0] != token or now - entry[1] > self.max_age:
            entry = self._load(api_key, token, now)
            if entry is None:
                return None
        return self._caller(entry[2]), entry[3]

    def _load(self, api_key: str, token: bytes | None, now: float):
        user = next(iter(caller_queryset().filter(api_key=api_key).order_by()[:1]), None)
        if user is None or not user.secret_key_encrypted:
            self._entries.pop(api_key, None)
            return None
        account = user.account
        rows = tuple((type(obj), {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields})
                     for obj in (user, account, account.role, account.domain))
        entry = (token, now, rows, crypto.decrypt(user.secret_key_encrypted))
        if token is not None and committed_view():
            if len(self._entries) >= self.size:
                self._entries.clear()
            self._entries[api_key] = entry
        return entry

    @staticmethod
    def _caller(rows: tuple) -> User:
        user, account, role, domain = (_instance(model, values) for model, values in rows)
        # The related objects are the kept rows the ids already name: cached as a query would.
        _LINKS[0].set_cached_value(account, role)
        _LINKS[1].set_cached_value(account, domain)
        _LINKS[2].set_cached_value(user, account)
        _LINKS[3].set_cached_value(user, domain)  # a user's domain is its account's (an invariant of the model)
        return user

    def invalidate(self) -> None:
        self._entries.clear()


def _instance(model, values: dict):
    """A model instance from its field values, as unpickling makes one (no __init__: the values
    are already Python values)."""
    obj = model.__new__(model)
    obj.__dict__.update(values)
    state = obj._state = ModelState()
    state.adding = False
    state.db = "default"
    return obj


_LINKS = (Account._meta.get_field("role"), Account._meta.get_field("domain"), User._meta.get_field("account"),
          User._meta.get_field("domain"))
CALLERS = CallerCache(ACCESS)
track(CALLERS)


def session_user(request, raw: dict[str, str]) -> User | None:
    """The logged-in user of this session, if the request proves it with the session key.

    The `sessionkey` parameter is required (it is what protects against cross-site requests);
    a `sessionkey` cookie, when sent, must match too."""
    if not request.user.is_authenticated:
        return None
    expected = request.session.get("sessionkey")
    given = next((v for k, v in raw.items() if k.lower() == "sessionkey"), None)
    if not expected or given is None or not hmac.compare_digest(expected.encode(), given.encode()):
        raise Unauthorized("unable to verify user credentials")
    cookie = request.COOKIES.get("sessionkey")
    if cookie is not None and not hmac.compare_digest(expected.encode(), cookie.encode()):
        raise Unauthorized("unable to verify user credentials")
    user = caller_queryset().get(pk=request.user.pk)
    check_caller_enabled(user)
    return user


class DomainUserBackend(BaseBackend):
    """Django's authentication backend (UI and admin): username + password in a domain."""

    def authenticate(self, request, username=None, password=None, domain=None, **kwargs):
        if username is None or password is None:
            return None
        try:
            return password_login(username, password, domain_path=domain)
        except AccountError as exc:
            if request is not None:
                request.nubo_login_error = exc.message
            return None

    def get_user(self, user_id):
        user = caller_queryset().filter(pk=user_id).first()
        return user if user is not None and user.is_active else None
