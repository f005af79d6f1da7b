# The scorecard's segment is accounts.Segment now (moved from playbooks, same table "playbooks_segment"):
# the column and its foreign key already point at that table, so only Django's state changes.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0006_segment'),
        ('health', '0004_exact_usage_tallies'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.AlterField(
                    model_name='scorecard',
                    name='segment',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='scorecards', to='accounts.segment'),
                ),
            ],
        ),
    ]
