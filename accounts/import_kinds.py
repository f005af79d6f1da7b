"""The CSV import kinds of the customer model (spec §8), registered with :mod:`cs_platform.imports`:
accounts, contacts, contracts (one row per line) and activities.

Per-kind rules worth knowing (also in docs/admin-guide.md):

- accounts: any column beyond the spec's is a **custom field** stored in ``custom_fields[<column>]``
  (an empty cell removes that key); ``parent_external_id`` may name another row of the same file or
  an account already in the organization (parent cycles are errors); an empty ``touch_model`` /
  ``lifecycle_stage`` keeps the current value (or the default for a new account); every other empty
  cell clears the field.
- contacts: ``roles`` separated by ``|``; ``active`` is true/false/1/0/yes/no (empty keeps the
  current value, true for a new contact); a contact turning inactive gets ``departed_at`` = today, and
  an existing, active contact turning inactive records ``contact.departed`` (as the API does; one
  insert per batch, in the import's transaction; nothing on a dry run).
- contracts: rows with the same ``contract_number`` form one contract and must agree on its
  account, dates, status and seats; a line is identified by ``product_sku`` within its contract and
  the file's rows for a contract **replace** its lines; unknown SKUs are created as products named
  ``product_name``; an empty ``status`` means ``active``; an empty ``discount`` means 0. The write
  uses ``bulk_update``/``bulk_create`` for lines (a big file is first split into temporary files by
  contract number, one bucket in memory at a time) and one ``refresh_current_arr`` at the end.
- activities have no external id: rows are appended, except that a row identical to an existing
  activity in (account, type, occurred_at, summary) — or to an earlier row of the file — is skipped,
  so re-importing a file does not duplicate it. ``occurred_at`` is a date or an ISO date-time; a
  value without a time zone is read in the organization's time zone.

Rows whose values are already those of the file are not written at all, so re-importing a file
reports them as ``unchanged`` and touches nothing.
"""

from __future__ import annotations

import csv
import tempfile
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

from cs_platform.events import NewEvent, record_events
from cs_platform.imports.base import BATCH, chunks, register
from cs_platform.imports.copy import upsert
from cs_platform.imports.parsers import (
    line_numbers,
    parse_bool,
    parse_choice,
    parse_date,
    parse_decimal,
    parse_email,
    parse_int,
    parse_moment,
    parse_text,
    row_key,
)

from .choices import ActivityType, ContactRole, ContractStatus, TouchModel
from .events import departed_data
from .importing import AccountRowKind, AccountsKind
from .models import Account, Activity, Contact, Contract, ContractLine, Organization, Product
from .models.customers import line_arr
from .services import refresh_current_arr

__all__ = ["AccountKind", "ActivityKind", "ContactKind", "ContractKind"]

CONTRACT_BUCKET_ROWS = 50_000  # contract lines held in memory at once while writing (see ContractKind)
WHOLE_ORG_REFRESH = 5000  # beyond this many touched accounts, refreshing the whole org is cheaper


def refresh_arr(org: Organization, account_ids: set[int]) -> None:
    """Refresh the current ARR of the accounts a file touched (all of the organization's past
    ``WHOLE_ORG_REFRESH``: one set-based pass is then cheaper)."""
    if not account_ids:
        return
    refresh_current_arr(org, account_ids=None if len(account_ids) > WHOLE_ORG_REFRESH else account_ids)


@register
class AccountKind(AccountsKind):
    """Accounts, upserted by external id; extra columns are custom fields; parents may be in the file."""

    name = "accounts"
    label = "Accounts"
    columns = (
        "external_id", "name", "domain", "industry", "region", "employees", "owner_email",
        "parent_external_id", "touch_model", "lifecycle_stage", "customer_since",
    )  # fmt: skip
    custom_columns = True
    upsert_keys = ("organization", "external_id")
    order = 10
    FIELDS = (
        "name", "domain", "industry", "region", "employees", "owner_id", "parent_id", "touch_model",
        "lifecycle_stage", "customer_since", "custom_fields",
    )  # fmt: skip

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.custom = [c for c in self.header if c not in self.columns]
        self.parent_of: dict[str, tuple[str, int]] = {}  # external_id -> (parent external_id, line)
        self.stages = tuple(self.org.lifecycle_stages)
        self.default_stage = "onboarding" if "onboarding" in self.stages else (self.stages or ["onboarding"])[0]
        self.existing_ids: dict[str, int] = {}

    def parse(self, line: int, cells: list[str]) -> dict[str, Any]:
        stages = self.stages
        return {
            "external_id": self.cell(line, cells, "external_id", lambda v: parse_text(v, 120), required=True),
            "name": self.cell(line, cells, "name", lambda v: parse_text(v, 200), required=True),
            "domain": self.cell(line, cells, "domain", lambda v: parse_text(v.lower(), 200)) or "",
            "industry": self.cell(line, cells, "industry", lambda v: parse_text(v, 100)) or "",
            "region": self.cell(line, cells, "region", lambda v: parse_text(v, 100)) or "",
            "employees": self.cell(line, cells, "employees", parse_int),
            "owner_id": self.member(line, cells, "owner_email"),
            "parent_external_id": cells[self.col["parent_external_id"]] or None,
            "touch_model": self.cell(line, cells, "touch_model", lambda v: parse_choice(v, TOUCH_MODELS)),
            "lifecycle_stage": self.cell(line, cells, "lifecycle_stage", lambda v: parse_choice(v, stages)),
            "customer_since": self.cell(line, cells, "customer_since", parse_date),
            "custom": {name: cells[self.col[name]] for name in self.custom},
        }

    def check(self, line: int, cells: list[str]) -> None:
        row = self.parse(line, cells)
        ext = row["external_id"]
        if ext is None or not self.note_external_id(line, ext):
            return
        if row["parent_external_id"]:
            self.parent_of[ext] = (row["parent_external_id"], line)

    def ancestry(self, external_ids: set[str]) -> list[tuple[int, str, int | None]]:
        """``(id, external_id, parent_id)`` of the organization's accounts named by ``external_ids`` and of
        all their ancestors: what resolving parents and walking the hierarchy for cycles needs.

        One query per chunk, then one per level of the hierarchy above them (the ancestors not loaded
        yet, by id): bounded by the file's rows and the hierarchy's depth, not by the organization's size
        (loading every account of the organization for each page of a sync made a page's cost grow with
        the accounts already synced)."""
        found: dict[int, tuple[int, str, int | None]] = {}
        for chunk in chunks(sorted(external_ids)):
            for row in (
                Account.objects.for_org(self.org)
                .filter(external_id__in=chunk)
                .values_list("id", "external_id", "parent_id")
            ):
                found[row[0]] = row
        asked: set[int] = set()
        wanted = {parent for _, _, parent in found.values() if parent and parent not in found}
        while wanted:
            asked |= wanted
            for chunk in chunks(sorted(wanted)):
                for row in (
                    Account.objects.for_org(self.org).filter(id__in=chunk).values_list("id", "external_id", "parent_id")
                ):
                    found[row[0]] = row
            # A parent asked for and not found (invisible to this organization) ends its chain.
            wanted = {parent for _, _, parent in found.values() if parent and parent not in found} - asked
        return list(found.values())

    def finish(self) -> None:
        # Existing accounts are needed to resolve parents and walk their ancestry for cycles: those the
        # file's rows name as parents and their ancestors (a cycle through the database passes there).
        parents = {parent for parent, _ in self.parent_of.values()}
        existing = self.ancestry(parents) if parents else []
        self.existing_ids = {ext: pk for pk, ext, _ in existing if ext}
        if not self.parent_of:
            return
        key_of_pk = {pk: (ext if ext else f"#{pk}") for pk, ext, _ in existing}
        in_database: dict[str, str | None] = {
            key_of_pk[pk]: key_of_pk.get(parent) if parent else None for pk, _, parent in existing
        }
        in_file: dict[str, str] = {}
        for ext, (parent, line) in self.parent_of.items():
            if row_key(parent) not in self.seen and parent not in self.existing_ids:
                self.errors.add(
                    line, "parent_external_id", f"no account with external_id {parent} in this file or organization"
                )
                continue
            in_file[ext] = parent

        def parent_of(node: str) -> str | None:
            if node in in_file:
                return in_file[node]
            if row_key(node) in self.seen:  # the file's row (without a parent) overrides the database
                return None
            return in_database.get(node)

        done: set[str] = set()
        for start in self.parent_of:
            path: list[str] = []
            on_path: set[str] = set()
            node: str | None = start
            while node is not None and node not in done:
                if node in on_path:
                    cycle = path[path.index(node) :]
                    text = " → ".join([*cycle, node])
                    for member in cycle:
                        if member in self.parent_of:
                            self.errors.add(self.parent_of[member][1], "parent_external_id", f"cycle: {text}")
                    break
                on_path.add(node)
                path.append(node)
                node = parent_of(node)
            done.update(path)

    def write(self, rows: Iterator[tuple[int, list[str]]], progress: Callable[[int], None]) -> None:
        org = self.org
        ids = dict(self.existing_ids)  # external id -> pk, grows with the accounts this file creates
        deferred: list[tuple[str, str]] = []  # (child, parent) whose parent is created by this file
        moved: set[int] = set()  # existing accounts whose parent changed, and their former parents

        def flush(batch: list[dict[str, Any]]) -> None:
            current = {
                values["external_id"]: values
                for values in Account.objects.for_org(org)
                .filter(external_id__in=[row["external_id"] for row in batch])
                .values("id", "external_id", *self.FIELDS)
            }
            writes: list[Account] = []
            for row in batch:
                ext, old = row["external_id"], current.get(row["external_id"])
                parent_ext = row["parent_external_id"]
                # A parent created earlier in this file, or existing, has an id; one created in this
                # batch or later gets it in the second pass.
                parent_id = ids.get(parent_ext) if parent_ext else None
                pending_parent = bool(parent_ext) and parent_id is None
                if pending_parent:
                    deferred.append((ext, parent_ext))
                custom = dict(old["custom_fields"]) if old and isinstance(old["custom_fields"], dict) else {}
                for name, value in row["custom"].items():
                    if value:
                        custom[name] = value
                    else:
                        custom.pop(name, None)
                values = {
                    "name": row["name"],
                    "domain": row["domain"],
                    "industry": row["industry"],
                    "region": row["region"],
                    "employees": row["employees"],
                    "owner_id": row["owner_id"],
                    "parent_id": parent_id,
                    "touch_model": row["touch_model"] or (old["touch_model"] if old else TouchModel.LOW),
                    "lifecycle_stage": row["lifecycle_stage"]
                    or (old["lifecycle_stage"] if old else self.default_stage),
                    "customer_since": row["customer_since"],
                    "custom_fields": custom,
                }
                if old is not None and not pending_parent and all(old[k] == values[k] for k in self.FIELDS):
                    self.result.unchanged += 1
                    continue
                if old is None:
                    self.result.created += 1
                else:
                    self.result.updated += 1
                    if pending_parent or old["parent_id"] != parent_id:
                        moved.add(old["id"])
                        if old["parent_id"]:
                            moved.add(old["parent_id"])
                writes.append(Account(organization_id=org.pk, external_id=ext, **values))
            upsert(
                Account,
                writes,
                unique=list(self.upsert_keys),
                update=[*(f.removesuffix("_id") for f in self.FIELDS), "updated_at"],
            )
            if all(obj.pk is not None for obj in writes):
                ids.update((obj.external_id, obj.pk) for obj in writes)
            else:  # a backend that cannot return ids from an upsert
                ids.update(self.account_ids(obj.external_id for obj in writes))

        self.batched(rows, progress, flush)
        # Second pass: parents created by this file now have ids.
        updates = [Account(id=ids[child], parent_id=ids[parent]) for child, parent in deferred]
        Account.all_orgs.bulk_update(updates, ["parent"], batch_size=BATCH)
        # New accounts hold no contracts yet, so only moved accounts change hierarchy ARR.
        refresh_arr(org, moved)


# Computed once: an enum's ``.values`` builds a new list on every access, a cost per cell otherwise.
TOUCH_MODELS = tuple(TouchModel.values)
CONTRACT_STATUSES = tuple(ContractStatus.values)
ACTIVITY_TYPES = tuple(ActivityType.values)
CONTACT_ROLES = frozenset(ContactRole.values)


def parse_roles(value: str) -> list[str]:
    roles = [r.strip() for r in value.split("|") if r.strip()]
    unknown = [r for r in roles if r not in CONTACT_ROLES]
    if unknown:
        raise ValueError(f"unknown role(s) {', '.join(unknown)}; use: {', '.join(ContactRole.values)}")
    return sorted(set(roles), key=roles.index)


@register
class ContactKind(AccountRowKind):
    """Contacts of accounts, upserted by external id; a contact turning inactive departs today."""

    name = "contacts"
    label = "Contacts"
    columns = ("external_id", "account_external_id", "name", "email", "title", "roles", "active")
    upsert_keys = ("organization", "external_id")
    order = 20
    FIELDS = ("account_id", "name", "email", "title", "roles", "is_active", "departed_at")

    def parse(self, line: int, cells: list[str]) -> dict[str, Any]:
        return {
            "external_id": self.cell(line, cells, "external_id", lambda v: parse_text(v, 120), required=True),
            "account": self.cell(line, cells, "account_external_id", required=True),
            "name": self.cell(line, cells, "name", lambda v: parse_text(v, 200), required=True),
            "email": self.cell(line, cells, "email", parse_email) or "",
            "title": self.cell(line, cells, "title", lambda v: parse_text(v, 200)) or "",
            "roles": self.cell(line, cells, "roles", parse_roles) or [],
            "active": self.cell(line, cells, "active", parse_bool),
        }

    def check(self, line: int, cells: list[str]) -> None:
        row = self.parse(line, cells)
        if row["external_id"] is not None:
            self.note_external_id(line, row["external_id"])
        self.note_account(line, row["account"])

    def write(self, rows: Iterator[tuple[int, list[str]]], progress: Callable[[int], None]) -> None:
        org = self.org

        def flush(batch: list[dict[str, Any]]) -> None:
            current = {
                v["external_id"]: v
                for v in Contact.objects.for_org(org)
                .filter(external_id__in=[r["external_id"] for r in batch])
                .values("id", "external_id", *self.FIELDS)
            }
            writes = []
            departures = []
            for row in batch:
                old = current.get(row["external_id"])
                active = row["active"] if row["active"] is not None else (old["is_active"] if old else True)
                if active:
                    departed = None
                else:
                    departed = (old["departed_at"] if old else None) or self.today
                values = {
                    "account_id": self.accounts[row["account"]],
                    "name": row["name"],
                    "email": row["email"],
                    "title": row["title"],
                    "roles": row["roles"],
                    "is_active": active,
                    "departed_at": departed,
                }
                if old is not None and all(old[k] == values[k] for k in self.FIELDS):
                    self.result.unchanged += 1
                    continue
                self.result.created += old is None
                self.result.updated += old is not None
                contact = Contact(organization_id=org.pk, external_id=row["external_id"], **values)
                writes.append(contact)
                if old is not None and not active and old["is_active"] and old["departed_at"] is None:
                    # An existing, active contact the file turns inactive: a departure, as through the API.
                    contact.pk = old["id"]
                    departures.append(NewEvent("contact.departed", contact.pk, departed_data(contact, row["account"])))
            upsert(
                Contact,
                writes,
                unique=list(self.upsert_keys),
                update=[*(f.removesuffix("_id") for f in self.FIELDS), "updated_at"],
            )
            if departures and not self.result.dry_run:
                # One insert per batch, in the import's transaction: the events commit with the rows.
                record_events(org.pk, departures)

        self.batched(rows, progress, flush)


@register
class ContractKind(AccountsKind):
    """Contracts, one row per line: the rows of a contract number form it and replace its lines."""

    name = "contracts"
    label = "Contracts (one row per contract line)"
    columns = (
        "account_external_id", "contract_number", "start_date", "end_date", "status", "product_sku",
        "product_name", "quantity", "annual_unit_price", "discount", "seats",
    )  # fmt: skip
    upsert_keys = ("organization", "number")
    order = 30
    HEAD = ("account", "start_date", "end_date", "status", "seats")

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.heads: dict[str, tuple[int, tuple[Any, ...]]] = {}  # number -> (first line, HEAD values)
        self.line_keys: dict[int, int] = {}  # digest of (number, sku) -> line
        self.sku_names: dict[str, tuple[int, str]] = {}  # sku -> (first line, first non-empty name)
        self.account_lines: dict[str, Any] = defaultdict(line_numbers)
        self.accounts: dict[str, int] = {}
        self.products: dict[str, int] = {}

    def parse(self, line: int, cells: list[str]) -> dict[str, Any]:
        row = {
            "account": self.cell(line, cells, "account_external_id", required=True),
            "number": self.cell(line, cells, "contract_number", lambda v: parse_text(v, 80), required=True),
            "start_date": self.cell(line, cells, "start_date", parse_date, required=True),
            "end_date": self.cell(line, cells, "end_date", parse_date, required=True),
            "status": self.cell(line, cells, "status", lambda v: parse_choice(v, CONTRACT_STATUSES))
            or ContractStatus.ACTIVE,
            "sku": self.cell(line, cells, "product_sku", lambda v: parse_text(v, 80), required=True),
            "product_name": self.cell(line, cells, "product_name", lambda v: parse_text(v, 200)) or "",
            "quantity": self.cell(line, cells, "quantity", parse_decimal, required=True),
            "annual_unit_price": self.cell(line, cells, "annual_unit_price", parse_decimal, required=True),
            "discount": self.cell(line, cells, "discount", lambda v: parse_decimal(v, high=Decimal(1))) or Decimal(0),
            "seats": self.cell(line, cells, "seats", parse_int),
        }
        if row["start_date"] and row["end_date"] and row["end_date"] < row["start_date"]:
            self.errors.add(line, "end_date", f"{row['end_date']} is before start_date {row['start_date']}")
        return row

    def check(self, line: int, cells: list[str]) -> None:
        row = self.parse(line, cells)
        number, sku = row["number"], row["sku"]
        if row["account"]:
            self.account_lines[row["account"]].append(line)
        if sku:
            first = self.sku_names.get(sku)
            if first is None or (not first[1] and row["product_name"]):
                self.sku_names[sku] = (first[0] if first else line, row["product_name"])
        if not number:
            return
        head = tuple(row[k] for k in self.HEAD)
        if number not in self.heads:
            self.heads[number] = (line, head)
        else:
            first_line, first = self.heads[number]
            for i, key in enumerate(self.HEAD):
                if first[i] is not None and head[i] is not None and first[i] != head[i]:
                    column = "account_external_id" if key == "account" else key
                    self.errors.add(
                        line,
                        column,
                        f"{head[i]} differs from {first[i]} on line {first_line} for contract {number}",
                    )
        if sku:
            key = row_key(number, sku)
            if key in self.line_keys:
                self.errors.add(
                    line, "product_sku", f"{sku} appears twice in contract {number} (line {self.line_keys[key]})"
                )
            else:
                self.line_keys[key] = line

    def finish(self) -> None:
        self.resolve_accounts()
        self.products = dict(
            Product.objects.for_org(self.org).filter(sku__in=list(self.sku_names)).values_list("sku", "id")
        )
        for sku, (line, name) in self.sku_names.items():
            if sku not in self.products and not name:
                self.errors.add(line, "product_name", f"unknown product_sku {sku}: a product_name is needed to add it")
        self.line_keys, self.account_lines = {}, defaultdict(line_numbers)

    def write(self, rows: Iterator[tuple[int, list[str]]], progress: Callable[[int], None]) -> None:
        org = self.org
        new_products = [
            Product(organization_id=org.pk, sku=sku, name=name)
            for sku, (_, name) in self.sku_names.items()
            if sku not in self.products
        ]
        Product.all_orgs.bulk_create(new_products, batch_size=BATCH)
        self.products.update(
            Product.objects.for_org(org).filter(sku__in=[p.sku for p in new_products]).values_list("sku", "id")
        )
        self.result.extra["products_created"] = len(new_products)

        # Lines per contract: a contract's rows may be anywhere in the file, and they replace its lines. A
        # big file is first split by contract number into temporary files ("buckets") of about
        # CONTRACT_BUCKET_ROWS lines each, so that only one bucket's lines are in memory at a time.
        touched: set[int] = set()
        contracts_created = lines_deleted = done = 0

        def line_values(row: dict[str, Any]) -> dict[str, Any]:
            return {
                "product_id": self.products[row["sku"]],
                "quantity": row["quantity"],
                "annual_unit_price": row["annual_unit_price"],
                "discount": row["discount"],
                "arr": line_arr(row["quantity"], row["annual_unit_price"], row["discount"]),
            }

        def write_contracts(lines_of: dict[str, list[dict[str, Any]]]) -> None:
            nonlocal contracts_created, lines_deleted, done
            for chunk in chunks(list(lines_of)):
                current = {
                    v["number"]: v
                    for v in Contract.objects.for_org(org)
                    .filter(number__in=chunk)
                    .values("id", "number", "account_id", "start_date", "end_date", "status", "seats", "arr")
                }
                writes, head_changed = [], set()
                for number in chunk:
                    head = dict(zip(self.HEAD, self.heads[number][1], strict=True))
                    old = current.get(number)
                    values = {
                        "account_id": self.accounts[head["account"]],
                        "start_date": head["start_date"],
                        "end_date": head["end_date"],
                        "status": head["status"],
                        "seats": head["seats"],
                        "arr": sum((ln["arr"] for ln in lines_of[number]), Decimal("0.00")),
                    }
                    if old is not None and all(old[k] == v for k, v in values.items()):
                        continue
                    head_changed.add(number)
                    touched.add(values["account_id"])
                    if old is None:
                        contracts_created += 1
                    else:
                        touched.add(old["account_id"])
                    writes.append(Contract(organization_id=org.pk, number=number, currency=org.currency, **values))
                Contract.all_orgs.bulk_create(
                    writes,
                    update_conflicts=True,
                    unique_fields=list(self.upsert_keys),
                    update_fields=["account", "start_date", "end_date", "status", "seats", "arr", "updated_at"],
                )
                contract_ids = dict(Contract.objects.for_org(org).filter(number__in=chunk).values_list("number", "id"))
                existing_lines: dict[int, list[dict[str, Any]]] = defaultdict(list)
                for v in (
                    ContractLine.objects.for_org(org)
                    .filter(contract_id__in=list(contract_ids.values()))
                    .order_by("id")
                    .values("id", "contract_id", "product_id", "quantity", "annual_unit_price", "discount", "arr")
                ):
                    existing_lines[v["contract_id"]].append(v)
                to_create, to_update, to_delete = [], [], []
                for number in chunk:
                    contract_id = contract_ids[number]
                    by_product: dict[int, dict[str, Any]] = {}
                    for old_line in existing_lines.get(contract_id, []):
                        if old_line["product_id"] in by_product:
                            to_delete.append(old_line["id"])  # duplicate product line: the file has one
                        else:
                            by_product[old_line["product_id"]] = old_line
                    lines_changed = False
                    for new in lines_of[number]:
                        old_line = by_product.pop(new["product_id"], None)
                        if old_line is None:
                            to_create.append(ContractLine(organization_id=org.pk, contract_id=contract_id, **new))
                            self.result.created += 1
                            lines_changed = True
                        elif any(old_line[k] != new[k] for k in ("quantity", "annual_unit_price", "discount", "arr")):
                            to_update.append(ContractLine(id=old_line["id"], **new))
                            self.result.updated += 1
                            lines_changed = True
                        elif number in head_changed:
                            self.result.updated += 1
                        else:
                            self.result.unchanged += 1
                    to_delete.extend(line["id"] for line in by_product.values())
                    if lines_changed or by_product:
                        touched.add(self.accounts[self.heads[number][1][0]])
                ContractLine.all_orgs.bulk_create(to_create, batch_size=BATCH)
                ContractLine.all_orgs.bulk_update(
                    to_update, ["quantity", "annual_unit_price", "discount", "arr"], batch_size=BATCH
                )
                for ids in chunks(to_delete):
                    # Raw delete: nothing references a line, and the ARR refresh below replaces the
                    # per-row post_delete signals (which would cost a query per line).
                    ContractLine.all_orgs.filter(organization_id=org.pk, id__in=ids)._raw_delete(
                        ContractLine.all_orgs.db
                    )
                lines_deleted += len(to_delete)
                done += sum(len(lines_of[n]) for n in chunk)
                progress(done)

        buckets = self.result.rows // CONTRACT_BUCKET_ROWS + 1
        if buckets == 1:
            lines_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for line, cells in rows:
                row = self.parse(line, cells)
                lines_of[row["number"]].append(line_values(row))
            write_contracts(lines_of)
        else:
            spills = [tempfile.TemporaryFile("w+", newline="", encoding="utf-8") for _ in range(buckets)]  # noqa: SIM115
            try:
                writers = [csv.writer(spill) for spill in spills]
                for line, cells in rows:
                    writers[zlib.crc32(cells[self.col["contract_number"]].encode()) % buckets].writerow([line, *cells])
                for spill in spills:
                    spill.seek(0)
                    lines_of = defaultdict(list)
                    for line, *cells in csv.reader(spill):
                        row = self.parse(int(line), cells)
                        lines_of[row["number"]].append(line_values(row))
                    spill.close()
                    write_contracts(lines_of)
            finally:
                for spill in spills:
                    spill.close()
        self.result.extra["contracts_created"] = contracts_created
        self.result.extra["lines_deleted"] = lines_deleted
        refresh_arr(org, touched)


@register
class ActivityKind(AccountRowKind):
    """Activities, appended; a row identical to an existing activity (or an earlier row) is skipped."""

    name = "activities"
    label = "Activities"
    columns = ("account_external_id", "type", "occurred_at", "author_email", "summary")
    order = 40

    def parse(self, line: int, cells: list[str]) -> dict[str, Any]:
        return {
            "account": self.cell(line, cells, "account_external_id", required=True),
            "type": self.cell(line, cells, "type", lambda v: parse_choice(v, ACTIVITY_TYPES), required=True),
            "occurred_at": self.cell(line, cells, "occurred_at", lambda v: parse_moment(v, self.tz), required=True),
            "author_id": self.member(line, cells, "author_email"),
            "summary": cells[self.col["summary"]],
        }

    def check(self, line: int, cells: list[str]) -> None:
        row = self.parse(line, cells)
        self.note_account(line, row["account"])

    def write(self, rows: Iterator[tuple[int, list[str]]], progress: Callable[[int], None]) -> None:
        org = self.org
        seen: set[int] = set()  # digests of the keys written by this file (a summary can be long)

        def flush(batch: list[dict[str, Any]]) -> None:
            keys = [(self.accounts[r["account"]], r["type"], r["occurred_at"], r["summary"]) for r in batch]
            existing = set(
                Activity.objects.for_org(org)
                .filter(account_id__in={k[0] for k in keys}, occurred_at__in={k[2] for k in keys})
                .values_list("account_id", "type", "occurred_at", "summary")
            )
            writes = []
            for row, key in zip(batch, keys, strict=True):
                digest = row_key(*key)
                if key in existing or digest in seen:
                    self.result.unchanged += 1
                    continue
                seen.add(digest)
                writes.append(
                    Activity(
                        organization_id=org.pk,
                        account_id=key[0],
                        type=key[1],
                        occurred_at=key[2],
                        author_id=row["author_id"],
                        summary=key[3],
                    )
                )
            Activity.all_orgs.bulk_create(writes, batch_size=BATCH)
            self.result.created += len(writes)

        self.batched(rows, progress, flush)
