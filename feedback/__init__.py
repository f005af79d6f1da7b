"""The feedback app (built by later issues; see docs/architecture.md)."""
