"""Every existing organization gets the default onboarding template (new ones get it from the
``organization_created`` hook in value/apps.py). The phases are a frozen copy of
``value.onboarding.DEFAULT_PHASES`` as of this migration: later edits of the constant do not rewrite history."""

from django.db import migrations

PHASES = [
    {"name": "Kickoff", "milestones": [
        {"key": "kickoff", "name": "Kickoff call: success measures confirmed", "owner_role": "csm",
         "due_offset_days": 0, "mark": "kickoff"}]},
    {"name": "Configure", "milestones": [
        {"key": "data-import", "name": "Data import", "owner_role": "implementation", "due_offset_days": 14,
         "mark": ""},
        {"key": "training", "name": "Admin and user training", "owner_role": "implementation",
         "due_offset_days": 30, "mark": ""}]},
    {"name": "Launch", "milestones": [
        {"key": "go-live", "name": "Go-live", "owner_role": "csm", "due_offset_days": 45, "mark": "go_live"}]},
    {"name": "Adopt", "milestones": [
        {"key": "first-value", "name": "First value confirmed with the sponsor", "owner_role": "customer",
         "due_offset_days": 90, "mark": "first_value"}]},
]  # fmt: skip


def create_default_templates(apps, schema_editor):
    Organization = apps.get_model("accounts", "Organization")
    Template = apps.get_model("value", "OnboardingTemplate")
    has_default = set(Template.all_orgs.filter(is_default=True).values_list("organization_id", flat=True))
    rows = []
    for org_id in Organization.objects.exclude(pk__in=has_default).values_list("pk", flat=True):
        taken = Template.all_orgs.filter(organization_id=org_id, name="Standard onboarding").exists()
        rows.append(
            Template(
                organization_id=org_id,
                name="Standard onboarding (default)" if taken else "Standard onboarding",
                is_default=True,
                phases=PHASES,
                description="Kickoff, configure, launch and adopt: the starting point every organization gets.",
            )
        )
    Template.all_orgs.bulk_create(rows)


class Migration(migrations.Migration):
    dependencies = [
        ("value", "0002_milestone_due_offset_days"),
    ]

    operations = [
        migrations.RunPython(create_default_templates, migrations.RunPython.noop),
    ]
