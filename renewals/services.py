"""Domain logic of renewals (spec §4): opening renewals ahead of contract ends, the forecast with its
audit trail, and closing a renewal with its outcome, successor contract and line-level bridge.

Every function takes the organization (or a row that carries it) explicitly; none relies on the ambient
scope. Writes check the caller's rights through :class:`accounts.services.Actor`:

* a CSM may change the renewals of their own book (accounts they own, or renewals assigned to them);
* a leader those of their teams' accounts, and only leaders and admins set the *final call*;
* an admin every renewal; a viewer none.

Definitions (also in ``docs/metrics.md``):

* **Renewed early** (no renewal is opened): another non-cancelled contract of the same account starts
  after the contract's start, no later than the day after its end, and ends after it
  (``C.start < S.start ≤ C.end + 1 day`` and ``S.end > C.end``). A co-termed add-on (same end date) is
  not a renewal; a successor already booked to start the day after the end is.
* **Timing** of a closed renewal: ``early`` when the successor starts on or before the old end date
  (the old contract is then cut to end the day before, so ARR is never counted twice); ``late`` when it
  is closed after the due date, or the successor leaves a gap (starts after the day after the due date);
  ``on_time`` otherwise. A churn is ``late`` when recorded after the due date, else ``on_time``.
* **Outcome vs numbers:** renewed ⇔ new ARR = current ARR; expanded ⇔ new > current; contracted ⇔
  0 < new < current; churned ⇔ no successor contract, new ARR = 0. Current ARR is the ending contract's
  ARR at the time of closing (refreshed from its lines).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from dateutil.relativedelta import relativedelta
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from accounts.choices import ContractStatus, Role
from accounts.models import Account, Contract, ContractLine, Organization, Product
from accounts.models.customers import line_arr
from accounts.services import Actor, mark_arr_dirty, superseded_q
from cs_platform.events import record_event

from .models import (
    ChurnReason,
    ForecastCategory,
    LineChangeKind,
    Renewal,
    RenewalForecastChange,
    RenewalLineChange,
    RenewalOutcome,
    RenewalStage,
    RenewalTiming,
)

__all__ = [
    "FORECAST_FIELDS",
    "LineInput",
    "RenewalPermissionDenied",
    "can_write_renewal",
    "close_renewal",
    "create_due_renewals",
    "open_renewal",
    "renewal_bridge",
    "renewed_early_q",
    "resolve_churn_reason",
    "update_forecast",
]

ZERO = Decimal("0.00")
LOSS_OUTCOMES = frozenset({RenewalOutcome.CONTRACTED, RenewalOutcome.CHURNED})
#: Fields ``update_forecast`` accepts. ``final_call``/``final_call_arr`` are for leaders and admins.
FORECAST_FIELDS = (
    "forecast_category",
    "forecast_arr",
    "probability",
    "stage",
    "csm_call",
    "csm_call_arr",
    "final_call",
    "final_call_arr",
    "notes",
    "owner",
)
FINAL_CALL_FIELDS = frozenset({"final_call", "final_call_arr"})
#: Stages a forecast update may set; ``won`` and ``lost`` come only from closing.
OPEN_STAGES = (RenewalStage.NOT_STARTED, RenewalStage.IN_PROGRESS, RenewalStage.VERBAL)
BATCH = 2000


class RenewalPermissionDenied(PermissionDenied):
    """The actor's role does not allow this change (the message says why)."""


# --- Permissions ----------------------------------------------------------------------------------


def can_write_renewal(actor: Actor, renewal: Renewal) -> bool:
    """May ``actor`` update or close ``renewal``? Admin all; leader their teams' accounts or renewals;
    CSM their own accounts or renewals assigned to them; viewer none."""
    if renewal.organization_id != actor.organization.pk:
        return False
    if actor.role == Role.ADMIN:
        return True
    if actor.role == Role.VIEWER or actor.user is None:
        return False
    if actor.can_write_account(renewal.account):
        return True
    if renewal.owner_id is None:
        return False
    if actor.role == Role.LEADER:
        return renewal.owner_id in actor.team_user_ids()
    return renewal.owner_id == actor.user.pk


def _check_write(actor: Actor, renewal: Renewal) -> None:
    if not can_write_renewal(actor, renewal):
        raise RenewalPermissionDenied("You can only change renewals of your own book (leaders: your teams').")


# --- Opening renewals -----------------------------------------------------------------------------


def renewed_early_q() -> Q:
    """Contracts (as the outer query) that another contract of the account already renews (module doc):
    the accounts app's :func:`accounts.services.superseded_q`, the one definition of the rule."""
    return superseded_q()


def due_contracts(organization: Organization, *, today: date):
    """Contracts that should have an open renewal by ``today`` and do not yet (see create_due_renewals)."""
    horizon = today + timedelta(days=organization.renewal_lead_days)
    has_renewal = Renewal.all_orgs.filter(organization_id=organization.pk, contract_id=OuterRef("pk"))
    return (
        Contract.objects.for_org(organization)
        .filter(status=ContractStatus.ACTIVE, end_date__gte=today, end_date__lte=horizon)
        .filter(account__churned_at__isnull=True)
        .exclude(account__lifecycle_stage="churned")
        .exclude(Exists(has_renewal))
        .exclude(renewed_early_q())
    )


def create_due_renewals(organization: Organization, *, today: date | None = None) -> int:
    """Open a renewal for every active contract ending within ``renewal_lead_days`` of ``today``.

    A contract gets its renewal on the day ``end_date − renewal_lead_days`` (the boundary day is
    included), or on the first run after that (catch-up: every contract already inside the window and
    not yet ended gets one). Skipped: cancelled and ended contracts, contracts of churned accounts,
    contracts already renewed early (module doc), contracts that have a renewal. The renewal starts
    with due date = end date, the account's owner, current and forecast ARR = the contract's ARR,
    category ``likely``, probability 70, stage ``not_started``.

    Idempotent and safe to run concurrently: one renewal per contract is a unique constraint and rows
    are inserted with ``ON CONFLICT DO NOTHING``. Returns how many renewals exist now for the contracts
    this run found missing (under a concurrent run, rows the other run inserted are counted too).
    """
    today = today or timezone.localdate()
    rows = list(
        due_contracts(organization, today=today).values_list("pk", "account_id", "account__owner_id", "end_date", "arr")
    )
    for start in range(0, len(rows), BATCH):
        Renewal.all_orgs.bulk_create(
            [
                Renewal(
                    organization_id=organization.pk,
                    contract_id=contract_id,
                    account_id=account_id,
                    owner_id=owner_id,
                    due_date=end_date,
                    current_arr=arr,
                    forecast_arr=arr,
                )
                for contract_id, account_id, owner_id, end_date, arr in rows[start : start + BATCH]
            ],
            ignore_conflicts=True,
        )
    if not rows:
        return 0
    ids = [row[0] for row in rows]
    return sum(
        Renewal.objects.for_org(organization).filter(contract_id__in=ids[i : i + BATCH]).count()
        for i in range(0, len(ids), BATCH)
    )


@transaction.atomic
def open_renewal(contract: Contract, *, by: Actor, **fields: Any) -> Renewal:
    """Open the renewal of ``contract`` by hand (before the daily job would), with optional forecast fields.

    Refused for a cancelled contract and for a contract that already has one (a renewal is unique per
    contract). The caller must be allowed to write the contract's account.
    """
    if contract.organization_id != by.organization.pk:
        raise ValidationError({"contract": ["Contract not found."]})
    account = contract.account
    if not by.can_write_account(account):
        raise RenewalPermissionDenied("You can only open renewals of accounts in your book.")
    if contract.status == ContractStatus.CANCELLED:
        raise ValidationError({"contract": ["This contract is cancelled; it has nothing to renew."]})
    if Renewal.objects.for_org(by.organization).filter(contract=contract).exists():
        raise ValidationError({"contract": ["This contract already has a renewal."]})
    renewal = Renewal(
        organization_id=contract.organization_id,
        contract=contract,
        account=account,
        owner_id=account.owner_id,
        due_date=contract.end_date,
        current_arr=contract.arr,
        forecast_arr=contract.arr,
    )
    renewal.save()
    if fields:
        update_forecast(renewal, by=by, **fields)
        renewal.refresh_from_db()
    return renewal


# --- Forecast -------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    """How an audited value is stored: decimals as plain strings, users by email, unset as ''."""
    if value is None:
        return ""
    if hasattr(value, "email"):
        return value.email or str(value.pk)
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return str(value)


def _money(value: Any, field: str, errors: dict[str, list[str]], *, nullable: bool) -> Decimal | None:
    if value is None or value == "":
        if nullable:
            return None
        errors[field] = ["This field is required."]
        return None
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        errors[field] = ["Enter an amount such as 1200.00."]
        return None
    if amount < 0:
        errors[field] = ["An ARR cannot be negative."]
    return amount


def _clean_forecast(by: Actor, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Validate forecast changes; returns the cleaned values. Raises ValidationError per field."""
    errors: dict[str, list[str]] = {}
    unknown = sorted(set(fields) - set(FORECAST_FIELDS))
    for name in unknown:
        errors[name] = [f"Not a forecast field; use one of: {', '.join(FORECAST_FIELDS)}."]
    clean: dict[str, Any] = {}
    categories = set(ForecastCategory.values)
    for name in ("forecast_category", "csm_call", "final_call"):
        if name in fields:
            value = fields[name] or ""
            if value and value not in categories:
                errors[name] = [f"Use one of: {', '.join(ForecastCategory.values)}."]
            elif name == "forecast_category" and not value:
                errors[name] = ["This field may not be blank."]
            clean[name] = value
    for name, nullable in (("forecast_arr", False), ("csm_call_arr", True), ("final_call_arr", True)):
        if name in fields:
            clean[name] = _money(fields[name], name, errors, nullable=nullable)
    if "probability" in fields:
        try:
            probability = int(fields["probability"])
        except (TypeError, ValueError):
            errors["probability"] = ["Enter a whole number between 0 and 100."]
        else:
            if not 0 <= probability <= 100:
                errors["probability"] = ["Enter a whole number between 0 and 100."]
            clean["probability"] = probability
    if "stage" in fields:
        if fields["stage"] not in OPEN_STAGES:
            errors["stage"] = [
                f"Use one of: {', '.join(OPEN_STAGES)}; won and lost are set by closing the renewal with an outcome."
            ]
        clean["stage"] = fields["stage"]
    if "notes" in fields:
        clean["notes"] = fields["notes"] or ""
    if "owner" in fields:
        owner = fields["owner"]
        owner_id = getattr(owner, "pk", owner)
        if not by.can_assign_owner(owner_id):
            errors["owner"] = ["You cannot make this user the renewal's owner."]
        clean["owner"] = owner
    if FINAL_CALL_FIELDS & set(fields) and by.role not in (Role.ADMIN, Role.LEADER):
        for name in FINAL_CALL_FIELDS & set(fields):
            errors[name] = ["Only leaders and admins set the final call."]
    if errors:
        raise ValidationError(errors)
    return clean


@transaction.atomic
def update_forecast(renewal: Renewal, *, by: Actor, **fields: Any) -> list[RenewalForecastChange]:
    """Change an open renewal's forecast (``FORECAST_FIELDS``), recording who changed what.

    One :class:`RenewalForecastChange` row per field whose value really changes; a change of anything
    but ``notes`` records the domain event ``renewal.forecast_changed`` with the changes (webhooks and
    other consumers get it after commit). Closed renewals are read-only. Returns the audit rows written.
    """
    _check_write(by, renewal)
    renewal = (
        Renewal.objects.for_org(renewal.organization_id)
        .select_for_update()
        .select_related("account")
        .get(pk=renewal.pk)
    )
    if not renewal.is_open:
        raise ValidationError({"outcome": ["This renewal is closed; its forecast can no longer change."]})
    clean = _clean_forecast(by, fields)
    changes: list[RenewalForecastChange] = []
    for name, new in clean.items():
        old = getattr(renewal, name)
        if _text(old) == _text(new):
            continue
        changes.append(
            RenewalForecastChange(
                organization_id=renewal.organization_id,
                renewal=renewal,
                field=name,
                old_value=_text(old),
                new_value=_text(new),
                changed_by=by.user,
            )
        )
        setattr(renewal, name, new)
    if not changes:
        return []
    renewal.save()
    RenewalForecastChange.all_orgs.bulk_create(changes)
    if any(c.field != "notes" for c in changes):
        record_event(renewal.organization_id, "renewal.forecast_changed", renewal.pk, _event(renewal, changes, by))
    return changes


def _event(renewal: Renewal, changes: Iterable[RenewalForecastChange], by: Actor) -> dict[str, Any]:
    account = renewal.account
    return {
        "renewal": renewal.pk,
        "account": account.pk,
        "account_external_id": account.external_id,
        "account_name": account.name,
        "contract": renewal.contract_id,
        "due_date": renewal.due_date,
        "forecast_category": renewal.forecast_category,
        "forecast_arr": renewal.forecast_arr,
        "current_arr": renewal.current_arr,
        "probability": renewal.probability,
        "stage": renewal.stage,
        "outcome": renewal.outcome or None,
        "changes": {c.field: {"old": c.old_value or None, "new": c.new_value or None} for c in changes},
        "changed_by": getattr(by.user, "email", None),
    }


# --- Closing --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineInput:
    """One line of the successor contract."""

    product: Product
    quantity: Decimal
    annual_unit_price: Decimal
    discount: Decimal = Decimal("0")

    @property
    def arr(self) -> Decimal:
        return line_arr(self.quantity, self.annual_unit_price, self.discount)


def resolve_churn_reason(organization: Organization | int, value: Any) -> ChurnReason:
    """A churn reason of the organization by instance, id or code; must be active."""
    org_id = getattr(organization, "pk", organization)
    reasons = ChurnReason.objects.for_org(org_id)
    if isinstance(value, ChurnReason):
        reason = value if value.organization_id == org_id else None
    elif isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        reason = reasons.filter(pk=int(value)).first()
    elif isinstance(value, str) and value.strip():
        reason = reasons.filter(code=value.strip()).first()
    else:
        reason = None
    if reason is None:
        codes = ", ".join(reasons.filter(is_active=True).values_list("code", flat=True))
        raise ValidationError({"churn_reason": [f"Unknown churn reason; use the id or code of one of: {codes}."]})
    if not reason.is_active:
        raise ValidationError({"churn_reason": [f"The churn reason {reason.code} is retired; choose an active one."]})
    return reason


def _clean_lines(organization_id: int, lines: Iterable[Any]) -> list[LineInput]:
    """Lines as :class:`LineInput`, from dicts (product as Product or id) or LineInput; errors by index."""
    products = {p.pk: p for p in Product.objects.for_org(organization_id)}
    out: list[LineInput] = []
    errors: dict[str, list[str]] = {}
    for index, raw in enumerate(lines):
        if isinstance(raw, LineInput):
            out.append(raw)
            continue
        product = raw.get("product")
        product_id = getattr(product, "pk", product)
        if product_id not in products:
            errors[f"lines.{index}.product"] = ["No such product in this organization."]
            continue
        values = {}
        for name, default in (("quantity", None), ("annual_unit_price", None), ("discount", Decimal("0"))):
            value = raw.get(name, default)
            try:
                values[name] = Decimal(str(value))
            except (InvalidOperation, ValueError, TypeError):
                errors[f"lines.{index}.{name}"] = ["Enter a number."]
                continue
            if values[name] < 0:
                errors[f"lines.{index}.{name}"] = ["Must not be negative."]
        if "discount" in values and values["discount"] > 1:
            errors[f"lines.{index}.discount"] = ["A discount is a fraction between 0 and 1."]
        if len(values) == 3:
            out.append(LineInput(products[product_id], **values))
    if errors:
        raise ValidationError(errors)
    return out


def _term_end(old: Contract, start: date) -> date:
    """End of a successor starting ``start`` with the old contract's term (whole months when it had them)."""
    months = (old.end_date.year - old.start_date.year) * 12 + old.end_date.month - old.start_date.month
    for m in (months, months + 1):
        if m > 0 and old.start_date + relativedelta(months=m) - timedelta(days=1) == old.end_date:
            return start + relativedelta(months=m) - timedelta(days=1)
    return start + (old.end_date - old.start_date)


def _successor_number(organization_id: int, old_number: str) -> str:
    """``<base>-R<n>``: ``CT-7`` → ``CT-7-R1``, ``CT-7-R1`` → ``CT-7-R2``; the first free one."""
    match = re.fullmatch(r"(.*)-R(\d+)", old_number)
    base, n = (match.group(1), int(match.group(2))) if match else (old_number, 0)
    taken = set(
        Contract.objects.for_org(organization_id)
        .filter(number__startswith=f"{base}-R")
        .values_list("number", flat=True)
    )
    while True:
        n += 1
        if f"{base}-R{n}" not in taken:
            return f"{base}-R{n}"


def _kind(old: list[ContractLine], new: list[LineInput], old_q: Decimal, new_q: Decimal) -> str:
    if not old:
        return LineChangeKind.ADDED
    if not new:
        return LineChangeKind.DROPPED
    old_prices = sorted((line.annual_unit_price, line.discount) for line in old)
    new_prices = sorted((line.annual_unit_price, line.discount) for line in new)
    price_changed = old_prices != new_prices
    quantity_changed = old_q != new_q
    if price_changed and quantity_changed:
        return LineChangeKind.QUANTITY_AND_PRICE
    if price_changed:
        return LineChangeKind.PRICE
    if quantity_changed:
        return LineChangeKind.QUANTITY
    return LineChangeKind.UNCHANGED


def line_changes(
    organization_id: int, renewal: Renewal, old_lines: list[ContractLine], new_lines: list[LineInput]
) -> list[RenewalLineChange]:
    """The bridge of one renewal, one row per product on either contract. Σ delta = new − old exactly,
    because each side's product ARR is the sum of its (cent-rounded) line ARRs, as contract ARR is."""
    old_by: dict[int, list[ContractLine]] = defaultdict(list)
    new_by: dict[int, list[LineInput]] = defaultdict(list)
    for line in old_lines:
        old_by[line.product_id].append(line)
    for line in new_lines:
        new_by[line.product.pk].append(line)
    rows = []
    for product_id in sorted(old_by.keys() | new_by.keys()):
        old, new = old_by.get(product_id, []), new_by.get(product_id, [])
        old_q = sum((line.quantity for line in old), Decimal("0"))
        new_q = sum((line.quantity for line in new), Decimal("0"))
        old_arr = sum((line.arr for line in old), ZERO)
        new_arr = sum((line.arr for line in new), ZERO)
        rows.append(
            RenewalLineChange(
                organization_id=organization_id,
                renewal=renewal,
                product_id=product_id,
                kind=_kind(old, new, old_q, new_q),
                old_quantity=old_q,
                new_quantity=new_q,
                old_arr=old_arr,
                new_arr=new_arr,
                delta=new_arr - old_arr,
            )
        )
    return rows


def _expected_outcome(current: Decimal, new: Decimal) -> str:
    if new == 0:
        return RenewalOutcome.CHURNED
    if new > current:
        return RenewalOutcome.EXPANDED
    if new < current:
        return RenewalOutcome.CONTRACTED
    return RenewalOutcome.RENEWED


@transaction.atomic
def close_renewal(
    renewal: Renewal,
    *,
    outcome: str,
    by: Actor,
    lines: Iterable[Any] | None = None,
    start_date: date | None = None,
    end_date: date | None = None,
    churn_reason: Any = None,
    churn_notes: str = "",
    closed_on: date | None = None,
    number: str | None = None,
    seats: int | None = None,
) -> Renewal:
    """Close an open renewal with its outcome, in one transaction.

    * ``renewed`` / ``expanded`` / ``contracted``: creates the successor contract (number ``<old>-R1``
      unless given; start = old end + 1 day unless given; end = start + the old term unless given;
      ``lines`` = dicts ``{product, quantity, annual_unit_price, discount}``, default a copy of the old
      lines) and the line-level bridge (:class:`RenewalLineChange`). Dropping one product while keeping
      the account is ``contracted`` with that product left out. A successor starting on or before the
      old end date is an early renewal: the old contract is cut to end the day before.
    * ``churned``: no successor, new ARR 0, every old product ``dropped``. The old contract keeps its
      dates (its ARR ends with its end date); the account becomes churned (``churned_at`` = the day
      after the end, lifecycle ``churned``) unless it holds another non-cancelled contract running past
      that end date or another open renewal.
    * The outcome must match the numbers (module doc), and any loss (contracted, churned) needs an
      active churn reason of the organization (instance, id or code); ``avoidable`` is copied from it.
      Gains take no churn reason.

    Stage becomes ``won`` (renewed, expanded, contracted) or ``lost`` (churned); timing is derived
    (module doc). Current ARR is refreshed from the old contract's lines first, so the bridge sums
    exactly to ``new_arr − current_arr``. Records the outcome and stage in the forecast audit trail,
    records ``renewal.forecast_changed``; current ARR of the account is refreshed on commit.
    """
    _check_write(by, renewal)
    org_id = renewal.organization_id
    renewal = (
        Renewal.objects.for_org(org_id).select_for_update().select_related("account", "contract").get(pk=renewal.pk)
    )
    if not renewal.is_open:
        raise ValidationError({"outcome": [f"This renewal is already closed ({renewal.outcome})."]})
    if outcome not in RenewalOutcome.values:
        raise ValidationError({"outcome": [f"Use one of: {', '.join(RenewalOutcome.values)}."]})
    old = renewal.contract
    closed_on = closed_on or timezone.localdate()
    old_lines = list(ContractLine.objects.for_org(org_id).filter(contract=old).select_related("product"))
    current = sum((line.arr for line in old_lines), ZERO)

    errors: dict[str, list[str]] = {}
    reason = None
    if outcome in LOSS_OUTCOMES:
        if churn_reason in (None, ""):
            errors["churn_reason"] = [f"A {outcome} renewal needs a churn reason."]
        else:
            try:
                reason = resolve_churn_reason(org_id, churn_reason)
            except ValidationError as exc:
                errors.update(exc.message_dict)
    elif churn_reason not in (None, ""):
        errors["churn_reason"] = ["Only a loss (contracted or churned) takes a churn reason."]

    new_lines: list[LineInput] = []
    if outcome == RenewalOutcome.CHURNED:
        if lines:
            errors["lines"] = ["A churned renewal has no new contract; leave lines out."]
        for name, value in (("start_date", start_date), ("end_date", end_date), ("number", number)):
            if value:
                errors[name] = ["A churned renewal has no new contract."]
    else:
        if lines is None:
            new_lines = [
                LineInput(line.product, line.quantity, line.annual_unit_price, line.discount) for line in old_lines
            ]
        else:
            try:
                new_lines = _clean_lines(org_id, lines)
            except ValidationError as exc:
                errors.update(exc.message_dict)
        start_date = start_date or old.end_date + timedelta(days=1)
        end_date = end_date or _term_end(old, start_date)
        if start_date <= old.start_date:
            errors["start_date"] = [f"The new contract must start after the old one started ({old.start_date})."]
        if end_date < start_date:
            errors["end_date"] = ["The end date is before the start date."]
        elif end_date <= old.end_date:
            errors["end_date"] = [f"The new contract must end after the old one ({old.end_date})."]
        if number and Contract.objects.for_org(org_id).filter(number=number).exists():
            errors["number"] = ["A contract with this number already exists."]
    if errors:
        raise ValidationError(errors)

    new_arr = sum((line.arr for line in new_lines), ZERO)
    expected = _expected_outcome(current, new_arr)
    if expected != outcome:
        if outcome == RenewalOutcome.CHURNED:
            message = "A churned renewal has no new ARR."
        elif new_arr == 0:
            message = "The new contract has no ARR: record the renewal as churned instead."
        else:
            message = f"New ARR {new_arr:,.2f} against current ARR {current:,.2f} is {expected}, not {outcome}."
        raise ValidationError({"outcome": [message]})

    successor = None
    if outcome != RenewalOutcome.CHURNED:
        today = timezone.localdate()
        successor = Contract(
            organization_id=org_id,
            account_id=old.account_id,
            number=number or _successor_number(org_id, old.number),
            start_date=start_date,
            end_date=end_date,
            status=ContractStatus.ENDED if end_date < today else ContractStatus.ACTIVE,
            auto_renew=old.auto_renew,
            currency=old.currency,
            seats=old.seats if seats is None else seats,
            arr=new_arr,
        )
        successor.save()
        created = []
        for line in new_lines:
            row = ContractLine(
                organization_id=org_id,
                contract=successor,
                product=line.product,
                quantity=line.quantity,
                annual_unit_price=line.annual_unit_price,
                discount=line.discount,
            )
            row.arr = line.arr
            created.append(row)
        ContractLine.all_orgs.bulk_create(created)
        early = start_date <= old.end_date
        if early:  # early renewal: one contract at a time carries the ARR
            old.end_date = start_date - timedelta(days=1)
            old.save(update_fields=["end_date", "updated_at"])
        timing = (
            RenewalTiming.EARLY
            if early
            else RenewalTiming.LATE
            if closed_on > renewal.due_date or start_date > renewal.due_date + timedelta(days=1)
            else RenewalTiming.ON_TIME
        )
    else:
        timing = RenewalTiming.LATE if closed_on > renewal.due_date else RenewalTiming.ON_TIME
        _mark_churned_if_gone(renewal)

    RenewalLineChange.all_orgs.bulk_create(line_changes(org_id, renewal, old_lines, new_lines))
    before = {"stage": renewal.stage, "outcome": renewal.outcome}
    renewal.current_arr = current
    renewal.outcome = outcome
    renewal.new_arr = new_arr
    renewal.stage = RenewalStage.LOST if outcome == RenewalOutcome.CHURNED else RenewalStage.WON
    renewal.successor_contract = successor
    renewal.closed_on = closed_on
    renewal.closed_by = by.user
    renewal.timing = timing
    renewal.churn_reason = reason
    renewal.avoidable = reason.avoidable if reason is not None else None
    renewal.churn_notes = churn_notes or ""
    renewal.save()
    audit = [
        RenewalForecastChange(
            organization_id=org_id,
            renewal=renewal,
            field=name,
            old_value=_text(value),
            new_value=_text(getattr(renewal, name)),
            changed_by=by.user,
        )
        for name, value in before.items()
        if _text(value) != _text(getattr(renewal, name))
    ]
    RenewalForecastChange.all_orgs.bulk_create(audit)
    mark_arr_dirty(org_id, old.account_id)
    record_event(org_id, "renewal.forecast_changed", renewal.pk, {**_event(renewal, audit, by), "new_arr": new_arr})
    return renewal


def _mark_churned_if_gone(renewal: Renewal) -> None:
    """Churn the account when nothing of it runs past the lost contract's end and nothing else is open."""
    old = renewal.contract
    org_id = renewal.organization_id
    still_running = (
        Contract.objects.for_org(org_id)
        .filter(account_id=old.account_id, end_date__gt=old.end_date)
        .exclude(pk=old.pk)
        .exclude(status=ContractStatus.CANCELLED)
        .exists()
    )
    other_open = (
        Renewal.objects.for_org(org_id).filter(account_id=old.account_id, outcome="").exclude(pk=renewal.pk).exists()
    )
    if still_running or other_open:
        return
    Account.objects.for_org(org_id).filter(pk=old.account_id).update(
        churned_at=old.end_date + timedelta(days=1), lifecycle_stage="churned", updated_at=timezone.now()
    )


def renewal_bridge(renewal: Renewal, changes: Iterable[RenewalLineChange] | None = None) -> dict[str, Any]:
    """A closed renewal's ARR bridge: current → per kind of change → new, and the product steps.

    ``by_kind`` sums the deltas of each kind (``dropped``, ``added``, ``quantity``, ``price``,
    ``quantity_price``; ``unchanged`` is always 0); ``current_arr + Σ by_kind = new_arr``.
    """
    rows = list(changes) if changes is not None else list(renewal.line_changes.select_related("product"))
    by_kind = {kind: ZERO for kind in LineChangeKind.values if kind != LineChangeKind.UNCHANGED}
    for row in rows:
        if row.kind != LineChangeKind.UNCHANGED:
            by_kind[row.kind] += row.delta
    return {
        "current_arr": renewal.current_arr,
        "new_arr": renewal.new_arr,
        "delta": None if renewal.new_arr is None else renewal.new_arr - renewal.current_arr,
        "by_kind": by_kind,
        "steps": [
            {
                "product": row.product_id,
                "product_sku": row.product.sku,
                "product_name": row.product.name,
                "kind": row.kind,
                "old_quantity": row.old_quantity,
                "new_quantity": row.new_quantity,
                "old_arr": row.old_arr,
                "new_arr": row.new_arr,
                "delta": row.delta,
            }
            for row in rows
        ],
    }
