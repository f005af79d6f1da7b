"""Segment fields derived from accounts' own data (registered from ``AccountsConfig.ready``).

- ``team``: the team of the account's owner in the organization (``Membership.team``), compared by id.
- ``days_since_last_touch``: whole days from the day of the account's last customer touch (an
  :class:`~accounts.models.Activity` whose type is not an internal note, ``NON_TOUCH_ACTIVITY_TYPES``)
  to today, days counted in the organization's time zone; empty when the account was never touched
  (use ``is_empty`` to find those). An activity dated in the future counts as a negative number of days.
"""

from __future__ import annotations

from django.db.models import DateTimeField, IntegerField, OuterRef, Subquery

from .choices import NON_TOUCH_ACTIVITY_TYPES
from .segments import Derived, RuleContext, register_derived


def owner_team(ctx: RuleContext) -> Subquery:
    from cs_platform.organizations import Membership

    teams = Membership.all_orgs.filter(organization_id=OuterRef("organization_id"), user_id=OuterRef("owner_id"))
    return Subquery(teams.values("team_id")[:1], output_field=IntegerField())


def last_touch(ctx: RuleContext) -> Subquery:
    from .models import Activity

    touches = (
        Activity.all_orgs.filter(organization_id=OuterRef("organization_id"), account_id=OuterRef("pk"))
        .exclude(type__in=list(NON_TOUCH_ACTIVITY_TYPES))
        .order_by("-occurred_at")
    )
    return Subquery(touches.values("occurred_at")[:1], output_field=DateTimeField())


def register() -> None:
    register_derived("team", Derived(value=owner_team), label="Team (of the owner)")
    register_derived(
        "days_since_last_touch", Derived(since=last_touch, moment="datetime"), label="Days since last customer touch"
    )
