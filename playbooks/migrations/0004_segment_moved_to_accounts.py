# Segment now belongs to accounts (accounts 0006) and keeps the table "playbooks_segment": playbooks
# forgets the model in Django's state only; the table and its rows stay.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0006_segment'),
        ('health', '0005_scorecard_segment_in_accounts'),
        ('playbooks', '0003_webhook_no_response_body'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[migrations.DeleteModel(name='Segment')],
        ),
    ]
