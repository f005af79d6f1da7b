from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(template_name="registration/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("o/<slug:org_slug>/", views.my_book, name="my-book"),
    path("o/<slug:org_slug>/accounts/<int:account_id>/", views.account_detail, name="account-detail"),
]
