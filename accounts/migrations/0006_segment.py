# Segment moves from playbooks to accounts without moving data: the model keeps its table
# (db_table = "playbooks_segment"), so this migration changes Django's state only. Together with
# health 0005 (the scorecard's foreign key now names accounts.Segment) and playbooks 0004 (playbooks
# forgets the model), the database is untouched.

import django.db.models.deletion
import django.db.models.manager
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0005_organization_import_limits'),
        ('playbooks', '0002_segments'),  # created the table this model now owns
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='Segment',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=120)),
                        ('description', models.TextField(blank=True)),
                        ('rules', models.JSONField(default=dict)),
                        ('position', models.PositiveIntegerField(default=0, help_text='Display order on dashboards')),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.organization')),
                    ],
                    options={
                        'db_table': 'playbooks_segment',
                        'ordering': ['position', 'name'],
                        'abstract': False,
                        'base_manager_name': 'all_orgs',
                        'default_manager_name': 'all_orgs',
                        'constraints': [models.UniqueConstraint(fields=('organization', 'name'), name='playbooks_segment_unique_name')],
                    },
                    managers=[
                        ('all_orgs', django.db.models.manager.Manager()),
                    ],
                ),
            ],
        ),
    ]
