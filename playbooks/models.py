"""Models of the playbooks app (arrive with their issue)."""
