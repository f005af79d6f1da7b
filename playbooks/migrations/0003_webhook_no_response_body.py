# Deliveries keep no response body any more (issue 18, finding 1), and the errors logged before
# the outbound guard (Python exception text such as "URLError: [Errno 111] Connection refused",
# which told a port scanner open from closed) are rewritten in the plain words used from now on.

import re

from django.db import migrations, models

_HTTP = re.compile(r"^HTTP (\d{3})")


def plain_words(error: str) -> str:
    if not error or error.startswith(("The ", "Timed out", "TLS failed", "Address not allowed", "Endpoint ")):
        return error
    match = _HTTP.match(error)
    if match:
        code = int(match.group(1))
        if 300 <= code < 400:
            return f"The receiver answered HTTP {code}, a redirect; redirects are not followed."
        return f"The receiver answered HTTP {code}."
    low = error.lower()
    if "refused" in low:
        return "The receiver refused the connection."
    if "timed out" in low or "timeout" in low:
        return "Timed out: the receiver did not answer in time."
    if "name or service not known" in low or "nodename" in low or "getaddrinfo" in low:
        return "The host name could not be resolved."
    if "certificate" in low or "ssl" in low:
        return "TLS failed: the secure connection could not be set up."
    return "The connection failed before the receiver answered."


def rewrite_errors(apps, schema_editor):
    for model_name, field in (("WebhookDelivery", "last_error"), ("WebhookAttempt", "error")):
        model = apps.get_model("playbooks", model_name)
        batch = []
        for row in model._default_manager.exclude(**{field: ""}).only("pk", field).iterator(chunk_size=2000):
            new = plain_words(getattr(row, field))
            if new != getattr(row, field):
                setattr(row, field, new)
                batch.append(row)
            if len(batch) >= 2000:
                model._default_manager.bulk_update(batch, [field])
                batch = []
        if batch:
            model._default_manager.bulk_update(batch, [field])


class Migration(migrations.Migration):

    dependencies = [
        ('playbooks', '0002_segments'),
    ]

    operations = [
        migrations.RemoveField(
            model_name='webhookdelivery',
            name='response_excerpt',
        ),
        migrations.AlterField(
            model_name='webhookdelivery',
            name='last_error',
            field=models.TextField(blank=True, help_text='Why the last try failed, in plain words'),
        ),
        migrations.RunPython(rewrite_errors, migrations.RunPython.noop),
    ]
