"""Admin pages of the work queue (admins only): CTA types and reasons at ``/o/<slug>/admin/cta-types/``, email
templates with a rendered preview at ``/o/<slug>/admin/email-templates/``; and the public one-click unsubscribe
page ``/u/<token>/`` of templated email."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from accounts.choices import Role
from accounts.models import Account, Contact
from accounts.services import unsubscribe_contact
from cs_platform.pages import org_page
from cs_platform.tenancy import org_scope

from . import cta_admin
from .emails import MERGE_FIELDS, read_unsubscribe_token, render_email
from .models import CtaReason, CtaType, EmailSendLog, EmailTemplate
from .work_admin_forms import EmailTemplateForm, LabelForm

admin_page = org_page(roles=[Role.ADMIN])


def _errors(exc: ValidationError) -> str:
    return " ".join(str(m) for m in exc.messages)


# --- CTA types and reasons ---------------------------------------------------------------------------


@admin_page
@require_http_methods(["GET"])
def cta_types(request: HttpRequest) -> HttpResponse:
    """Every CTA type with its reasons, and the forms to add, rename, deactivate and reactivate them."""
    types = CtaType.objects.prefetch_related(
        Prefetch("reasons", queryset=CtaReason.objects.order_by("-is_active", "position", "label"))
    ).order_by("-is_active", "position", "label")
    return render(request, "playbooks/admin_cta_types.html", {"types": types, "admin_tab": "cta-types"})


def _back_to_types(request: HttpRequest) -> HttpResponse:
    return redirect("admin-cta-types", org_slug=request.organization.slug)  # type: ignore[attr-defined]


@admin_page
@require_POST
def cta_type_add(request: HttpRequest) -> HttpResponse:
    form = LabelForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError("Give the type a name of at most 80 characters.")
        created = cta_admin.add_cta_type(request.organization, form.cleaned_data["label"])  # type: ignore[attr-defined]
    except ValidationError as exc:
        messages.error(request, f"Type not added: {_errors(exc)}")
    else:
        messages.success(request, f"Type “{created.label}” added. Add its reasons below.")
    return _back_to_types(request)


@admin_page
@require_POST
def cta_reason_add(request: HttpRequest, type_id: int) -> HttpResponse:
    cta_type = get_object_or_404(CtaType.objects, pk=type_id)
    form = LabelForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError("Give the reason a name of at most 80 characters.")
        created = cta_admin.add_cta_reason(cta_type, form.cleaned_data["label"])
    except ValidationError as exc:
        messages.error(request, f"Reason not added: {_errors(exc)}")
    else:
        messages.success(request, f"Reason “{created.label}” added to “{cta_type.label}”.")
    return _back_to_types(request)


def _item(kind: str, item_id: int) -> CtaType | CtaReason:
    model = CtaType if kind == "type" else CtaReason
    return get_object_or_404(model.objects, pk=item_id)


@admin_page
@require_POST
def cta_item_rename(request: HttpRequest, kind: str, item_id: int) -> HttpResponse:
    item = _item(kind, item_id)
    old = item.label
    try:
        cta_admin.rename(item, request.POST.get("label", ""))
    except ValidationError as exc:
        messages.error(request, f"“{old}” not renamed: {_errors(exc)}")
    else:
        messages.success(request, f"“{old}” renamed “{item.label}”.")
    return _back_to_types(request)


@admin_page
@require_POST
def cta_item_toggle(request: HttpRequest, kind: str, item_id: int) -> HttpResponse:
    item = _item(kind, item_id)
    try:
        cta_admin.set_active(item, not item.is_active)
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    else:
        state = "reactivated" if item.is_active else "deactivated: no new CTA of it; open ones stay"
        messages.success(request, f"“{item.label}” {state}.")
    return _back_to_types(request)


# --- Email templates ---------------------------------------------------------------------------------


@admin_page
@require_http_methods(["GET", "POST"])
def email_templates(request: HttpRequest) -> HttpResponse:
    """The organization's email templates, and a form to write a new one."""
    organization = request.organization  # type: ignore[attr-defined]
    form = EmailTemplateForm(organization=organization)
    status = 200
    if request.method == "POST":
        form = EmailTemplateForm(request.POST, organization=organization)
        if form.is_valid():
            template = form.save(commit=False)
            template.organization, template.created_by = organization, request.user
            template.save()
            messages.success(request, f"Template “{template.name}” saved. Preview it against an account below.")
            return redirect("admin-email-template", org_slug=organization.slug, template_id=template.pk)
        status = 400
    context = {
        "templates": EmailTemplate.objects.order_by("-is_active", "name"),
        "form": form,
        "merge_fields": MERGE_FIELDS,
        "admin_tab": "email-templates",
    }
    return render(request, "playbooks/admin_email_templates.html", context, status=status)


def _preview_account(request: HttpRequest) -> Account | None:
    """The account the preview is rendered against: the first whose name contains ``?account=``, else the
    first account by name."""
    accounts = Account.objects.select_related("owner").order_by("name", "pk")
    query = request.GET.get("account", "").strip()
    return (accounts.filter(name__icontains=query).first() if query else None) or accounts.first()


@admin_page
@require_http_methods(["GET", "POST"])
def email_template(request: HttpRequest, template_id: int) -> HttpResponse:
    """Edit one template; its rendered preview for a chosen account and its first reachable contact."""
    organization = request.organization  # type: ignore[attr-defined]
    template = get_object_or_404(EmailTemplate.objects, pk=template_id)
    form = EmailTemplateForm(instance=template, organization=organization)
    status = 200
    if request.method == "POST":
        form = EmailTemplateForm(request.POST, instance=template, organization=organization)
        if form.is_valid():
            form.save()
            messages.success(request, f"Template “{template.name}” saved.")
            return redirect(request.get_full_path())
        status = 400
        template.refresh_from_db()  # preview what is saved, not the refused text
    account = _preview_account(request)
    contact = None
    preview = None
    if account is not None:
        contact = (
            Contact.objects.filter(account=account, unsubscribed=False, is_active=True, departed_at__isnull=True)
            .order_by("pk")
            .first()
        )
        preview = render_email(template, account, contact)
    context = {
        "template": template,
        "form": form,
        "merge_fields": MERGE_FIELDS,
        "preview_account": account,
        "preview_contact": contact,
        "account_query": request.GET.get("account", ""),
        "preview": preview,
        "sends": EmailSendLog.objects.filter(template=template).select_related("account")[:20],
        "admin_tab": "email-templates",
    }
    return render(request, "playbooks/admin_email_template.html", context, status=status)


@admin_page
@require_POST
def email_template_toggle(request: HttpRequest, template_id: int) -> HttpResponse:
    template = get_object_or_404(EmailTemplate.objects, pk=template_id)
    template.is_active = not template.is_active
    template.save(update_fields=["is_active", "updated_at"])
    state = "reactivated" if template.is_active else "deactivated: playbooks no longer send it"
    messages.success(request, f"Template “{template.name}” {state}.")
    return redirect("admin-email-template", org_slug=request.organization.slug, template_id=template.pk)  # type: ignore[attr-defined]


# --- Unsubscribe (public) -----------------------------------------------------------------------------


@csrf_exempt  # the signed token is the credential; RFC 8058 one-click POSTs come from mail providers
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """``GET`` asks to confirm (link scanners and previews follow links: a GET must change nothing);
    ``POST`` (the button, or the mail client's one-click ``List-Unsubscribe-Post``) unsubscribes."""
    found = read_unsubscribe_token(token)
    if found is None:
        return render(request, "playbooks/unsubscribe.html", {"state": "invalid"}, status=404)
    organization_id, contact_id = found
    if request.method == "POST":
        # The signed token names the organization: its scope (and row-level security's) for the write.
        with org_scope(organization_id):
            if not unsubscribe_contact(organization_id, contact_id):
                return render(request, "playbooks/unsubscribe.html", {"state": "invalid"}, status=404)
        return render(request, "playbooks/unsubscribe.html", {"state": "done"})
    return render(request, "playbooks/unsubscribe.html", {"state": "confirm", "token": token})
