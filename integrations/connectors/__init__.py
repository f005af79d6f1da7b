"""The connectors: ``base`` (what a connector implements, the registry) and one module per vendor."""

from __future__ import annotations

import importlib

__all__ = ["BUILTIN", "autodiscover"]

#: Connector modules imported at start-up (each registers its class with ``base.register``).
BUILTIN = (
    "integrations.connectors.hubspot",
    "integrations.connectors.salesforce",
    "integrations.connectors.zendesk",
    "integrations.connectors.stripe",
)


def autodiscover() -> None:
    for module in BUILTIN:
        importlib.import_module(module)
