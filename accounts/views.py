"""Server-rendered pages: home redirect, My book, Account 360, the admin screens and the screens to come.

Every view below ``/o/<slug>/`` goes through :func:`cs_platform.pages.org_page`, which resolves the
organization from the URL (404 for non-members, 403 for a role that is not enough) and sets the org
scope, so ``Model.objects`` is already narrowed to that organization. Writes are checked per object
with ``request.actor.can_write_account``. Lists run a fixed number of queries per page, whatever the
page size (``select_related`` for the owner, one aggregate for the summary, no per-row queries).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, F, Prefetch, Q, Sum
from django.http import HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from cs_platform.exports import CHUNK_SIZE, chunked, csv_response
from cs_platform.imports import COLUMN_HELP, COLUMNS, ImportRefused, count_rows, file_size_text, import_limits
from cs_platform.imports.tasks import IMPORT_JOB_KIND, rerun_import, start_import, upload_available
from cs_platform.imports.uploads import CappedUploadHandler, UploadTooLarge, discard_upload, store_upload
from cs_platform.jobs import public_errors
from cs_platform.pages import org_page
from cs_platform.tenancy import org_scope

from .auth import locked_usernames, unlock_login
from .choices import KEY_CONTACT_ROLES, JobStatus, Role, TouchModel
from .composition import account_columns, account_panels, page_context, page_panels
from .filtersets import AccountFilterSet
from .forms import (
    ActivityForm,
    ApiKeyForm,
    ImportForm,
    InvitedUserForm,
    InviteMemberForm,
    MemberRoleForm,
    ObjectiveForm,
)
from .models import (
    Account,
    Activity,
    ApiKey,
    Contact,
    Contract,
    ContractLine,
    Invitation,
    JobRun,
    Membership,
    Segment,
    SuccessPlan,
    WriteKey,
)
from .models.tenancy import HashedKey
from .services import (
    InvitationEmailError,
    InvitationError,
    accept_invitation,
    change_member_role,
    create_invited_user,
    decline_invitation,
    find_invitation,
    invite_member,
    is_successor,
    landing_organization,
    revoke_invitation,
)

PAGE_SIZE = 50
TIMELINE_LIMIT = 50

# ``?ordering=`` whitelist: public key → model fields. Anything else falls back to the default.
ACCOUNT_ORDERINGS: dict[str, tuple[str, ...]] = {
    "name": ("name",),
    "arr": ("arr",),
    "owner": ("owner__first_name", "owner__last_name", "owner__email"),
    "stage": ("lifecycle_stage",),
    "touch": ("touch_model",),
    "renewal": ("next_renewal_date",),
    "since": ("customer_since",),
    "health": ("health__score",),
    "trend": ("health__delta_7",),
}
DEFAULT_ACCOUNT_ORDERING = "name"
RENEWAL_WINDOWS = (30, 60, 90, 180, 365)
#: My book's ``?status=``: which accounts it counts and lists (live by default, as the Portfolio).
ACCOUNT_STATUSES = {"live": "Live", "churned": "Churned", "all": "Live and churned"}


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send the user to My book of their landing organization: the one they last used (or joined first)."""
    organization = landing_organization(request.user)
    if organization is None:
        return render(request, "accounts/no_organization.html", status=403)
    return redirect("my-book", org_slug=organization.slug)


# --- My book ----------------------------------------------------------------------------------------


def _ordering(value: str) -> tuple[str, list[Any]]:
    """Validate ``?ordering=`` against the whitelist; empty values sort last in both directions."""
    key = value.lstrip("-")
    if key not in ACCOUNT_ORDERINGS:
        value, key = DEFAULT_ACCOUNT_ORDERING, DEFAULT_ACCOUNT_ORDERING
    descending = value.startswith("-")
    fields = [F(f).desc(nulls_last=True) if descending else F(f).asc(nulls_last=True) for f in ACCOUNT_ORDERINGS[key]]
    return value, [*fields, "name", "pk"]


def _filter_params(request: HttpRequest) -> QueryDict:
    """The filterset's data: the query string plus ``renews_within`` (days) turned into a date window."""
    data = request.GET.copy()
    # The filter bar submits every select, "Any" as a blank: a blank is no filter (the API keeps refusing a
    # blank choice; only this page form sends them).
    for key in [k for k, values in data.lists() if not any(v.strip() for v in values)]:
        del data[key]
    within = data.get("renews_within", "")
    if within.isdigit():
        today = timezone.localdate()
        data["renewal_after"] = today.isoformat()
        data["renewal_before"] = (today + dt.timedelta(days=int(within))).isoformat()
    return data


@org_page()
@require_GET
def my_book(request: HttpRequest) -> HttpResponse:
    """The CSM's home: their accounts (or everyone's), filterable, sortable, paginated."""
    # Members start on their own book; whoever owns no account (viewers, most admins) starts on everyone's.
    scope = request.GET.get("scope")
    if scope not in ("mine", "all"):
        owns_any = request.membership.role != Role.VIEWER and Account.objects.filter(owner=request.user).exists()
        scope = "mine" if owns_any else "all"
    queryset = Account.objects.select_related("owner", "health")
    if scope == "mine":
        queryset = queryset.filter(owner=request.user)
    # Live accounts by default, like the Portfolio; churned ones behind the status filter. An explicit
    # ``churned=`` (the API's filter, used by drill-down links) decides on its own.
    status = request.GET.get("status", "")
    if status not in ACCOUNT_STATUSES:
        status = "all" if request.GET.get("churned") else "live"
    if status == "live":
        queryset = queryset.filter(churned_at__isnull=True)
    elif status == "churned":
        queryset = queryset.filter(churned_at__isnull=False)
    filterset = AccountFilterSet(_filter_params(request), queryset=queryset, request=request)
    ordering, order_by = _ordering(request.GET.get("ordering", DEFAULT_ACCOUNT_ORDERING))
    filtered = filterset.qs
    if request.GET.get("export") == "csv" and not filterset.errors:
        return export_accounts(
            request.organization, filtered.order_by(*order_by), with_arr=request.GET.get("columns") != "import"
        )
    today = timezone.localdate()
    soon = (today, today + dt.timedelta(days=90))
    summary = filtered.aggregate(
        count=Count("id"),
        total_arr=Sum("arr"),
        renewing_90=Count("id", filter=Q(next_renewal_date__range=soon)),
        renewing_90_arr=Sum("arr", filter=Q(next_renewal_date__range=soon)),
    )
    paginator = Paginator(filtered.order_by(*order_by), PAGE_SIZE)
    paginator.__dict__["count"] = summary["count"]  # already counted with the total: save a COUNT query
    page = paginator.get_page(request.GET.get("page"))

    # Other apps' columns (playbooks: open CTAs): one call each with the ids of the rows shown.
    columns = account_columns("my-book")
    rows = list(page.object_list)
    if columns:
        ids = [a.pk for a in rows]
        values = [(column, column.values(request, ids)) for column in columns]
        for a in rows:
            a.extra_cells = [(column, found.get(a.pk)) for column, found in values]

    distinct = Account.objects
    active_filters = [
        k for k in ("q", "lifecycle_stage", "touch_model", "industry", "region", "tag", "arr_min", "arr_max",
                    "renews_within", "owner", "health_color", "segment", "unowned", "churned", "status")
        if request.GET.get(k)
    ]  # fmt: skip
    context = {
        "filter": filterset,
        "page": page,
        "accounts": rows,
        "account_columns": columns,
        "page_panels": page_panels("my-book"),
        "summary": summary,
        "scope": scope,
        "status": status,
        "statuses": ACCOUNT_STATUSES,
        "ordering": ordering,
        "active_filters": active_filters,
        "stages": [(s, s.replace("_", " ").title()) for s in request.organization.lifecycle_stages],
        "touch_models": TouchModel.choices,
        "industries": distinct.exclude(industry="").order_by("industry").values_list("industry", flat=True).distinct(),
        "regions": distinct.exclude(region="").order_by("region").values_list("region", flat=True).distinct(),
        "owners": Membership.objects.select_related("user").exclude(role=Role.VIEWER),
        "renewal_windows": RENEWAL_WINDOWS,
        "segments": Segment.objects.order_by("position", "name"),
        "today": today,
        **page_context("my-book", request),  # what other apps add (health: the colour filter's choices)
    }
    return render(request, "accounts/my_book.html", context)


#: Health columns of the My book CSV export (after ``arr``).
HEALTH_EXPORT_COLUMNS = ("health_color", "health_score", "health_delta_7")


def export_accounts(org: Any, queryset: Any, *, with_arr: bool = True) -> StreamingHttpResponse:
    """The accounts of ``queryset`` as an ``accounts`` import file (spec §8 columns), streamed.

    Columns: the spec's, then one per custom field found in these rows (the importer reads any extra
    column as a custom field), then ``arr`` and the health columns (``health_color`` = the effective
    colour, empty when unscored; ``health_score``; ``health_delta_7`` = the score's change over 7 days)
    unless ``with_arr`` is false. ARR and health are computed, not imported: re-importing a file with
    those columns would store them as custom fields, so the "for re-import" variant
    (``columns=import``) leaves them out.
    """
    custom: set[str] = set()
    for fields in queryset.values_list("custom_fields", flat=True).order_by().iterator(chunk_size=CHUNK_SIZE):
        if isinstance(fields, dict):
            custom.update(fields)
    spec = COLUMNS["accounts"]
    custom_columns = sorted(custom - {*spec, "arr"})
    computed = ["arr", *HEALTH_EXPORT_COLUMNS] if with_arr else []
    header = [*spec, *custom_columns, *computed]
    rows_qs = queryset.select_related(None).values_list(
        "external_id", "name", "domain", "industry", "region", "employees", "owner__email", "parent__external_id",
        "touch_model", "lifecycle_stage", "customer_since", "custom_fields", "arr", "health__color",
        "health__score", "health__delta_7",
    )  # fmt: skip

    def rows() -> Any:
        for chunk in chunked(rows_qs):
            for *values, fields, arr, color, score, delta in chunk:
                fields = fields if isinstance(fields, dict) else {}
                values[10] = values[10].isoformat() if values[10] else None
                extra = [arr, color or "", score, delta] if with_arr else []
                yield [*values, *(fields.get(name) for name in custom_columns), *extra]

    filename = f"{org.slug}-accounts-{timezone.localdate().isoformat()}.csv"
    return csv_response(filename, header, rows, organization=org)


# --- Account 360 -----------------------------------------------------------------------------------


def _get_account(account_id: int) -> Account:
    # ``Account.objects`` is narrowed to the page's organization by org_page: another org's id is a 404.
    return get_object_or_404(Account.objects.select_related("owner", "parent"), pk=account_id)


def _timeline(account: Account) -> list[Activity]:
    return list(
        Activity.objects.filter(account=account)
        .select_related("author")
        .prefetch_related("contacts")
        .order_by("-occurred_at", "-pk")[:TIMELINE_LIMIT]
    )


def _account_context(
    request: HttpRequest,
    account: Account,
    *,
    activity_form: ActivityForm | None = None,
    objective_form: ObjectiveForm | None = None,
) -> dict[str, Any]:
    can_write = request.actor.can_write_account(account)
    contacts = list(Contact.objects.filter(account=account).order_by("-is_active", "name"))
    coverage = []
    for role in KEY_CONTACT_ROLES:
        holders = [c for c in contacts if role.value in (c.roles or [])]
        active = [c for c in holders if c.is_active and not c.departed_at]
        departed = [c for c in holders if not (c.is_active and not c.departed_at)]
        coverage.append({"role": role, "active": active, "departed": departed})
    contracts = list(
        Contract.objects.filter(account=account)
        .prefetch_related(Prefetch("lines", queryset=ContractLine.all_orgs.select_related("product").order_by("id")))
        .order_by("-end_date", "number")
    )
    for contract in contracts:
        # Σ of the prefetched lines: the stored Contract.arr is only as fresh as its last writer.
        contract.lines_arr = sum((line.arr for line in contract.lines.all()), Decimal("0"))
        # The contract that renews this one (services.superseding_q's rule), so an old term reads "renewed".
        contract.renewed_by = min(
            (s for s in contracts if is_successor(s, contract)), key=lambda s: (s.start_date, s.pk), default=None
        )
    plan = SuccessPlan.objects.filter(account=account).prefetch_related("objectives").first()
    context = {
        "account": account,
        "can_write": can_write,
        "children": list(Account.objects.filter(parent=account).order_by("name")),
        "contacts": contacts,
        "coverage": coverage,
        "contracts": contracts,
        "activities": _timeline(account),
        "timeline_limit": TIMELINE_LIMIT,
        "plan": plan,
        "objectives": list(plan.objectives.all()) if plan else [],
        "activity_form": (activity_form or ActivityForm(account=account)) if can_write else None,
        "objective_form": (objective_form or ObjectiveForm(account=account)) if can_write else None,
        "today": timezone.localdate(),
    }
    # The other apps' panels (health, renewals, ...: accounts.composition), registered in their AppConfig.ready().
    panels = account_panels()
    for panel in panels:
        if panel.context is not None:
            context.update(panel.context(request, account))
    context["panels"] = {slot: [p for p in panels if p.slot == slot and p.template] for slot in ("top", "bottom")}
    return context


@org_page()
@require_GET
def account_detail(request: HttpRequest, account_id: int) -> HttpResponse:
    """Account 360: header, contacts with role coverage, contracts and lines, timeline, success plan."""
    account = _get_account(account_id)
    return render(request, "accounts/account_detail.html", _account_context(request, account))


def _writable_account(request: HttpRequest, account_id: int) -> Account:
    account = _get_account(account_id)
    if not request.actor.can_write_account(account):
        raise PermissionDenied("You can read this account but not change it.")
    return account


def _timeline_panel(
    request: HttpRequest, account: Account, form: ActivityForm, *, logged: bool = False
) -> HttpResponse:
    """The timeline panel alone (form + entries), the fragment htmx swaps in."""
    context = {
        "account": account,
        "can_write": True,
        "activities": _timeline(account),
        "timeline_limit": TIMELINE_LIMIT,
        "activity_form": form,
        "logged": logged,
    }
    return render(request, "accounts/_timeline.html", context)


@org_page()
@require_POST
def log_activity(request: HttpRequest, account_id: int) -> HttpResponse:
    """Log an activity. With htmx: swap the timeline panel; without JS: redirect back (PRG)."""
    account = _writable_account(request, account_id)
    form = ActivityForm(request.POST, account=account)
    if form.is_valid():
        with transaction.atomic():
            form.save_for(request.user)
        if request.htmx:
            return _timeline_panel(request, account, ActivityForm(account=account), logged=True)
        messages.success(request, "Activity logged.")
        return redirect(reverse("account-detail", args=[request.organization.slug, account.pk]) + "#timeline")
    if request.htmx:
        # htmx does not swap 4xx answers by default: the panel with its errors comes back as a 200.
        return _timeline_panel(request, account, form)
    context = _account_context(request, account, activity_form=form)
    return render(request, "accounts/account_detail.html", context, status=400)


@org_page()
@require_POST
def add_objective(request: HttpRequest, account_id: int) -> HttpResponse:
    """Add an objective to the account's success plan."""
    account = _writable_account(request, account_id)
    form = ObjectiveForm(request.POST, account=account)
    if form.is_valid():
        with transaction.atomic():
            form.save_for_account()
        messages.success(request, "Objective added to the success plan.")
        return redirect(reverse("account-detail", args=[request.organization.slug, account.pk]) + "#success-plan")
    context = _account_context(request, account, objective_form=form)
    return render(request, "accounts/account_detail.html", context, status=400)


# --- Admin ------------------------------------------------------------------------------------------

admin_page = org_page(roles=[Role.ADMIN])


def _members(request: HttpRequest) -> list[Membership]:
    members = list(Membership.objects.select_related("user", "team").order_by("user__email"))
    locked = locked_usernames(m.user.get_username() for m in members)
    for member in members:
        member.login_locked = member.user.get_username().lower() in locked
    return members


def invitation_link(request: HttpRequest) -> Callable[[str], str]:
    """Turns an invitation token into the absolute link mailed to the invitee."""
    return lambda token: request.build_absolute_uri(reverse("invitation", args=[token]))


@admin_page
@require_http_methods(["GET", "POST"])
def admin_members(request: HttpRequest) -> HttpResponse:
    """Members and roles: list, change a role, invite a person by email, pending invitations."""
    org = request.organization
    invite_form = InviteMemberForm(organization=org)
    role_error: tuple[int, str] | None = None
    if request.method == "POST":
        if request.POST.get("action") == "invite":
            invite_form = InviteMemberForm(request.POST, organization=org)
            if invite_form.is_valid():
                data = invite_form.cleaned_data
                try:
                    invite_member(
                        organization=org,
                        email=data["email"],
                        role=data["role"],
                        invited_by=request.user,
                        accept_url=invitation_link(request),
                    )
                except InvitationError as exc:
                    invite_form.add_error(None if isinstance(exc, InvitationEmailError) else "email", str(exc))
                else:
                    messages.success(
                        request,
                        f"Invitation sent to {data['email']} as {Role(data['role']).label}. "
                        "They join once they accept it.",
                    )
                    return redirect("admin-members", org_slug=org.slug)
        else:
            form = MemberRoleForm(request.POST)
            if not form.is_valid():
                return HttpResponse("Bad request: unknown member or role.", status=400)
            membership = get_object_or_404(
                Membership.objects.select_related("user"), pk=form.cleaned_data["membership"]
            )
            new_role = form.cleaned_data["role"]
            admins = Membership.objects.filter(role=Role.ADMIN).count()
            if membership.role == Role.ADMIN and new_role != Role.ADMIN and admins <= 1:
                role_error = (membership.pk, "The organization needs at least one admin; promote someone else first.")
            else:
                change_member_role(membership, new_role, by=request.user)
                messages.success(request, f"{membership.user.email} is now {Role(new_role).label}.")
                return redirect("admin-members", org_slug=org.slug)
    invitations = Invitation.objects.select_related("invited_by").filter(
        accepted_at__isnull=True, declined_at__isnull=True, revoked_at__isnull=True
    )
    context = {
        "members": _members(request),
        "invitations": list(invitations.order_by("-created_at", "-pk")),
        "invite_form": invite_form,
        "roles": Role.choices,
        "role_error": role_error,
        "admin_tab": "members",
        "now": timezone.now(),
    }
    status = 400 if request.method == "POST" else 200
    return render(request, "admin/members.html", context, status=status)


@admin_page
@require_POST
def admin_revoke_invitation(request: HttpRequest, invitation_id: int) -> HttpResponse:
    """Withdraw an invitation: its link stops working at once."""
    invitation = get_object_or_404(Invitation.objects, pk=invitation_id)  # scoped: another org's is a 404
    if revoke_invitation(invitation, by=request.user):
        messages.success(request, f"Invitation to {invitation.email} withdrawn; its link no longer works.")
    return redirect("admin-members", org_slug=request.organization.slug)


@admin_page
@require_POST
def admin_unlock_member(request: HttpRequest, membership_id: int) -> HttpResponse:
    """Lift a member's sign-in lockout (too many failed passwords), from every address."""
    membership = get_object_or_404(Membership.objects.select_related("user"), pk=membership_id)
    unlock_login(membership.user.get_username())
    messages.success(request, f"{membership.user.email} can sign in again.")
    return redirect("admin-members", org_slug=request.organization.slug)


# --- Invitations (the invitee's side: no organization in the URL, the token says which) -------------

INVITATION_PROBLEMS = {
    "accepted": "This invitation has already been used.",
    "declined": "This invitation was declined.",
    "revoked": "This invitation was withdrawn by an admin of the organization.",
    "expired": "This invitation has expired: ask an admin of the organization for a new one.",
}


def _invitation_page(request: HttpRequest, context: dict[str, Any], status: int = 200) -> HttpResponse:
    response = render(request, "registration/invitation.html", context, status=status)
    # The token is in the address: keep it out of caches. (Referer headers never leave the site:
    # SECURE_REFERRER_POLICY is "same-origin". "no-referrer" here would make browsers send
    # "Origin: null" with the page's own forms, which the CSRF check rightly refuses.)
    response["Cache-Control"] = "no-store"
    return response


@require_http_methods(["GET", "POST"])
def invitation(request: HttpRequest, token: str) -> HttpResponse:
    """The invitee's page: sign in as the invited email (or create an account) and accept or decline.

    Whoever holds the link still needs the invited email's account (or, if there is none, gets to
    create it with that email): an admin who invites someone cannot act for them.
    """
    found = find_invitation(token)
    if found is None:
        return _invitation_page(request, {"problem": "This invitation link is not valid."}, status=404)
    with org_scope(found.organization):  # the invitation's own organization (row-level security)
        return _invitation_answer(request, found)


def _invitation_answer(request: HttpRequest, found: Invitation) -> HttpResponse:
    context: dict[str, Any] = {"invitation": found, "organization": found.organization}
    if not found.is_open:
        context["problem"] = INVITATION_PROBLEMS[found.status]
        return _invitation_page(request, context, status=410)
    user = request.user
    if user.is_authenticated:
        if (user.email or "").lower() != found.email:
            context["wrong_user"] = True
            return _invitation_page(request, context, status=403)
        if request.method == "POST":
            try:
                if request.POST.get("action") == "decline":
                    decline_invitation(found, user=user)
                    messages.info(request, f"You declined the invitation to {found.organization.name}.")
                    return redirect("home")
                accept_invitation(found, user=user)
            except InvitationError as exc:
                context["problem"] = str(exc)
                return _invitation_page(request, context, status=409)
            messages.success(request, f"Welcome to {found.organization.name}.")
            return redirect("my-book", org_slug=found.organization.slug)
        context["answer"] = True
        return _invitation_page(request, context)

    if get_user_model().objects.filter(email__iexact=found.email).exists():
        context["sign_in_url"] = f"{reverse('login')}?next={request.path}"
        return _invitation_page(request, context)
    form = InvitedUserForm(request.POST or None, email=found.email)
    if request.method == "POST" and form.is_valid():
        try:
            new_user = create_invited_user(
                found, name=form.cleaned_data["name"], password=form.cleaned_data["new_password1"]
            )
        except InvitationError as exc:
            context["problem"] = str(exc)
            return _invitation_page(request, context, status=409)
        login(request, new_user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome to {found.organization.name}.")
        return redirect("my-book", org_slug=found.organization.slug)
    context["signup_form"] = form
    return _invitation_page(request, context, status=400 if form.is_bound else 200)


def _key_page(
    request: HttpRequest,
    *,
    model: type[HashedKey],
    form_class: type[forms.Form],
    issue: Callable[[forms.Form], tuple[HashedKey, str]],
    template: str,
    tab: str,
    related: str,
    **extra: Any,
) -> HttpResponse:
    """The shared shape of the API-key and write-key pages: list, create (raw key shown once), revoke."""
    form = form_class()
    raw_key = new_key = None
    status = 200
    if request.method == "POST":
        form = form_class(request.POST)
        if form.is_valid():
            new_key, raw_key = issue(form)
            form = form_class()
        else:
            status = 400
    keys = model.objects.select_related(related).order_by("revoked_at", "-created_at")
    context = {"keys": keys, "form": form, "raw_key": raw_key, "new_key": new_key, "admin_tab": tab, **extra}
    response = render(request, template, context, status=status)
    if raw_key:
        response["Cache-Control"] = "no-store"  # the one page that shows a secret must not be cached
    return response


def _revoke_key(request: HttpRequest, model: type[HashedKey], key_id: int, page: str, consequence: str) -> HttpResponse:
    # model.objects is scoped to the page's organization: another organization's key is a 404.
    key = get_object_or_404(model.objects, pk=key_id)
    if key.revoke(by=request.user):
        messages.success(request, f"{key.name} ({key.key_prefix}…) revoked; {consequence}")
    return redirect(page, org_slug=request.organization.slug)


@admin_page
@require_http_methods(["GET", "POST"])
def admin_api_keys(request: HttpRequest) -> HttpResponse:
    """API keys: list (prefix, role, last use), create (the raw key is shown once), revoke."""
    return _key_page(
        request,
        model=ApiKey,
        form_class=ApiKeyForm,
        issue=lambda form: ApiKey.issue(
            organization=request.organization,
            role=form.cleaned_data["role"],
            name=form.cleaned_data["name"],
            by=request.user,
        ),
        template="admin/api_keys.html",
        tab="api-keys",
        related="user",
    )


@admin_page
@require_POST
def admin_revoke_api_key(request: HttpRequest, key_id: int) -> HttpResponse:
    return _revoke_key(request, ApiKey, key_id, "admin-api-keys", "it stops working at once.")


class WriteKeyForm(forms.Form):
    """Create a write key: only a name (the key itself is generated, never chosen)."""

    name = forms.CharField(max_length=120, initial="Write key", help_text="Where it is used, e.g. “Web app (prod)”.")


@admin_page
@require_http_methods(["GET", "POST"])
def admin_write_keys(request: HttpRequest) -> HttpResponse:
    """Write keys (event ingestion at ``/v1/track``, ``/v1/batch``…): list, create (raw key shown once), revoke."""
    return _key_page(
        request,
        model=WriteKey,
        form_class=WriteKeyForm,
        issue=lambda form: WriteKey.issue(
            organization=request.organization, name=form.cleaned_data["name"], created_by=request.user, by=request.user
        ),
        template="admin/write_keys.html",
        tab="write-keys",
        related="created_by",
        ingest_url=request.build_absolute_uri("/v1/"),
    )


@admin_page
@require_POST
def admin_revoke_write_key(request: HttpRequest, key_id: int) -> HttpResponse:
    return _revoke_key(request, WriteKey, key_id, "admin-write-keys", "events sent with it are refused at once.")


@admin_page
@require_GET
def admin_jobs(request: HttpRequest) -> HttpResponse:
    """Job runs, newest first; ``?kind=import`` narrows to one family of jobs."""
    runs = JobRun.objects.select_related("created_by").order_by("-created_at", "-pk")
    kind = request.GET.get("kind", "").strip()
    if kind:
        runs = runs.filter(Q(kind=kind) | Q(kind__startswith=f"{kind}_") | Q(kind__startswith=f"{kind}:"))
    page = Paginator(runs, PAGE_SIZE).get_page(request.GET.get("page"))
    tab = "imports" if kind == "import" else "jobs"
    return render(request, "admin/jobs.html", {"page": page, "runs": page.object_list, "kind": kind, "admin_tab": tab})


def _imports_page(request: HttpRequest, form: ImportForm, *, status: int = 200, refusal: str = "") -> HttpResponse:
    limits = import_limits(request.organization)
    runs = JobRun.objects.filter(kind=IMPORT_JOB_KIND).select_related("created_by").order_by("-created_at", "-pk")
    page = Paginator(runs, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "form": form,
        "page": page,
        "runs": page.object_list,
        "admin_tab": "imports",
        "columns": COLUMNS,
        "column_help": {kind: help for kind, help in COLUMN_HELP.items() if help},
        "refusal": refusal,
        "max_size": file_size_text(limits.max_bytes),
        "max_rows": f"{limits.max_rows:,}",
    }
    return render(request, "admin/imports.html", context, status=status)


@admin_page
@csrf_exempt  # the CSRF check reads the body: it runs in _start_upload, once the size cap is in place
@require_http_methods(["GET", "POST"])
def admin_imports(request: HttpRequest) -> HttpResponse:
    """Upload a CSV file of any spec §8 kind; it runs as a background job (then: its detail page).

    A file over the organization's limits is refused here, with the reason in the form: its size before
    the body is read (or as soon as a body without a length passes it), its rows before it is queued.
    """
    if request.method == "POST":
        limit = import_limits(request.organization).max_bytes
        request.upload_handlers.insert(0, CappedUploadHandler(request, limit))
        try:
            return _start_upload(request, limit)
        except UploadTooLarge as exc:
            return _imports_page(request, ImportForm(), status=413, refusal=str(exc.detail))
    kind = request.GET.get("kind", "")
    return _imports_page(request, ImportForm(initial={"kind": kind} if kind in COLUMNS else None))


@csrf_protect
def _start_upload(request: HttpRequest, max_bytes: int) -> HttpResponse:
    org = request.organization
    form = ImportForm(request.POST, request.FILES, max_bytes=max_bytes)
    if not form.is_valid():
        return _imports_page(request, form, status=400)
    data = form.cleaned_data
    path = store_upload(org, data["file"])
    try:
        count_rows(path, limit=import_limits(org).max_rows, name=data["file"].name)
    except ImportRefused as exc:
        discard_upload(path)
        form.add_error("file", str(exc))
        return _imports_page(request, form, status=400)
    with transaction.atomic():  # the task is enqueued when this commits (start_import uses on_commit)
        job = start_import(
            org, data["kind"], path, user=request.user, dry_run=data["dry_run"], filename=data["file"].name
        )
    # No flash message: the run's page says what is happening (queued, running, then the outcome).
    return redirect("admin-job-detail", org_slug=org.slug, job_id=job.pk)


def _can_rerun(run: JobRun) -> bool:
    """Run again: only a run whose worker died (its file is still there). A run that ended deleted its
    file; one that failed on its rows needs a corrected file, uploaded again."""
    return (
        run.kind == IMPORT_JOB_KIND
        and upload_available(run)
        and (run.is_stalled or (run.status == JobStatus.FAILED and not run.counts.get("errors")))
    )


@admin_page
@require_POST
def admin_job_rerun(request: HttpRequest, job_id: int) -> HttpResponse:
    """Run a stalled import again (its worker died, so its file is still on the server)."""
    run = get_object_or_404(JobRun.objects, pk=job_id, kind=IMPORT_JOB_KIND)
    if not _can_rerun(run):
        messages.error(
            request,
            f"Run #{run.pk} cannot run again: only a stalled run, whose file is still on the server, can. "
            "Upload the file again instead.",
        )
        return redirect("admin-job-detail", org_slug=request.organization.slug, job_id=run.pk)
    with transaction.atomic():
        JobRun.objects.filter(pk=run.pk).update(status=JobStatus.QUEUED)
        rerun_import(run)
    messages.success(request, f"Run #{run.pk} queued again.")
    return redirect("admin-job-detail", org_slug=request.organization.slug, job_id=run.pk)


@admin_page
@require_GET
def admin_job_errors_csv(request: HttpRequest, job_id: int) -> HttpResponse:
    """A run's errors as a CSV report: ``line, column, reason`` (one row per bad cell or row)."""
    run = get_object_or_404(JobRun.objects, pk=job_id)
    rows = [
        [e.get("line"), e.get("column"), e.get("reason") or e.get("error")] for e in public_errors(run.errors, run.pk)
    ]
    filename = f"{request.organization.slug}-run-{run.pk}-errors.csv"
    return csv_response(filename, ["line", "column", "reason"], lambda: rows, organization=request.organization)


@admin_page
@require_GET
def admin_job_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    """One job run; while it is queued or running the status panel polls itself with htmx."""
    run = get_object_or_404(JobRun.objects.select_related("created_by"), pk=job_id)
    is_import = run.kind == IMPORT_JOB_KIND
    params = run.params or {}
    context = {
        "run": run,
        "live": run.status in (JobStatus.QUEUED, JobStatus.RUNNING) and not run.is_stalled,
        "admin_tab": "imports" if is_import else "jobs",
        "is_import": is_import,
        "can_rerun": _can_rerun(run),
        # Members see plain reasons only: never a traceback, an exception's text or a server path.
        "errors": public_errors(run.errors, run.pk),
        "row_errors": bool(run.counts.get("errors")),
        # What was asked, without the server's file path.
        "asked": {k: params[k] for k in ("kind", "filename", "dry_run") if k in params}
        if is_import
        else {k: v for k, v in params.items() if k != "path"},
        "upload_again_url": reverse("admin-imports", args=[request.organization.slug])
        + "?"
        + urlencode({"kind": params.get("kind", "")}),
    }
    if request.htmx:
        return render(request, "admin/_job_status.html", context)
    return render(request, "admin/job_detail.html", context)
