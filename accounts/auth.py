"""Authentication: password logins (UI, API `login`, Django admin) with lockout after repeated
failures, and API-key signatures. Both produce the same caller: a User with its account,
domain and role loaded."""
from __future__ import annotations

import datetime as dt
import hmac
import logging

from django.contrib.auth.backends import BaseBackend
from django.db.models import F
from django.utils import timezone

from portal import config
from portal.api import signing
from portal.cache import track
from portal.errors import AccountError, Unauthorized

from . import crypto
from .choices import AccountState, UserState
from .models import Domain, User

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
    """API key -> (a fresh copy of the caller: user, account, role, domain; the decrypted secret).

    Signed requests are most of the API's traffic, and the ORM's five-table join that finds the
    caller costs more to plan than the rest of a small request. The rows are kept here, and every
    request re-checks what access depends on with one small SQL statement by primary key (the key
    still belongs to the user, user and account states, account type and role, the domain's path),
    so a key that was regenerated, or a user or account that was disabled or deleted — by any
    process — stops working at once. Copies are new model instances on every request."""

    CHECK_SQL = (
        "SELECT u.api_key, u.state, a.state, a.type, a.role_id, a.domain_id, d.path "
        "FROM accounts_user u JOIN accounts_account a ON a.id = u.account_id "
        "JOIN accounts_domain d ON d.id = a.domain_id WHERE u.id = %s"
    )

    def __init__(self, seconds: float = 60.0, size: int = 10000):
        self.seconds = seconds
        self.size = size
        self._rows: dict[str, tuple[float, tuple, str]] = {}

    @staticmethod
    def _fields(obj) -> tuple:
        return tuple((f.attname, getattr(obj, f.attname)) for f in type(obj)._meta.concrete_fields)

    @staticmethod
    def _build(model, fields: tuple):
        return model.from_db("default", [name for name, _ in fields], [value for _, value in fields])

    def get(self, api_key: str):
        import time

        from .models import Account, Domain, Role

        now = time.monotonic()
        hit = self._rows.get(api_key)
        if hit is not None and self._facts(hit[1]) != self._current_facts(hit[1]):
            hit = None
        if hit is None or now - hit[0] > self.seconds:
            user = next(iter(caller_queryset().filter(api_key=api_key).order_by()[:1]), None)
            if user is None or not user.secret_key_encrypted:
                self._rows.pop(api_key, None)
                return None
            if len(self._rows) >= self.size:
                self._rows.clear()
            account = user.account
            hit = (now, (self._fields(user), self._fields(account), self._fields(account.role),
                         self._fields(account.domain)), crypto.decrypt(user.secret_key_encrypted))
            self._rows[api_key] = hit
        user_f, account_f, role_f, domain_f = hit[1]
        user = self._build(User, user_f)
        account = self._build(Account, account_f)
        account.role = self._build(Role, role_f)
        account.domain = self._build(Domain, domain_f)
        user.account = account
        user.domain = account.domain  # a user's domain is its account's (an invariant of the model)
        return user, hit[2]

    @staticmethod
    def _facts(snapshot: tuple) -> tuple:
        user, account, _role, domain = (dict(part) for part in snapshot)
        return (user["api_key"], user["state"], account["state"], account["type"], account["role_id"],
                account["domain_id"], domain["path"])

    def _current_facts(self, snapshot: tuple) -> tuple | None:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(self.CHECK_SQL, [dict(snapshot[0])["id"]])
            row = cursor.fetchone()
        if row is None:
            return None
        api_key, user_state, account_state, account_type, role_id, domain_id, path = row
        return (api_key, user_state, account_state, account_type, role_id, domain_id, path)

    def clear(self, *args, **kwargs) -> None:
        self._rows.clear()

    invalidate = clear


CALLERS = CallerCache()
track(CALLERS)


def forget_callers() -> None:
    """After a change the signals do not see (queryset.update): forget now and after commit."""
    from django.db import transaction

    CALLERS.clear()
    transaction.on_commit(CALLERS.clear)


def _connect_invalidation() -> None:
    from django.db.models.signals import post_delete, post_save

    from .models import Account, Domain, Role

    for model in (User, Account, Role, Domain):
        post_save.connect(CALLERS.clear, sender=model, dispatch_uid=f"caller-cache-{model.__name__}-save")
        post_delete.connect(CALLERS.clear, sender=model, dispatch_uid=f"caller-cache-{model.__name__}-delete")


_connect_invalidation()


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
