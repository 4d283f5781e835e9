"""Settings of the storage app (CloudStack's names where it has them)."""
from portal.config import Setting, define

define(Setting("secstorage.allowed.internal.sites", "Advanced", "CIDRList", [],
               "Networks (comma-separated CIDRs) that template and ISO URLs may point at although they are "
               "loopback, private or link-local addresses; any other such URL is refused."))
define(Setting("max.account.secondary.storage", "Account Defaults", "Integer", 400,
               "Secondary storage (GiB) an account's templates and ISOs may use; -1 for no limit.",
               scopes=("global", "account"), minimum=-1))
define(Setting("allow.public.user.templates", "Advanced", "Boolean", True,
               "Whether users (not only administrators) may make their templates and ISOs public.",
               scopes=("global", "account")))
define(Setting("extract.url.expiration.interval", "Advanced", "Integer", 14400,
               "Seconds an extract (download) URL of a template or ISO stays valid.", minimum=60, maximum=7 * 86400))
define(Setting("endpointe.url", "Advanced", "String", "http://localhost:8080/client/api",
               "The API URL users reach this management server at; extract URLs are made from it."))
define(Setting("template.download.retries", "Advanced", "Integer", 3,
               "Further attempts (with backoff, resuming where the server allows) after a template or ISO "
               "download fails with a network error.", minimum=0, maximum=20))
define(Setting("template.download.stall.timeout", "Advanced", "Integer", 60,
               "Seconds a template or ISO download may receive nothing before the attempt is abandoned.",
               minimum=1, maximum=3600))
define(Setting("template.download.connect.timeout", "Advanced", "Integer", 15,
               "Seconds to wait for a template or ISO server to accept the connection.", minimum=1, maximum=600))
