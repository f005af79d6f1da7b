"""The playbook editor pages, mounted under ``/o/<slug>/admin/playbooks/`` by the composition root."""

from django.urls import path

from . import playbook_admin_views as views

urlpatterns = [
    path("", views.playbooks, name="admin-playbooks"),
    path("new/", views.playbook, name="admin-playbook-new"),
    path("<int:playbook_id>/", views.playbook, name="admin-playbook"),
    path("<int:playbook_id>/activation/", views.playbook_activation, name="admin-playbook-activation"),
    path("<int:playbook_id>/versions/<int:number>/", views.playbook_version, name="admin-playbook-version"),
    path("<int:playbook_id>/versions/<int:number>/publish/", views.playbook_publish, name="admin-playbook-publish"),
    path("<int:playbook_id>/rollback/", views.playbook_rollback, name="admin-playbook-rollback"),
]
