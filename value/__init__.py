"""Value story (issue 15): the sales → CS handoff, onboarding projects and time to value, QBR/EBR value
reports, lifetime value and payback, and the "know the details" figures a CS leader is asked for."""
