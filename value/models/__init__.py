"""Models of the value-story app: onboarding (handoff, templates, projects, milestones), business reviews,
and acquisition costs."""

from .economics import AcquisitionCost
from .onboarding import Handoff, OnboardingMilestone, OnboardingProject, OnboardingTemplate
from .reviews import BusinessReview

__all__ = [
    "AcquisitionCost",
    "BusinessReview",
    "Handoff",
    "OnboardingMilestone",
    "OnboardingProject",
    "OnboardingTemplate",
]
