"""Shared API machinery: key auth, org resolution, the fail-closed base viewset, errors, limits."""
