"""Models of the accounts app: tenancy (organizations, people, keys), the customer model and job runs."""

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
from .tenancy import ApiKey, Invitation, Membership, Organization, Team, UserPreference, WriteKey

__all__ = [
    "Account",
    "Activity",
    "ActivityContact",
    "ApiKey",
    "CapacityTarget",
    "Contact",
    "Contract",
    "ContractLine",
    "Invitation",
    "JobRun",
    "Membership",
    "Objective",
    "Organization",
    "Product",
    "SuccessPlan",
    "Team",
    "UserPreference",
    "WriteKey",
]
