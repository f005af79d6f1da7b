"""Recorded background job runs: defined in :mod:`cs_platform.organizations` (the kernel records them)."""

from cs_platform.organizations import JobRun

__all__ = ["JobRun"]
