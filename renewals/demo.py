"""Demo contract histories with their renewals (used by ``accounts.demo.seed_demo``).

For one account, :meth:`HistoryBuilder.build` walks its life from ``customer_since`` to today in annual
terms. At each term's end a closed :class:`~renewals.models.Renewal` records what happened, drawn with
realistic odds per tier (roughly: 45–50 % renewed flat, 30–35 % expanded, 10–12 % contracted, 4–15 %
churned by tier), scaled by the term's latent risk (:func:`accounts.demo_risk.period_risk`, which also
drives the health signals of the term's last months: docs/demo.md), and the next contract follows from it:

* **expanded**: more seats, a list-price uplift, or an added product (or two of them);
* **contracted**: fewer seats, a dropped product (the logo stays: product churn), or both — always
  with a churn reason (budget cut, price, poor adoption, product fit, …);
* **churned**: no successor; reasons weighted like real books (poor adoption, price, competitor, budget
  cut, lost champion, product fit, support, and a few acquired/merged or out of business, which are
  unavoidable). About one in eight avoidable churns comes back months later (a reactivation: a new
  contract chain, ``churned_at`` cleared);
* timing: ~7 % **early** (the successor starts weeks before the old end, and the old contract is cut
  to end the day before, exactly as ``close_renewal`` does), ~10 % **late** (signed after the due date,
  backdated to the day after the end), the rest on time;
* the CSM's call (and sometimes a leader's final call) is recorded on closed renewals, right most of
  the time, so forecast accuracy has something to measure.

Contracts live today that end within the organization's ``renewal_lead_days`` carry an **open**
renewal with a mixed forecast (commit, likely, upside, at risk, churn), probability, stage by how
close the due date is, and calls; about a quarter of those due within 60 days are already closed won
with a successor starting after the end. ~2 % of accounts also hold a **cancelled** contract (no ARR,
no renewal). The bridge rows come from :func:`renewals.services.line_changes`, the same code the
product uses, so they sum to ``new_arr − current_arr`` exactly.

Everything is built in memory as model objects linked by Python references and inserted in bulk by
the seeder. Deterministic: every draw comes from the account's own random stream.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from accounts.demo_risk import churn_multiplier, period_risk
from accounts.models import Account, Contract, ContractLine, Organization, Product
from accounts.models.customers import line_arr

from .models import (
    ChurnReason,
    ForecastCategory,
    Renewal,
    RenewalForecastChange,
    RenewalLineChange,
    RenewalOutcome,
    RenewalStage,
    RenewalTarget,
    RenewalTiming,
)
from .services import LineInput, line_changes

__all__ = ["History", "HistoryBuilder", "seed_targets", "wipe"]

CENT = Decimal("0.01")
#: (code, weight) of churn reasons for a lost logo; unavoidable ones are rare.
CHURN_REASONS = [
    ("poor_adoption", 22), ("price", 14), ("competitor", 13), ("budget_cut", 12), ("lost_champion", 11),
    ("product_fit", 13), ("support_quality", 6), ("acquired_merged", 6), ("out_of_business", 5),
]  # fmt: skip
#: Reasons for a contraction (a partial loss).
CONTRACTION_REASONS = [("budget_cut", 30), ("price", 25), ("poor_adoption", 25), ("product_fit", 15), ("competitor", 5)]
CHURN_NOTES = {
    "poor_adoption": "Usage never got past the pilot team.",
    "price": "Renewal quote above their budget; asked for a 30% cut.",
    "competitor": "Moved to a cheaper competitor bundled with their CRM.",
    "budget_cut": "Company-wide freeze on software spend.",
    "lost_champion": "Our champion left and the new lead has other priorities.",
    "product_fit": "Needed workflows we do not offer.",
    "support_quality": "Escalations took too long to resolve.",
    "acquired_merged": "Acquired; the parent company standardises on its own tools.",
    "out_of_business": "The company closed down.",
}
CALL_OF_OUTCOME = {  # the CSM's usual call for an outcome, and the call when they got it wrong
    RenewalOutcome.RENEWED: (ForecastCategory.COMMIT, ForecastCategory.AT_RISK),
    RenewalOutcome.EXPANDED: (ForecastCategory.UPSIDE, ForecastCategory.LIKELY),
    RenewalOutcome.CONTRACTED: (ForecastCategory.AT_RISK, ForecastCategory.COMMIT),
    RenewalOutcome.CHURNED: (ForecastCategory.CHURN, ForecastCategory.LIKELY),
}
#: The 95 % cap on a term's churn odds trims the risk multiplier's heavy tail, and risky accounts leave
#: early (fewer renewals); this lift brings the book's churn share back to the tiers' ~10 %.
CHURN_LIFT = 1.3
PROBABILITY = {"commit": 90, "likely": 70, "upside": 60, "at_risk": 35, "churn": 10}


@dataclass
class History:
    """One account's contracts and renewals, not yet inserted."""

    contracts: list[tuple[Contract, list[ContractLine]]] = field(default_factory=list)
    renewals: list[tuple[Renewal, list[RenewalLineChange]]] = field(default_factory=list)
    live_end: date | None = None
    live_arr: Decimal = Decimal("0.00")


def _weighted(rng: random.Random, pairs: list[tuple[str, float]]) -> str:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


@dataclass
class _Terms:
    """What the next contract sells: seats, add-ons, discount and the price uplift so far."""

    seats: int
    addons: set[str]
    discount: Decimal
    uplift: Decimal = Decimal("1")


def first_renewal_discount(seed: int, external_id: str, outcome: str, discount: Decimal) -> Decimal:
    """The discount of the contract that follows an account's first renewal (seed 004 asks "by what average
    amount did we reduce discounts at first renewal"): a launch discount is often trimmed when the customer
    expands, and sometimes deepened to keep a contracting one. Only expansions and contractions change it, so
    the change moves ARR the way the outcome already does and the outcome still follows from ARR. Drawn from
    its own stream, so every other draw of the demo stays as it was."""
    rng = random.Random(f"{seed}:first-renewal-discount:{external_id}")
    roll = rng.random()
    if outcome == RenewalOutcome.EXPANDED and roll < 0.7:
        discount -= Decimal(rng.randint(1, 5)) / 100
    elif outcome == RenewalOutcome.CONTRACTED and roll < 0.5:
        discount += Decimal(rng.randint(1, 3)) / 100
    return min(max(discount, Decimal("0")), Decimal("0.9")).quantize(Decimal("0.01"))


class HistoryBuilder:
    """Builds :class:`History` rows for the accounts of one demo organization."""

    def __init__(
        self, org: Organization, today: date, products: dict[str, Product], catalog: list, addons: dict, *,
        seed: int = 42,
    ):  # fmt: skip
        self.org, self.today, self.seed = org, today, seed
        self.products = products
        self.catalog = {row[0]: row for row in catalog}
        self.addon_odds = addons
        self.reasons = {r.code: r for r in ChurnReason.objects.for_org(org)}

    # --- contracts ---------------------------------------------------------------------------------

    def _lines(self, terms: _Terms) -> list[LineInput]:
        out = []
        for sku in ["PLT-CORE", *sorted(terms.addons)]:
            _, _, _, price, per_seat = self.catalog[sku]
            quantity = Decimal(terms.seats if per_seat else 1)
            out.append(LineInput(self.products[sku], quantity, (price * terms.uplift).quantize(CENT), terms.discount))
        return out

    def _contract(self, account: Account, number: str, start: date, end: date, lines: list[LineInput], **kw: Any):
        contract = Contract(
            organization_id=self.org.pk,
            account=account,
            number=number,
            start_date=start,
            end_date=end,
            status=kw.get("status") or ("ended" if end < self.today else "active"),
            auto_renew=kw.get("auto_renew", False),
            currency=self.org.currency,
            seats=kw.get("seats"),
        )
        rows = []
        for line in lines:
            row = ContractLine(
                organization_id=self.org.pk,
                contract=contract,
                product=line.product,
                quantity=line.quantity,
                annual_unit_price=line.annual_unit_price,
                discount=line.discount,
            )
            row.arr = line_arr(line.quantity, line.annual_unit_price, line.discount)
            rows.append(row)
        contract.arr = sum((row.arr for row in rows), Decimal("0.00"))
        return contract, rows

    # --- outcomes ----------------------------------------------------------------------------------

    def _next_terms(
        self, rng: random.Random, tier: str, terms: _Terms, seat_min: int, hazard: float, risk: float = 0.0
    ):
        """Draw the outcome of a renewal and the terms of the next contract.

        ``risk`` is the term's latent risk (:func:`accounts.demo_risk.period_risk`, ≈ N(0, 1)): it scales
        the tier's churn hazard and the contraction odds up (and the expansion odds down) by log-normal
        factors of mean 1, so the book's average rates stay those of the tier while each outcome follows
        the risk that the term's health signals also carry, with plenty of luck left in the draw."""
        roll = rng.random()
        new = _Terms(terms.seats, set(terms.addons), terms.discount, terms.uplift)
        churn = min(0.95, hazard * CHURN_LIFT * churn_multiplier(risk))
        contraction = min(0.35, 0.12 * churn_multiplier(risk, 0.6))
        expansion = min(0.6, 0.33 * churn_multiplier(-risk, 0.5))
        if roll < churn:
            return RenewalOutcome.CHURNED, None
        if roll < churn + contraction:
            mode = rng.choice(["seats", "seats", "product", "both"])
            if mode in ("product", "both") and new.addons:
                new.addons.discard(sorted(new.addons)[rng.randrange(len(new.addons))])
            else:
                mode = "seats"
            if mode in ("seats", "both"):
                new.seats = max(max(1, seat_min // 2), int(terms.seats * rng.uniform(0.6, 0.9)))
                if new.seats >= terms.seats:
                    new.seats = terms.seats - 1
            if new.seats < 1 or (new.seats == terms.seats and new.addons == terms.addons):
                return RenewalOutcome.RENEWED, new
            return RenewalOutcome.CONTRACTED, new
        if roll < churn + contraction + expansion:
            mode = rng.choice(["seats", "seats", "uplift", "product"])
            extra = [sku for sku in self.addon_odds[tier] if sku not in new.addons]
            if mode == "product" and extra:
                new.addons.add(rng.choice(extra))
            elif mode == "uplift":
                new.uplift = (terms.uplift * Decimal("1.05")).quantize(Decimal("0.0001"))
            else:
                new.seats = max(terms.seats + 1, int(terms.seats * rng.uniform(1.08, 1.5)))
            return RenewalOutcome.EXPANDED, new
        return RenewalOutcome.RENEWED, new

    def _calls(self, rng: random.Random, renewal: Renewal, outcome: str) -> None:
        """The CSM's (and sometimes the leader's) call on a closed renewal: right about 80 % of the time."""
        right, wrong = CALL_OF_OUTCOME[outcome]
        call = right if rng.random() < 0.8 else wrong
        if outcome == RenewalOutcome.RENEWED and call == right and rng.random() < 0.4:
            call = ForecastCategory.LIKELY
        renewal.forecast_category = call
        renewal.probability = PROBABILITY[call]
        renewal.csm_call = call
        factor = {"commit": 1, "likely": 1, "upside": 1.15, "at_risk": 0.8, "churn": 0}[call]
        renewal.csm_call_arr = (renewal.current_arr * Decimal(str(factor))).quantize(CENT)
        renewal.forecast_arr = renewal.csm_call_arr
        if rng.random() < 0.35:
            final = right if rng.random() < 0.85 else call
            renewal.final_call = final
            factor = {"commit": 1, "likely": 1, "upside": 1.15, "at_risk": 0.8, "churn": 0}[final]
            renewal.final_call_arr = (renewal.current_arr * Decimal(str(factor))).quantize(CENT)

    def _closed_renewal(
        self,
        rng: random.Random,
        account: Account,
        contract: Contract,
        old_lines: list[ContractLine],
        new_lines: list[LineInput],
        outcome: str,
        *,
        due: date,
        closed_on: date,
        timing: str,
        successor: Contract | None,
        reason_code: str | None,
    ) -> tuple[Renewal, list[RenewalLineChange]]:
        new_arr = sum((line.arr for line in new_lines), Decimal("0.00"))
        renewal = Renewal(
            organization_id=self.org.pk,
            account=account,
            contract=contract,
            owner_id=account.owner_id,
            due_date=due,
            current_arr=contract.arr,
            forecast_arr=contract.arr,
            stage=RenewalStage.LOST if outcome == RenewalOutcome.CHURNED else RenewalStage.WON,
            outcome=outcome,
            closed_on=closed_on,
            closed_by_id=account.owner_id,
            timing=timing,
            new_arr=new_arr,
        )
        if successor is not None:
            renewal.successor_contract = successor
        if reason_code:
            reason = self.reasons[reason_code]
            renewal.churn_reason_id = reason.pk
            renewal.avoidable = reason.avoidable
            renewal.churn_notes = CHURN_NOTES[reason_code] if rng.random() < 0.7 else ""
        self._calls(rng, renewal, outcome)
        return renewal, line_changes(self.org.pk, renewal, old_lines, new_lines)

    def _open_renewal(self, rng: random.Random, account: Account, contract: Contract) -> Renewal:
        days = (contract.end_date - self.today).days
        category = _weighted(rng, [("commit", 28), ("likely", 34), ("upside", 9), ("at_risk", 19), ("churn", 10)])
        factor = {
            "commit": 1.0, "likely": 1.0, "upside": rng.uniform(1.1, 1.4), "at_risk": rng.uniform(0.55, 0.9),
            "churn": 0.0,
        }[category]  # fmt: skip
        forecast = (contract.arr * Decimal(str(round(factor, 3)))).quantize(CENT)
        if days > 90:
            stage = _weighted(rng, [("not_started", 7), ("in_progress", 3)])
        elif days > 30:
            stage = _weighted(rng, [("not_started", 2), ("in_progress", 6), ("verbal", 1 + (category == "commit") * 3)])
        else:
            stage = _weighted(rng, [("in_progress", 4), ("verbal", 2 + (category == "commit") * 6)])
        renewal = Renewal(
            organization_id=self.org.pk,
            account=account,
            contract=contract,
            owner_id=account.owner_id,
            due_date=contract.end_date,
            current_arr=contract.arr,
            forecast_arr=forecast,
            forecast_category=category,
            probability=max(0, min(100, PROBABILITY[category] + rng.choice((-10, -5, 0, 0, 5)))),
            stage=stage,
        )
        if stage != "not_started" or rng.random() < 0.3:
            renewal.csm_call = category if rng.random() < 0.85 else rng.choice(ForecastCategory.values)
            renewal.csm_call_arr = forecast
        if renewal.csm_call and rng.random() < 0.4:
            renewal.final_call = category if rng.random() < 0.7 else rng.choice(["likely", "at_risk"])
            renewal.final_call_arr = forecast
        if category in ("at_risk", "churn"):
            renewal.notes = rng.choice(
                ["Usage down 30% since the last QBR.", "Champion left; new sponsor not engaged yet.",
                 "Asked for a discount to renew.", "Evaluating a competitor."]
            )  # fmt: skip
        return renewal

    # --- one account -------------------------------------------------------------------------------

    def build(
        self,
        rng: random.Random,
        account: Account,
        *,
        tier: str,
        seat_range: tuple[int, int],
        hazard: float,
        discount_range: tuple[float, float],
    ) -> History:
        """The account's contract chain from ``customer_since`` to today; sets ``churned_at`` when lost."""
        today, lead = self.today, self.org.renewal_lead_days
        history = History()
        terms = _Terms(
            seats=rng.randint(*seat_range),
            addons={sku for sku, p in self.addon_odds[tier].items() if rng.random() < p},
            discount=Decimal(str(round(rng.uniform(*discount_range), 2))),
        )
        prefix = account.external_id
        start, n = account.customer_since, 1
        contract, lines = self._contract(
            account, f"{prefix}-{n:02d}", start, _add_years(start, 1) - timedelta(days=1), self._lines(terms),
            seats=terms.seats, auto_renew=tier == "smb",
        )  # fmt: skip
        while True:
            history.contracts.append((contract, lines))
            due = contract.end_date
            if due >= today:  # the live contract
                history.live_end = due
                history.live_arr = contract.arr
                if (due - today).days <= lead:
                    self._live_renewal(rng, account, contract, lines, terms, tier, seat_range, history)
                break
            risk = period_risk(self.seed, account.external_id, contract.number)
            outcome, new_terms = self._next_terms(rng, tier, terms, seat_range[0], hazard, risk)
            if n == 1 and new_terms is not None:
                new_terms.discount = first_renewal_discount(self.seed, account.external_id, outcome, terms.discount)
            if outcome == RenewalOutcome.CHURNED:
                code = _weighted(rng, CHURN_REASONS)
                closed_on = min(today, due + timedelta(days=rng.randint(-45, 20)))
                timing = RenewalTiming.LATE if closed_on > due else RenewalTiming.ON_TIME
                history.renewals.append(
                    self._closed_renewal(
                        rng,
                        account,
                        contract,
                        lines,
                        [],
                        outcome,
                        due=due,
                        closed_on=closed_on,
                        timing=timing,
                        successor=None,
                        reason_code=code,
                    )  # fmt: skip
                )
                account.churned_at = due + timedelta(days=1)
                comeback = account.churned_at + timedelta(days=rng.randint(60, 330))
                if self.reasons[code].avoidable and rng.random() < 0.12 and comeback <= today - timedelta(days=20):
                    account.churned_at = None  # reactivated: a new chain, smaller to start with
                    terms = _Terms(max(seat_range[0], int(terms.seats * 0.7)), set(), terms.discount)
                    n += 1
                    start = comeback
                    contract, lines = self._contract(
                        account, f"{prefix}-{n:02d}", start, _add_years(start, 1) - timedelta(days=1),
                        self._lines(terms), seats=terms.seats, auto_renew=tier == "smb",
                    )  # fmt: skip
                    continue
                break
            timing_roll = rng.random()
            new_start = due + timedelta(days=1)
            if timing_roll < 0.07:
                timing = RenewalTiming.EARLY
                new_start = due - timedelta(days=rng.randint(14, 60))
                closed_on = new_start - timedelta(days=rng.randint(0, 25))
            elif timing_roll < 0.17 and due + timedelta(days=3) <= today:
                timing = RenewalTiming.LATE
                closed_on = min(today, due + timedelta(days=rng.randint(3, 45)))
            else:
                timing = RenewalTiming.ON_TIME
                closed_on = due - timedelta(days=rng.randint(0, 60))
            n += 1
            new_lines = self._lines(new_terms)
            successor, successor_lines = self._contract(
                account, f"{prefix}-{n:02d}", new_start, _add_years(new_start, 1) - timedelta(days=1), new_lines,
                seats=new_terms.seats, auto_renew=tier == "smb",
            )  # fmt: skip
            if timing == RenewalTiming.EARLY:  # as close_renewal does: one contract carries the ARR at a time
                contract.end_date = new_start - timedelta(days=1)
                contract.status = "ended" if contract.end_date < today else "active"
            code = _weighted(rng, CONTRACTION_REASONS) if outcome == RenewalOutcome.CONTRACTED else None
            history.renewals.append(
                self._closed_renewal(
                    rng,
                    account,
                    contract,
                    lines,
                    new_lines,
                    outcome,
                    due=due,
                    closed_on=closed_on,
                    timing=timing,
                    successor=successor,
                    reason_code=code,
                )  # fmt: skip
            )
            contract, lines, terms = successor, successor_lines, new_terms
        if rng.random() < 0.02:
            self._cancelled(rng, account, tier, terms, history)
        return history

    def _live_renewal(self, rng, account, contract, lines, terms, tier, seat_range, history) -> None:
        """The live contract is inside the renewal window: already won (a few), else an open renewal."""
        today = self.today
        days = (contract.end_date - today).days
        if days <= 60 and rng.random() < 0.25:
            risk = period_risk(self.seed, account.external_id, contract.number)
            outcome, new_terms = self._next_terms(rng, tier, terms, seat_range[0], 0.0, risk)
            if outcome in (RenewalOutcome.RENEWED, RenewalOutcome.EXPANDED):
                start = contract.end_date + timedelta(days=1)
                new_lines = self._lines(new_terms)
                successor, successor_lines = self._contract(
                    account, f"{contract.number}-R1", start, _add_years(start, 1) - timedelta(days=1), new_lines,
                    seats=new_terms.seats, auto_renew=tier == "smb",
                )  # fmt: skip
                history.contracts.append((successor, successor_lines))
                history.renewals.append(
                    self._closed_renewal(
                        rng,
                        account,
                        contract,
                        lines,
                        new_lines,
                        outcome,
                        due=contract.end_date,
                        closed_on=today - timedelta(days=rng.randint(0, 20)),
                        timing=RenewalTiming.ON_TIME,
                        successor=successor,
                        reason_code=None,
                    )  # fmt: skip
                )
                return
        history.renewals.append((self._open_renewal(rng, account, contract), []))

    def _cancelled(self, rng, account, tier, terms, history) -> None:
        """An add-on deal signed then cancelled: it never counts for ARR and gets no renewal."""
        start = account.customer_since + timedelta(days=rng.randint(30, 200))
        if start >= self.today:
            return
        sku = rng.choice(sorted(self.addon_odds["enterprise"]))
        addon = _Terms(max(1, terms.seats // 4), {sku}, terms.discount)
        lines = [line for line in self._lines(addon) if line.product.sku == sku]
        history.contracts.append(
            self._contract(
                account,
                f"{account.external_id}-X1",
                start,
                _add_years(start, 1) - timedelta(days=1),
                lines,
                status="cancelled",
                seats=addon.seats,
            )  # fmt: skip
        )


def seed_targets(org: Organization, today: date) -> int:
    """Renewal targets for the last four fiscal quarters and the next two: 92 % of the ARR due in each."""
    first_month = org.fiscal_year_start_month
    month_index = (today.year * 12 + today.month - 1 - (first_month - 1)) // 3 * 3 + (first_month - 1)
    current = date(month_index // 12, month_index % 12 + 1, 1)
    targets = []
    for k in range(-4, 3):
        m = current.year * 12 + current.month - 1 + 3 * k
        start = date(m // 12, m % 12 + 1, 1)
        m_end = m + 3
        end = date(m_end // 12, m_end % 12 + 1, 1) - timedelta(days=1)
        due = Renewal.objects.for_org(org).filter(due_date__gte=start, due_date__lte=end)
        total = sum(due.values_list("current_arr", flat=True), Decimal("0"))
        if total:
            targets.append(
                RenewalTarget(
                    organization_id=org.pk,
                    quarter_start=start,
                    target_arr=(total * Decimal("0.92")).quantize(Decimal("1")),
                    target_grr=Decimal("0.9200"),
                )
            )
    RenewalTarget.all_orgs.bulk_create(targets)
    return len(targets)


def wipe(org: Organization) -> None:
    """Delete the organization's renewals rows (before its contracts go); churn reasons stay."""
    for model in (RenewalForecastChange, RenewalLineChange, Renewal, RenewalTarget):
        model.all_orgs.filter(organization_id=org.pk)._raw_delete(model.all_orgs.db)


# --- Hooks of accounts.demo.seed_demo (registered in RenewalsConfig.ready) -----------------------------


def history_builder(
    org: Organization, today: date, products: dict[str, Product], catalog: list, addons: dict, *, seed: int = 42
):
    """Every demo account's contracts and renewals come from here (accounts.demo has no contract generator)."""
    return HistoryBuilder(org, today, products, catalog, addons, seed=seed)


def bulk_models() -> list[Any]:
    """Written in bulk with the accounts, without per-row foreign-key triggers."""
    return [Renewal, RenewalLineChange]


def insert(bundles: list[Any], write: Any) -> dict[str, int]:
    """A batch's renewals and their line changes, right after its contracts (``bundle.history``: a History)."""
    renewals = [r for b in bundles for r, _ in b.history.renewals]
    write(Renewal, renewals)
    changes = [c for b in bundles for _, cs in b.history.renewals for c in cs]
    write(RenewalLineChange, changes)
    return {"renewals": len(renewals), "renewal_line_changes": len(changes)}


def seed(org: Organization, *, seed: int, today: date, log: Any = None) -> dict[str, int]:
    """After the accounts: the renewal targets."""
    return {"renewal_targets": seed_targets(org, today)}
