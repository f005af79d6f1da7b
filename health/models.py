"""Models of the health app (arrive with their issue)."""
