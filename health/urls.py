"""Pages of the health app, mounted under ``/o/<slug>/admin/features/``."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.admin_key_features, name="admin-key-features"),
    path("<int:feature_id>/unflag/", views.admin_unflag_key_feature, name="admin-unflag-key-feature"),
]
