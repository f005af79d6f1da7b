"""The pages of versioned configuration shared by its kinds (docs/admin-guide.md, "Drafts"): the history
(every version, with Roll back), the version page (the diff field by field, the preview of a draft, the
Publish form; ``templates/admin/config_version.html``) and the Publish and Roll back posts. A kind's views
(:mod:`accounts.segment_views`, ``playbooks.playbook_admin_views``) bind them with a :class:`VersionPages`
naming its URLs and words, and keep their own decorators (who may see and post)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from . import versioning
from .choices import VersionState

__all__ = ["VersionPages"]


@dataclass(frozen=True)
class VersionPages:
    """One kind's version pages. The URL names take ``(org slug, object id)``, and the version's number for
    ``version_url`` and ``publish_url``; ``sides`` are the preview's two lists, ``(key, label, preview key)``."""

    kind: versioning.VersionedKind
    #: The admin tab and the breadcrumb (``segments``, ``Segments``).
    admin_tab: str
    kind_plural: str
    #: What a draft is compared with when nothing is published yet (``the live segment``).
    live_label: str
    list_url: str
    edit_url: str
    version_url: str
    publish_url: str
    rollback_url: str
    #: The editor URL's keyword for the object's id (``segment_id``).
    id_kwarg: str
    preview_template: str
    sides: tuple[tuple[str, str, str], ...]

    def history(self, request: HttpRequest, obj: Any) -> dict[str, Any]:
        """``versions`` (each with its page's ``url``), ``can_roll_back`` and ``rollback_url``."""
        slug = request.organization.slug  # type: ignore[attr-defined]
        versions = list(versioning.versions_of(self.kind, obj))
        for v in versions:
            v.url = reverse(self.version_url, args=[slug, obj.pk, v.number])
        return {
            "versions": versions,
            "can_roll_back": versioning.previous_published(self.kind, obj) is not None,
            "rollback_url": reverse(self.rollback_url, args=[slug, obj.pk]),
        }

    def version_page(
        self,
        request: HttpRequest,
        obj: Any,
        version: Any,
        *,
        preview: dict[str, Any] | None,
        status: int = 200,
        **extra: Any,
    ) -> HttpResponse:
        """The version page: the diff against the published version (for the published one, against the one
        published before it), ``preview`` (``None``: not shown) and ``extra`` context."""
        slug = request.organization.slug  # type: ignore[attr-defined]
        if version.state == VersionState.PUBLISHED:
            against = versioning.previous_published(self.kind, obj)
            label = f"the version published before (v{against.number})" if against else "nothing before it"
        else:
            against = versioning.published_version(self.kind, obj)
            label = f"the published version (v{against.number})" if against else self.live_label
        sides = (
            [{"key": key, "label": text, "rows": preview[source]} for key, text, source in self.sides]
            if preview
            else []
        )
        context = {
            **self.history(request, obj),
            "admin_tab": self.admin_tab,
            "subject": obj.name,
            "kind_plural": self.kind_plural,
            "list_url": reverse(self.list_url, args=[slug]),
            "edit_url": reverse(self.edit_url, args=[slug, obj.pk]),
            "publish_url": reverse(self.publish_url, args=[slug, obj.pk, version.number]),
            "version": version,
            "changes": versioning.diff_rows(versioning.diff_version(self.kind, version, against)),
            "against_label": label,
            "preview": preview,
            "sides": sides,
            "preview_template": self.preview_template,
            **extra,
        }
        return render(request, "admin/config_version.html", context, status=status)

    def _back(self, request: HttpRequest, obj: Any) -> HttpResponse:
        slug = request.organization.slug  # type: ignore[attr-defined]
        return redirect(self.edit_url, org_slug=slug, **{self.id_kwarg: obj.pk})

    def publish(
        self,
        request: HttpRequest,
        obj: Any,
        version: Any,
        *,
        page: Callable[..., HttpResponse],
        published: Callable[[Any], str],
    ) -> HttpResponse:
        """The Publish post (``note`` required): the version page again with every problem (``page(status=,
        publish_errors=)``) when refused, else back to the editor with ``published(version)`` as the message."""
        note = (request.POST.get("note") or "").strip()[:300]
        if not note:
            return page(status=400, publish_errors={"note": ["Say what changes."]})
        try:
            versioning.publish(self.kind, version, user=request.user, note=note)
        except versioning.DraftInvalid as exc:
            return page(status=400, publish_errors=exc.errors)
        except versioning.DraftConflict as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, published(version))
        return self._back(request, obj)

    def rollback(self, request: HttpRequest, obj: Any) -> HttpResponse:
        """The Roll back post (``note`` required): a new version with the content published before the
        current one; back to the editor with what happened."""
        note = (request.POST.get("note") or "").strip()[:300]
        if not note:
            messages.error(request, "Not rolled back: say why (the note is required).")
        else:
            try:
                version = versioning.rollback(self.kind, obj, user=request.user, note=note)
            except (versioning.DraftConflict, versioning.DraftInvalid) as exc:
                messages.error(request, f"Not rolled back: {exc}")
            else:
                messages.success(request, f"Rolled back: version {version.number} is published.")
        return self._back(request, obj)
