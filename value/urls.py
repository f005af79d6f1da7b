"""The value story's pages, under ``/o/<slug>/`` (mounted by ``cs_platform.urls``): each path starts with
its own prefix (``onboarding/``, ``reports/``, ``accounts/<id>/handoff/``, ``accounts/<id>/reviews/``)."""

urlpatterns: list = []
