"""Organizations (tenants), their members, teams and API keys: defined in :mod:`cs_platform.organizations`.

Kept as a module because migrations name its default callables (``accounts.models.tenancy.default_health_bands``
and the others): they must stay importable here, as the very same functions.
"""

from cs_platform.organizations import (
    ApiKey,
    HashedKey,
    Invitation,
    Membership,
    Organization,
    Team,
    UserPreference,
    WriteKey,
    default_health_bands,
    default_lifecycle_stages,
    default_touch_cadences,
)

__all__ = [
    "ApiKey",
    "HashedKey",
    "Invitation",
    "Membership",
    "Organization",
    "Team",
    "UserPreference",
    "WriteKey",
    "default_health_bands",
    "default_lifecycle_stages",
    "default_touch_cadences",
]
