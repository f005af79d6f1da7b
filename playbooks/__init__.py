"""The playbooks app (built by later issues; see docs/architecture.md)."""
