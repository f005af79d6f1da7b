"""Admin pages of the work queue, mounted under ``/o/<slug>/admin/`` by the composition root."""

from django.urls import path

from . import work_admin_views as views

urlpatterns = [
    path("cta-types/", views.cta_types, name="admin-cta-types"),
    path("cta-types/add/", views.cta_type_add, name="admin-cta-type-add"),
    path("cta-types/<int:type_id>/reasons/add/", views.cta_reason_add, name="admin-cta-reason-add"),
    path("cta-types/<slug:kind>/<int:item_id>/rename/", views.cta_item_rename, name="admin-cta-item-rename"),
    path("cta-types/<slug:kind>/<int:item_id>/toggle/", views.cta_item_toggle, name="admin-cta-item-toggle"),
    path("email-templates/", views.email_templates, name="admin-email-templates"),
    path("email-templates/<int:template_id>/", views.email_template, name="admin-email-template"),
    path("email-templates/<int:template_id>/toggle/", views.email_template_toggle, name="admin-email-template-toggle"),
]

#: Public (no sign-in): the one-click unsubscribe link of templated email, mounted at ``/u/``.
unsubscribe_urlpatterns = [path("<str:token>/", views.unsubscribe, name="email-unsubscribe")]
