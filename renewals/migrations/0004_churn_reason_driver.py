"""The churn reason's ``driver`` (issue 15, "know the details"): what drove a loss in the seed's terms.

Existing reasons are classified by code where it is one of the spec's defaults (the map is copied here, as
a migration must not import the model module's current constants), and otherwise an unavoidable reason is
``external`` (hard to affect); any other custom reason stays unclassified (``""``) for an admin to decide.
"""

from django.db import migrations, models

DRIVERS = {
    "poor_adoption": "adoption",
    "product_fit": "product_gap",
    "lost_champion": "adoption",
    "support_quality": "service",
    "price": "commercial",
    "competitor": "commercial",
    "budget_cut": "external",
    "acquired_merged": "external",
    "out_of_business": "external",
}


def classify(apps, schema_editor):
    ChurnReason = apps.get_model("renewals", "ChurnReason")
    for code, driver in DRIVERS.items():
        ChurnReason._base_manager.filter(code=code).update(driver=driver)
    ChurnReason._base_manager.filter(driver="", avoidable=False).update(driver="external")


def unclassify(apps, schema_editor):
    apps.get_model("renewals", "ChurnReason")._base_manager.update(driver="")


class Migration(migrations.Migration):
    dependencies = [
        ("renewals", "0003_backtests"),
    ]

    operations = [
        migrations.AddField(
            model_name="churnreason",
            name="driver",
            field=models.CharField(
                blank=True,
                choices=[
                    ("adoption", "Poor adoption"),
                    ("product_gap", "Product fit or gaps"),
                    ("service", "Service"),
                    ("commercial", "Commercial"),
                    ("external", "Hard to affect (external)"),
                ],
                default="",
                help_text="What drove the loss (adoption, product gap, service, commercial, external); empty = unclassified",
                max_length=12,
            ),
        ),
        migrations.RunPython(classify, unclassify),
    ]
