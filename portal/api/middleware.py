"""The API endpoint's own, shorter middleware chain.

/client/api answers API clients, not browsers' pages: it needs the session (API calls of a
logged-in UI session, and `login`/`logout`), the authenticated user, CSRF's cookie handling (`login`
rotates the token) and at most one read of each generation per request (none while the process
holds a lease on it: portal.generation_push); not static files (WhiteNoise),
slash redirects (CommonMiddleware: both spellings of the path are the endpoint; its Content-Length
is set here), flash messages or
X-Frame-Options (the API sets its own security headers, render.SECURITY_HEADERS). Going through
those costs more than a signed listCapabilities' own work, so this middleware, placed right after
SecurityMiddleware, hands API requests to the endpoint through the shorter chain and every other
request on down the full one. A signed call (not `login`/`logout`) needs no session, CSRF cookie
or user either — its caller comes from its API key and nothing reads the session for it — so it
goes through the generation reads alone, its parameters parsed once here and kept for the view.
There is one endpoint view and one access-control path either way."""
from __future__ import annotations

from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.middleware.csrf import CsrfViewMiddleware

from portal.cache import GenerationsMiddleware

API_PATHS = frozenset({"/client/api", "/client/api/"})


class ApiEndpointMiddleware:
    def __init__(self, get_response):
        from .views import api

        self.get_response = get_response
        self.answer_signed = GenerationsMiddleware(api)
        self.answer_api = SessionMiddleware(CsrfViewMiddleware(AuthenticationMiddleware(self.answer_signed)))

    def __call__(self, request):
        from .views import first_values, needs_session

        if request.path_info not in API_PATHS:
            return self.get_response(request)
        if request.method in ("GET", "POST"):
            params = request.nubo_params = first_values(request)
            response = (self.answer_api if needs_session(params) else self.answer_signed)(request)
        else:
            response = self.answer_api(request)
        if not response.streaming and not response.has_header("Content-Length"):
            response.headers["Content-Length"] = str(len(response.content))  # as CommonMiddleware does
        return response
