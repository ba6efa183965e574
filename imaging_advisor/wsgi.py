"""WSGI config for imaging_advisor project.

It exposes the WSGI callable as a module-level variable named ``application``: Django's handler,
behind the response cache (decisions/clinician/response_cache.py), which sends a repeated
request for a cached page or API answer the complete response the stack sent before.

For more information on this file, see
https://docs.djangoproject.com/en/5.2/howto/deployment/wsgi/
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imaging_advisor.settings")

django_application = get_wsgi_application()

from decisions.clinician.response_cache import ResponseCache  # noqa: E402  (needs the settings loaded)

application = ResponseCache(django_application)
