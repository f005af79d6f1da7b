"""Project-wide signals that let apps react to each other without importing each other's internals."""

from django.dispatch import Signal

# Sent once when an organization is created; apps add their defaults (scorecards, segments, …).
organization_created = Signal()
