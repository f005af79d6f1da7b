"""Page URLs of accounts. Everything of an organization lives under ``/o/<slug>/``.

Other apps' pages are mounted beside these by the composition root (:mod:`cs_platform.urls`), never
included from here: accounts knows no app above it.
"""

from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import audit_views, segment_views, views

org_patterns = [
    path("", views.my_book, name="my-book"),
    path("accounts/<int:account_id>/", views.account_detail, name="account-detail"),
    path("accounts/<int:account_id>/activities/", views.log_activity, name="account-log-activity"),
    path("accounts/<int:account_id>/objectives/", views.add_objective, name="account-add-objective"),
    # Screens that later issues fill; each says what is coming.
    path("admin/", views.admin_members, name="admin-members"),
    path(
        "admin/invitations/<int:invitation_id>/revoke/",
        views.admin_revoke_invitation,
        name="admin-revoke-invitation",
    ),
    path("admin/members/<int:membership_id>/unlock/", views.admin_unlock_member, name="admin-unlock-member"),
    path("admin/api-keys/", views.admin_api_keys, name="admin-api-keys"),
    path("admin/api-keys/<int:key_id>/revoke/", views.admin_revoke_api_key, name="admin-revoke-api-key"),
    path("admin/write-keys/", views.admin_write_keys, name="admin-write-keys"),
    path("admin/write-keys/<int:key_id>/revoke/", views.admin_revoke_write_key, name="admin-revoke-write-key"),
    path("admin/imports/", views.admin_imports, name="admin-imports"),
    path("admin/segments/", segment_views.admin_segments, name="admin-segments"),
    path("admin/segments/new/", segment_views.admin_segment, name="admin-segment-new"),
    path("admin/segments/preview/", segment_views.admin_segment_preview, name="admin-segment-preview"),
    path("admin/segments/<int:segment_id>/", segment_views.admin_segment, name="admin-segment"),
    path(
        "admin/segments/<int:segment_id>/versions/<int:number>/",
        segment_views.admin_segment_version,
        name="admin-segment-version",
    ),
    path(
        "admin/segments/<int:segment_id>/versions/<int:number>/publish/",
        segment_views.admin_segment_publish,
        name="admin-segment-publish",
    ),
    path(
        "admin/segments/<int:segment_id>/rollback/", segment_views.admin_segment_rollback, name="admin-segment-rollback"
    ),
    path("admin/jobs/", views.admin_jobs, name="admin-jobs"),
    path("admin/audit/", audit_views.admin_audit, name="admin-audit"),
    path("admin/jobs/<int:job_id>/", views.admin_job_detail, name="admin-job-detail"),
    path("admin/jobs/<int:job_id>/errors.csv", views.admin_job_errors_csv, name="admin-job-errors-csv"),
    path("admin/jobs/<int:job_id>/rerun/", views.admin_job_rerun, name="admin-job-rerun"),
]

urlpatterns = [
    path("", views.home, name="home"),
    path(
        "login/",
        auth_views.LoginView.as_view(template_name="registration/login.html", redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("invitations/<str:token>/", views.invitation, name="invitation"),
    path("o/<slug:org_slug>/", include(org_patterns)),
]
