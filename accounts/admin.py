"""Django admin for platform operators (superusers). Customers use Retain's own Admin screen instead.

The admin uses the models' default ``all_orgs`` manager on purpose: it is the operator's cross-tenant
view, which is why it is mounted at ``/django-admin/`` and limited to superusers.
"""

from django.contrib import admin

from .models import Account, ApiKey, Contract, Invitation, JobRun, Membership, Organization, Team


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "currency", "renewal_lead_days", "created_at"]
    search_fields = ["name", "slug"]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organization", "role", "team"]
    list_filter = ["role", "organization"]
    raw_id_fields = ["user", "team"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "manager"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "role", "key_prefix", "last_used_at", "revoked_at"]
    readonly_fields = ["key_prefix", "key_hash"]


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "external_id", "owner", "arr", "lifecycle_stage"]
    list_filter = ["organization", "touch_model"]
    search_fields = ["name", "external_id"]
    raw_id_fields = ["parent", "owner"]


@admin.register(Contract)
class ContractAdmin(admin.ModelAdmin):
    list_display = ["number", "organization", "account", "start_date", "end_date", "status", "arr"]
    raw_id_fields = ["account"]


@admin.register(JobRun)
class JobRunAdmin(admin.ModelAdmin):
    list_display = ["kind", "organization", "status", "created_at", "finished_at"]
    list_filter = ["status", "kind"]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "organization", "role", "status", "created_at", "expires_at"]
    list_filter = ["organization", "role"]
    search_fields = ["email"]
    # The token exists only in the invitee's email; its digest is no use to anyone here.
    readonly_fields = ["token_hash", "accepted_at", "accepted_by", "declined_at", "revoked_at", "revoked_by"]
    raw_id_fields = ["invited_by", "team"]
