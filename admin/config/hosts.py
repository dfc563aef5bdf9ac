"""The operations endpoints answer whatever Host they are addressed by.

Prometheus scrapes by address (compose's DNS discovery gives container IPs, Kubernetes pod IPs),
and probes do too; Django's ALLOWED_HOSTS check answers those with 400 DisallowedHost, so a
scrape of admin-web failed under compose. These read-only endpoints build no URL from the Host,
so they are answered under a name ALLOWED_HOSTS accepts; every other path keeps the check.
"""

from django.conf import settings

OPERATIONS_PATHS = frozenset({"/metrics", "/api/health", "/api/ready"})


def accepted_host(allowed_hosts) -> str:
    """Return a host name the ALLOWED_HOSTS list accepts ("localhost" when it is empty or "*")."""
    for entry in allowed_hosts:
        if entry == "*":
            break
        return entry[1:] if entry.startswith(".") else entry
    return "localhost"


class OperationsHostMiddleware:
    """Give requests for OPERATIONS_PATHS an accepted Host before anything reads it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info in OPERATIONS_PATHS:
            request.META["HTTP_HOST"] = accepted_host(settings.ALLOWED_HOSTS)
            request.META.pop("HTTP_X_FORWARDED_HOST", None)
        return self.get_response(request)
