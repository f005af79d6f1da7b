"""The one response shape of a configuration diff (cs_platform.configdiff), shared by the versions
endpoints of scorecards, segments and playbooks (``…/versions/{number}/diff/``)."""

from __future__ import annotations

from rest_framework import serializers

__all__ = ["ConfigChangeSerializer", "VersionDiffSerializer"]


class ConfigChangeSerializer(serializers.Serializer):
    path = serializers.CharField(
        help_text="Where: `components[adoption].weight` (components and groups by key), `rules.conditions[0].value`, "
        "`actions[1].reason`, `name`"
    )
    change = serializers.ChoiceField(choices=["added", "removed", "changed"])
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)


class VersionDiffSerializer(serializers.Serializer):
    version = serializers.IntegerField(help_text="The number of the version diffed")
    against = serializers.IntegerField(
        allow_null=True,
        help_text="The number of the version it is compared with (default: the published one; null: none yet)",
    )
    changes = ConfigChangeSerializer(many=True, help_text="One row per field that differs, in document order")
