"""A URL configuration for tests/test_log_secrets.py: Retain's own, plus a view with a bug that puts the
request's credentials into an exception message (the worst case the log filter must hold)."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from cs_platform.urls import handler400, handler403, handler404, handler500
from cs_platform.urls import urlpatterns as retain_urlpatterns

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]


def leaky(request: HttpRequest) -> HttpResponse:
    raise RuntimeError(
        f"could not use {request.headers.get('Authorization')} for {request.GET.get('next')}; "
        f"password={request.POST.get('password', '')}"
    )


urlpatterns = [path("leaky/", leaky), *retain_urlpatterns]
