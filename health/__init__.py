"""The health app (built by later issues; see docs/architecture.md)."""
