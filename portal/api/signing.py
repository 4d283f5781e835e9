"""CloudStack request signatures (spec §2): the Java server's canonical form first, then the
variants real clients produce (`~` left unencoded by Python/Go clients; `[`/`]` left unencoded and
names sorted lower-cased by libcloud and CloudMonkey). Every variant is an HMAC-SHA1 over the same
parameter set with the user's secret, compared in constant time."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping

_JAVA_SAFE = "A-Za-z0-9.\\-*_"
_UNSAFE: dict[bytes, re.Pattern] = {}


def _escape(match: re.Match) -> str:
    text = match.group()
    return "%20" if text == " " else "".join("%%%02X" % b for b in text.encode("utf-8"))


def java_urlencode(value: str, extra_safe: bytes = b"") -> str:
    """URLEncoder.encode(value, "UTF-8") with '+' turned into %20 (uppercase hex).

    One regular-expression pass (most values are all safe and come back as they are)."""
    unsafe = _UNSAFE.get(extra_safe)
    if unsafe is None:
        unsafe = _UNSAFE[extra_safe] = re.compile(f"[^{_JAVA_SAFE}{re.escape(extra_safe.decode('ascii'))}]")
    return unsafe.sub(_escape, value)


def canonical(params: Mapping[str, str], *, extra_safe: bytes = b"", lower_sort: bool = False) -> str:
    names = [k for k in params if k.lower() != "signature"]
    names.sort(key=(lambda k: k.lower()) if lower_sort else (lambda k: k.encode("utf-16-be")))
    joined = "&".join(f"{k}={java_urlencode(params[k], extra_safe)}" for k in names)
    return joined.lower()


def sign(params: Mapping[str, str], secret: str, **variant) -> str:
    mac = hmac.digest(secret.encode("utf-8"), canonical(params, **variant).encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac).decode("ascii")


VARIANTS: tuple[dict, ...] = (
    {},  # the Java server's own form
    {"extra_safe": b"~"},  # cs, cmk: Python's quote / Go's QueryEscape leave '~'
    {"extra_safe": b"~[]", "lower_sort": True},  # libcloud: names lower-cased before sorting
    {"lower_sort": True},  # CloudMonkey 5.3
)


def candidate_signatures(params: Mapping[str, str], secret: str) -> Iterable[str]:
    seen = set()
    for variant in VARIANTS:
        sig = sign(params, secret, **variant)
        if sig not in seen:
            seen.add(sig)
            yield sig


def verify(params: Mapping[str, str], secret: str, signature: str) -> bool:
    """True if `signature` matches any accepted canonical form (constant-time compares)."""
    given = signature.encode("utf-8")
    return any(hmac.compare_digest(candidate.encode("ascii"), given)
               for candidate in candidate_signatures(params, secret))


# The form clients send (cs: 2024-01-31T12:00:00+0000): read by fromisoformat, a fifth of strptime's cost.
_PLAIN_EXPIRES = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?[+-]\d{4}")


def parse_expires(text: str) -> dt.datetime | None:
    """DateUtil.parseTZDateString: +0000 and +00:00 offsets, Z, optional fractions."""
    text = text.strip()
    if _PLAIN_EXPIRES.fullmatch(text):
        try:
            return dt.datetime.fromisoformat(text)
        except ValueError:
            return None
    candidates = [text]
    if text.endswith("Z"):
        candidates.append(text[:-1] + "+0000")
    # the odd yyyy-MM-dd'T'HH:mm:ss'Z'Z form
    if "Z+" in text or "Z-" in text:
        candidates.append(text.replace("Z+", "+").replace("Z-", "-"))
    for candidate in candidates:
        for fmt in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z"):
            try:
                return dt.datetime.strptime(candidate, fmt)
            except ValueError:
                continue
    return None
