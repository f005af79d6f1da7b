"""Models of the accounts app: the customer model and segments, and (re-exported from
:mod:`cs_platform.organizations`, where they live with ``app_label = "accounts"``) the tenancy models and job runs."""

from .customers import (
    Account,
    Activity,
    ActivityContact,
    CapacityTarget,
    Contact,
    Contract,
    ContractLine,
    Objective,
    Product,
    SuccessPlan,
)
from .jobs import JobRun
from .segments import Segment, SegmentMembership, SegmentTransition, SegmentVersion, TransitionKind
from .tenancy import ApiKey, Invitation, Membership, Organization, Team, UserPreference, WriteKey
from .versions import ConfigVersionBase

__all__ = [
    "Account",
    "Activity",
    "ActivityContact",
    "ApiKey",
    "CapacityTarget",
    "ConfigVersionBase",
    "Contact",
    "Contract",
    "ContractLine",
    "Invitation",
    "JobRun",
    "Membership",
    "Objective",
    "Organization",
    "Product",
    "Segment",
    "SegmentMembership",
    "SegmentTransition",
    "SegmentVersion",
    "TransitionKind",
    "SuccessPlan",
    "Team",
    "UserPreference",
    "WriteKey",
]
