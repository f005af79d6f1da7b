"""Feature request services (spec §6): create, link accounts, change status, merge duplicates, rank.

Writes go through here; the pages, the API and health's inbound tracker webhook call these functions.
Permission checks (who may do what) are :func:`can_manage` and ``Actor.can_write_account``, applied by the
callers; the services enforce the domain rules (same organization, a merged request is frozen, ...).

A status change records the ``feature_request.status_changed`` domain event in its transaction (with the
linked accounts and their owners): playbooks consumes it to notify those CSMs in-app and by email
(feedback sits below playbooks and never imports it).

Two seams, filled by apps above feedback in their ``AppConfig.ready()``:

* :func:`register_request_section`: a section of the feature request page (health: the helpdesk tickets
  carrying the request's issue key);
* :func:`register_renewal_check`: validates a link's ``blocked_renewal_id`` (feedback may not import
  renewals, either way; playbooks, above both, registers the check).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Count, DecimalField, F, Min, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import Account, Organization, SegmentMembership
from cs_platform.actors import Actor
from cs_platform.choices import Role
from cs_platform.events import record_event

from .models_requests import (
    IMPORTANCE_RANK,
    FeatureRequest,
    FeatureRequestChange,
    FeatureRequestLink,
    RequestImportance,
    RequestStatus,
    RequestType,
)

__all__ = [
    "RENEWAL_WINDOW_DAYS",
    "RequestError",
    "RequestSection",
    "TrackerResult",
    "RANKING",
    "annotate_ranking",
    "apply_tracker_status",
    "can_manage",
    "change_status",
    "clean_title",
    "create_request",
    "link_account",
    "merge_requests",
    "ranked",
    "register_renewal_check",
    "register_request_section",
    "request_sections",
    "requests_for_account",
    "unlink_account",
]

#: "Renewing soon": the ARR of linked active accounts whose next renewal falls within this many days.
RENEWAL_WINDOW_DAYS = 90
ISSUE_KEY_MAX = 64


class RequestError(ValueError):
    """A domain rule refused the change; ``field`` names the input at fault (forms and the API show it there)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# --- Seams ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestSection:
    """A section of the feature request page contributed by an app above feedback: ``context(request,
    feature_request) -> dict`` (a fixed number of queries) and the template included with it."""

    key: str
    order: int
    template: str
    context: Callable[[Any, FeatureRequest], dict[str, Any]]


_sections: dict[str, RequestSection] = {}
RenewalCheck = Callable[[int, int, int], str | None]
_renewal_checks: dict[str, RenewalCheck] = {}


def register_request_section(section: RequestSection) -> None:
    """Add (or replace, by key) a section of the feature request page."""
    _sections[section.key] = section


def request_sections() -> list[RequestSection]:
    return sorted(_sections.values(), key=lambda s: (s.order, s.key))


def register_renewal_check(key: str, check: RenewalCheck) -> None:
    """``check(organization_id, account_id, renewal_id)`` returns why the id is refused, or ``None``."""
    _renewal_checks[key] = check


# --- Permissions ----------------------------------------------------------------------------------


def can_manage(actor: Actor | None) -> bool:
    """Edit a request, change its status, merge it: admins and leaders (product decisions). CSMs create
    requests and link the accounts of their book; viewers read."""
    return actor is not None and actor.role in {Role.ADMIN, Role.LEADER}


# --- Writes ---------------------------------------------------------------------------------------


def _org_id(organization: Organization | int) -> int:
    return organization if isinstance(organization, int) else organization.pk


def normalise_issue_key(key: str | None) -> str | None:
    """``" prod-42 "`` → ``"PROD-42"``; empty → ``None``. Keys match case-insensitively, as in Jira."""
    key = (key or "").strip().upper()
    if not key:
        return None
    if len(key) > ISSUE_KEY_MAX:
        raise RequestError(f"An issue key has at most {ISSUE_KEY_MAX} characters.", "external_issue_key")
    return key


def clean_title(title: str | None) -> str:
    """A title on one line: every run of whitespace (newlines, tabs) becomes one space, ends trimmed. A newline
    would break the subject of every notification email about the request (``BadHeaderError``)."""
    return " ".join((title or "").split())


def create_request(
    organization: Organization | int,
    *,
    title: str,
    description: str = "",
    product_area: str = "",
    type: str = RequestType.FEATURE,
    external_issue_key: str | None = None,
    external_issue_url: str = "",
    by: Any = None,
) -> FeatureRequest:
    """A new request in status ``new``. ``by``: the user creating it (kept as ``created_by``)."""
    title = clean_title(title)
    if not title:
        raise RequestError("A request needs a title.", "title")
    if type not in RequestType.values:
        raise RequestError(f"Type must be one of {', '.join(RequestType.values)}.", "type")
    return FeatureRequest.all_orgs.create(
        organization_id=_org_id(organization),
        title=title[:200],
        description=description or "",
        product_area=(product_area or "").strip()[:80],
        type=type,
        external_issue_key=normalise_issue_key(external_issue_key),
        external_issue_url=external_issue_url or "",
        created_by=by if getattr(by, "pk", None) else None,
    )


def _check_renewal(organization_id: int, account_id: int, renewal_id: int | None) -> None:
    if renewal_id is None:
        return
    for check in _renewal_checks.values():
        problem = check(organization_id, account_id, renewal_id)
        if problem:
            raise RequestError(problem, "blocked_renewal_id")


def link_account(
    feature_request: FeatureRequest,
    account: Account,
    *,
    requested_by: Any = None,
    importance: str = RequestImportance.MEDIUM,
    comment: str = "",
    blocked_renewal_id: int | None = None,
    blocked_deal: str = "",
) -> tuple[FeatureRequestLink, bool]:
    """Link ``account`` to the request, or update its link (one per request and account). Returns the link
    and whether it was created. A merged request takes no new link (link its survivor)."""
    if account.organization_id != feature_request.organization_id:
        raise RequestError("No such account.", "account")
    if feature_request.merged_into_id is not None:
        raise RequestError("This request was merged; link the request it was merged into.", "request")
    if importance not in RequestImportance.values:
        raise RequestError(f"Importance must be one of {', '.join(RequestImportance.values)}.", "importance")
    _check_renewal(feature_request.organization_id, account.pk, blocked_renewal_id)
    values = {
        "importance": importance,
        "comment": comment or "",
        "blocked_renewal_id": blocked_renewal_id,
        "blocked_deal": (blocked_deal or "").strip()[:120],
    }
    with transaction.atomic():
        link = (
            FeatureRequestLink.all_orgs.select_for_update()
            .filter(organization_id=feature_request.organization_id, request=feature_request, account=account)
            .first()
        )
        if link is None:
            link = FeatureRequestLink.all_orgs.create(
                organization_id=feature_request.organization_id,
                request=feature_request,
                account=account,
                requested_by=requested_by if getattr(requested_by, "pk", None) else None,
                **values,
            )
            return link, True
        for name, value in values.items():
            setattr(link, name, value)
        link.save(update_fields=list(values))
        return link, False


def unlink_account(link: FeatureRequestLink) -> None:
    link.delete()


def _event_payload(fr: FeatureRequest, old: str, new: str, source: str, by: Any) -> dict[str, Any]:
    accounts = list(
        Account.all_orgs.filter(organization_id=fr.organization_id, feature_request_links__request=fr)
        .order_by("pk")
        .values("id", "external_id", "name", "owner_id", "arr", "churned_at")
    )
    return {
        "id": fr.pk,
        "title": fr.title,
        "type": fr.type,
        "product_area": fr.product_area,
        "from": old,
        "to": new,
        "source": source,
        "external_issue_key": fr.external_issue_key or "",
        "external_issue_url": fr.external_issue_url,
        "arr_at_stake": sum((a["arr"] for a in accounts if a["churned_at"] is None), Decimal("0")),
        "accounts": [
            {"id": a["id"], "external_id": a["external_id"], "name": a["name"], "owner": a["owner_id"]}
            for a in accounts
        ],
        "changed_by": getattr(by, "email", "") or "",
    }


def change_status(
    feature_request: FeatureRequest, status: str, *, by: Any = None, source: str = "page", note: str = ""
) -> bool:
    """Move the request to ``status``; returns whether it changed. The change, its audit row and the
    ``feature_request.status_changed`` event commit together. A merged request is frozen."""
    if status not in RequestStatus.values:
        raise RequestError(f"Status must be one of {', '.join(RequestStatus.values)}.", "status")
    with transaction.atomic():
        fr = FeatureRequest.all_orgs.select_for_update().get(pk=feature_request.pk)
        if fr.merged_into_id is not None:
            raise RequestError("This request was merged; change the status of the request it was merged into.")
        old = fr.status
        if old == status:
            return False
        fr.status = status
        fr.status_changed_at = timezone.now()
        fr.save(update_fields=["status", "status_changed_at"])
        FeatureRequestChange.all_orgs.create(
            organization_id=fr.organization_id,
            request=fr,
            kind="status",
            from_status=old,
            to_status=status,
            source=source,
            note=(note or "")[:300],
            by=by if getattr(by, "pk", None) else None,
        )
        record_event(
            fr.organization_id,
            "feature_request.status_changed",
            fr.pk,
            _event_payload(fr, old, status, source, by),
        )
    feature_request.status, feature_request.status_changed_at = fr.status, fr.status_changed_at
    return True


def merge_requests(duplicate: FeatureRequest, survivor: FeatureRequest, *, by: Any = None) -> FeatureRequest:
    """Merge ``duplicate`` into ``survivor``: every link moves to the survivor; where both link the same
    account, one link stays with the higher importance (and the comment, requester and blocked references
    of both kept where the survivor's are empty). The duplicate is marked ``merged_into`` the survivor
    (and the duplicates merged into it earlier now point at the survivor); its issue key moves over when
    the survivor has none. No link is lost: the survivor's accounts are the union of both."""
    if duplicate.organization_id != survivor.organization_id:
        raise RequestError("No such request.", "into")
    if duplicate.pk == survivor.pk:
        raise RequestError("A request cannot be merged into itself.", "into")
    org_id = survivor.organization_id
    with transaction.atomic():
        locked = {
            fr.pk: fr
            for fr in FeatureRequest.all_orgs.select_for_update()
            .filter(organization_id=org_id, pk__in=[duplicate.pk, survivor.pk])
            .order_by("pk")
        }
        dup, surv = locked[duplicate.pk], locked[survivor.pk]
        if dup.merged_into_id is not None:
            raise RequestError("This request was already merged.", "request")
        if surv.merged_into_id is not None:
            raise RequestError("That request was itself merged; merge into the request it was merged into.", "into")
        kept = {link.account_id: link for link in FeatureRequestLink.all_orgs.select_for_update().filter(
            organization_id=org_id, request=surv)}  # fmt: skip
        moved = 0
        for link in FeatureRequestLink.all_orgs.select_for_update().filter(organization_id=org_id, request=dup):
            target = kept.get(link.account_id)
            if target is None:
                link.request = surv
                link.save(update_fields=["request"])
                moved += 1
                continue
            changed = []
            if IMPORTANCE_RANK.get(link.importance, 0) > IMPORTANCE_RANK.get(target.importance, 0):
                target.importance = link.importance
                changed.append("importance")
            for name in ("comment", "blocked_deal", "blocked_renewal_id", "requested_by_id"):
                if not getattr(target, name) and getattr(link, name):
                    setattr(target, name, getattr(link, name))
                    changed.append(name)
            if changed:
                target.save(update_fields=changed)
            link.delete()
        FeatureRequest.all_orgs.filter(organization_id=org_id, merged_into=dup).update(merged_into=surv)
        dup.merged_into = surv
        dup.save(update_fields=["merged_into"])
        if not surv.external_issue_key and dup.external_issue_key:
            surv.external_issue_key, surv.external_issue_url = dup.external_issue_key, dup.external_issue_url
            surv.save(update_fields=["external_issue_key", "external_issue_url"])
        user = by if getattr(by, "pk", None) else None
        FeatureRequestChange.all_orgs.create(
            organization_id=org_id, request=dup, kind="merged", source="merge", by=user,
            note=f"Merged into #{surv.pk} {surv.title}"[:300],
        )  # fmt: skip
        FeatureRequestChange.all_orgs.create(
            organization_id=org_id, request=surv, kind="absorbed", source="merge", by=user,
            note=f"#{dup.pk} {dup.title} merged in ({moved} account link(s) moved)"[:300],
        )  # fmt: skip
    duplicate.merged_into = surv
    return surv


# --- The tracker loop -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TrackerResult:
    """What an "issue updated" delivery did: the requests carrying the key, the status it maps to, and the
    ids of the requests whose status changed (empty when they were already there)."""

    matched: int
    status: str
    changed: list[int]


def apply_tracker_status(
    organization_id: int, *, issue_key: str, tracker_status: str, status_map: dict[str, str], issue_url: str = ""
) -> TrackerResult:
    """Move every (unmerged) request carrying ``issue_key`` to the status that ``tracker_status`` maps to.

    Raises :class:`RequestError` (and changes nothing) when the tracker's status is not mapped or no
    request carries the key. Status names match case-insensitively. A request without an issue URL gets
    ``issue_url`` (the issue's browse address)."""
    key = normalise_issue_key(issue_key)
    lowered = {str(name).strip().lower(): value for name, value in (status_map or {}).items()}
    status = lowered.get(tracker_status.strip().lower())
    if status is None or status not in RequestStatus.values:
        raise RequestError(
            f"The tracker status {tracker_status!r} is not mapped to a feature request status "
            "(an admin maps it on the integrations page).",
            "status",
        )
    with transaction.atomic():
        requests = list(
            FeatureRequest.all_orgs.select_for_update()
            .filter(organization_id=organization_id, external_issue_key=key, merged_into__isnull=True)
            .order_by("pk")
        )
        if not requests:
            raise RequestError(f"No feature request is linked to issue {key}.", "issue")
        changed = []
        for fr in requests:
            if issue_url and not fr.external_issue_url:
                fr.external_issue_url = issue_url
                fr.save(update_fields=["external_issue_url"])
            if change_status(fr, status, source="tracker", note=f"{key}: {tracker_status}"[:300]):
                changed.append(fr.pk)
    return TrackerResult(matched=len(requests), status=status, changed=changed)


# --- Reads ----------------------------------------------------------------------------------------


def annotate_ranking(queryset: QuerySet, *, segment_id: int | None = None, today: dt.date | None = None) -> QuerySet:
    """Annotate requests with the board's figures (one grouped query, whatever the number of rows).

    ``arr_at_stake``: Σ ARR of the linked active (not churned) accounts; ``renewing_arr``: the part of it whose
    account renews within :data:`RENEWAL_WINDOW_DAYS`; ``next_renewal``: the nearest renewal date, today or
    later, of a linked active account; ``active_accounts`` and ``linked_accounts``. With ``segment_id``, only
    the segment's stored member accounts count."""
    today = today or timezone.localdate()
    soon = today + dt.timedelta(days=RENEWAL_WINDOW_DAYS)
    scope = Q()
    if segment_id is not None:
        members = SegmentMembership.all_orgs.filter(segment_id=segment_id).values("account_id")
        scope = Q(links__account_id__in=members)
    active = scope & Q(links__account__churned_at__isnull=True)
    money = DecimalField(max_digits=16, decimal_places=2)
    renewing = active & Q(links__account__next_renewal_date__gte=today, links__account__next_renewal_date__lte=soon)
    return queryset.annotate(
        arr_at_stake=Coalesce(Sum("links__account__arr", filter=active), Value(Decimal("0")), output_field=money),
        renewing_arr=Coalesce(Sum("links__account__arr", filter=renewing), Value(Decimal("0")), output_field=money),
        next_renewal=Min(
            "links__account__next_renewal_date", filter=active & Q(links__account__next_renewal_date__gte=today)
        ),
        active_accounts=Count("links", filter=active),
        linked_accounts=Count("links", filter=scope),
    )


#: The board's order: ARR at stake, then ARR renewing soon, then the nearest renewal, then the newest.
RANKING = (F("arr_at_stake").desc(), F("renewing_arr").desc(), F("next_renewal").asc(nulls_last=True),
           "-created_at", "-pk")  # fmt: skip


def ranked(
    organization: Organization | int,
    *,
    status: Iterable[str] | None = None,
    product_area: str | None = None,
    type: str | None = None,
    segment_id: int | None = None,
    q: str | None = None,
    today: dt.date | None = None,
) -> QuerySet:
    """The board: unmerged requests ranked by ARR at stake (:func:`annotate_ranking`, :data:`RANKING`), in one
    query. With a segment, requests without a linked member account are left out."""
    org_id = _org_id(organization)
    queryset = FeatureRequest.all_orgs.filter(organization_id=org_id, merged_into__isnull=True)
    if segment_id is not None:
        members = SegmentMembership.all_orgs.filter(organization_id=org_id, segment_id=segment_id).values("account_id")
        queryset = queryset.filter(
            pk__in=FeatureRequestLink.all_orgs.filter(organization_id=org_id, account_id__in=members).values(
                "request_id"
            )
        )
    statuses = [s for s in (status or []) if s]
    if statuses:
        queryset = queryset.filter(status__in=statuses)
    if product_area:
        queryset = queryset.filter(product_area=product_area)
    if type:
        queryset = queryset.filter(type=type)
    if q:
        queryset = queryset.filter(
            Q(title__icontains=q) | Q(description__icontains=q) | Q(external_issue_key__iexact=q.strip())
        )
    return annotate_ranking(queryset, segment_id=segment_id, today=today).order_by(*RANKING)


def requests_for_account(account: Account) -> QuerySet:
    """The account's links with their requests (a merged request shows its survivor: links moved there)."""
    return (
        FeatureRequestLink.all_orgs.filter(organization_id=account.organization_id, account=account)
        .select_related("request", "requested_by")
        .order_by("request__status", "-created_at")
    )


def product_areas(organization: Organization | int) -> list[str]:
    """The product areas in use (the board's filter and the forms' suggestions)."""
    return list(
        FeatureRequest.all_orgs.filter(organization_id=_org_id(organization))
        .exclude(product_area="")
        .order_by("product_area")
        .values_list("product_area", flat=True)
        .distinct()
    )
