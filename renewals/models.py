"""Models of the renewals app (arrive with their issue)."""
