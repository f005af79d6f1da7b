"""Models of the feedback app (arrive with their issue)."""
