"""The extract URL (extractTemplate / extractIso): a signed, time-limited link that streams the
stored file. The signed token is the only credential; it travels in the query string, which the
access log (Procfile: path without query) never writes."""
from __future__ import annotations

from django.http import FileResponse, Http404
from django.views.decorators.http import require_GET

from .images.services import extracted_file


@require_GET
def extract_download(request, filename: str):
    found = extracted_file(request.GET.get("token", ""))
    if found is None or found[1] != filename:
        raise Http404("This download link is invalid or has expired; extract the template again for a new one")
    path, name = found
    return FileResponse(open(path, "rb"), as_attachment=True, filename=name, content_type="application/octet-stream")
