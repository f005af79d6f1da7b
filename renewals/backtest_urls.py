"""Backtest pages, mounted under ``/o/<slug>/admin/scorecards/`` by :mod:`cs_platform.urls`."""

from django.urls import path

from . import backtest_views

urlpatterns = [
    path("<int:scorecard_id>/backtests/", backtest_views.scorecard_backtests, name="scorecard-backtests"),
    path(
        "<int:scorecard_id>/backtests/<int:backtest_id>/apply-suggestion/",
        backtest_views.apply_suggestion,
        name="scorecard-backtest-apply-suggestion",
    ),
]
