"""Admin → Email capture: ``/o/<slug>/admin/integrations/email/``.

Every member sees the capture address (to BCC or forward to) and the counters; admins change the settings
(on/off, never-capture domains, the IMAP mailbox — password input, never filled back), regenerate the address
and work the unmatched inbox (assign to an account → an ``email`` activity, or discard). Plain forms, no script
(CSP-clean), usable at 390×844.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from accounts.models import Account
from cs_platform.choices import Role
from cs_platform.pages import org_page

from . import email_capture as ec
from .choices import CapturedEmailStatus
from .models import CapturedEmail

INBOX_LIMIT = 50
ACCOUNT_CHOICES_LIMIT = 1000


class CaptureSettingsForm(forms.Form):
    enabled = forms.BooleanField(required=False, label="Capture email")
    never_capture_domains = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text="One domain per line (or comma separated). Participants of these domains (and their subdomains) "
        "are ignored; a message with nobody else is not captured.",
    )

    def clean_never_capture_domains(self) -> list[str]:
        domains, problems = ec.clean_domains(self.cleaned_data.get("never_capture_domains") or "")
        if problems:
            raise forms.ValidationError(problems)
        return domains


class MailboxForm(forms.Form):
    host = forms.CharField(max_length=253, help_text="IMAP over TLS (imaps).")
    port = forms.IntegerField(min_value=1, max_value=65535, initial=993)
    user = forms.CharField(max_length=320)
    password = forms.CharField(
        max_length=2000, widget=forms.PasswordInput(render_value=False), help_text="Stored encrypted; never shown."
    )
    folder = forms.CharField(max_length=200, initial="INBOX")

    def clean_host(self) -> str:
        host = self.cleaned_data["host"].strip().lower()
        problem = ec.mailbox_problem(host)
        if problem:
            raise forms.ValidationError(problem)
        return host


def _render(request: HttpRequest, context: dict[str, Any], status: int = 200) -> HttpResponse:
    response = render(request, "integrations/email_capture.html", context, status=status)
    response["Cache-Control"] = "no-store"
    return response


@org_page()
@require_http_methods(["GET", "POST"])
def email_capture(request: HttpRequest) -> HttpResponse:
    org = request.organization
    is_admin = request.actor.role == Role.ADMIN
    capture = ec.ensure_capture(org) if is_admin else ec.EmailCapture.objects.first()
    settings_form = CaptureSettingsForm(
        initial={
            "enabled": capture.enabled if capture else True,
            "never_capture_domains": "\n".join(capture.never_capture_domains) if capture else "",
        }
    )
    mailbox_form = MailboxForm()
    status = 200
    if request.method == "POST":
        if not is_admin:
            raise PermissionDenied("Only admins change email capture.")
        action = request.POST.get("action")
        if action == "settings":
            settings_form = CaptureSettingsForm(request.POST)
            if settings_form.is_valid():
                capture.enabled = settings_form.cleaned_data["enabled"]
                capture.never_capture_domains = settings_form.cleaned_data["never_capture_domains"]
                capture.save(update_fields=["enabled", "never_capture_domains", "updated_at"])
                messages.success(request, "Email capture settings saved.")
                return redirect("admin-email-capture", org_slug=org.slug)
            status = 400
        elif action == "regenerate":
            ec.regenerate_token(capture)
            messages.success(request, "New capture address: the old one refuses mail from now on.")
            return redirect("admin-email-capture", org_slug=org.slug)
        elif action == "mailbox":
            mailbox_form = MailboxForm(request.POST)
            if mailbox_form.is_valid():
                ec.set_mailbox(capture, **mailbox_form.cleaned_data, by=request.user)
                messages.success(request, "Mailbox saved; it is polled every few minutes.")
                return redirect("admin-email-capture", org_slug=org.slug)
            status = 400
        elif action == "remove_mailbox":
            ec.remove_mailbox(capture)
            messages.success(request, "Mailbox removed.")
            return redirect("admin-email-capture", org_slug=org.slug)
        elif action in ("assign", "discard"):
            captured = get_object_or_404(CapturedEmail.objects.all(), pk=request.POST.get("email") or 0)
            try:
                if action == "assign":
                    account = get_object_or_404(Account.objects.all(), pk=request.POST.get("account") or 0)
                    ec.assign(captured, account, user=request.user)
                    messages.success(request, f"On {account.name}'s timeline.")
                else:
                    ec.discard(captured, user=request.user)
                    messages.success(request, "Discarded.")
            except ec.InboxError as exc:
                messages.error(request, str(exc))
            return redirect("admin-email-capture", org_slug=org.slug)
    context: dict[str, Any] = {
        "org": org, "admin_tab": "email-capture", "capture": capture, "is_admin": is_admin,
        "address": ec.capture_address(capture, org) if capture else "",
        "settings_form": settings_form, "mailbox_form": mailbox_form,
    }  # fmt: skip
    if is_admin:
        context["inbox"] = list(
            CapturedEmail.objects.filter(status=CapturedEmailStatus.UNMATCHED).order_by("-sent_at", "-pk")[:INBOX_LIMIT]
        )
        context["waiting"] = ec.waiting_count(org.pk)
        context["inbox_total"] = CapturedEmail.objects.filter(status=CapturedEmailStatus.UNMATCHED).count()
        context["accounts"] = list(Account.objects.order_by("name").values_list("pk", "name")[:ACCOUNT_CHOICES_LIMIT])
        context["mailbox_host"] = capture.mailbox.credentials.get("host", "") if capture.mailbox_id else ""
    return _render(request, context, status)
