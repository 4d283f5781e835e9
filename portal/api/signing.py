"""CloudStack request signatures (spec §2): the Java server's canonical form first, then the
variants real clients produce (`~` left unencoded by Python/Go clients; `[`/`]` left unencoded and
names sorted lower-cased by libcloud and CloudMonkey). Every variant is an HMAC-SHA1 over the same
parameter set with the user's secret, compared in constant time."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
from collections.abc import Iterable, Mapping

_JAVA_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-*_")


def java_urlencode(value: str, extra_safe: bytes = b"") -> str:
    """URLEncoder.encode(value, "UTF-8") with '+' turned into %20 (uppercase hex)."""
    safe = _JAVA_SAFE | frozenset(extra_safe)
    out = []
    for b in value.encode("utf-8"):
        if b in safe:
            out.append(chr(b))
        elif b == 0x20:
            out.append("%20")
        else:
            out.append("%%%02X" % b)
    return "".join(out)


def canonical(params: Mapping[str, str], *, extra_safe: bytes = b"", lower_sort: bool = False) -> str:
    names = [k for k in params if k.lower() != "signature"]
    names.sort(key=(lambda k: k.lower()) if lower_sort else (lambda k: k.encode("utf-16-be")))
    joined = "&".join(f"{k}={java_urlencode(params[k], extra_safe)}" for k in names)
    return joined.lower()


def sign(params: Mapping[str, str], secret: str, **variant) -> str:
    mac = hmac.new(secret.encode("utf-8"), canonical(params, **variant).encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


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


def parse_expires(text: str) -> dt.datetime | None:
    """DateUtil.parseTZDateString: +0000 and +00:00 offsets, Z, optional fractions."""
    text = text.strip()
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
