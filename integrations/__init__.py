"""Connectors to the tools a CS team already runs (issue 21): one framework, one connector per vendor.

See docs/integrations.md. Layer: beside playbooks, above value; writes into lower apps only through
``cs_platform.imports.engine.import_rows`` (the CSV import kinds' validation and upsert by external id).
"""
