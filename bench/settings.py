"""The app's settings, plus the bare baseline views of bench/baseline_urls.py. Used only by the
benchmark's gunicorn (DJANGO_SETTINGS_MODULE=bench.settings): the API and the baseline are
served by the same processes, with the same middleware."""
from portal.settings import *  # noqa: F401,F403

ROOT_URLCONF = "bench.baseline_urls"
