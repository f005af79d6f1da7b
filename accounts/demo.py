"""Deterministic, realistic demo data for the customer model (``manage.py seed_demo``).

Same seed, same number of accounts and same day → the same rows (names, external ids, contracts,
ARR, activities). Every account draws from its own ``random.Random(f"{seed}:{index}")`` stream, so
an account's data does not depend on the batch size or on the accounts before it; dates are
relative to one "today" anchor taken once per run.

What it makes, for an organization named "Demo Co":

- people: an admin (``admin@<slug>.retain.local``), a leader managing both teams, six CSMs with
  books sized by touch model (two enterprise/high touch, two mid-market/low touch, two scale/tech
  touch) and a viewer; every demo user's password is :data:`DEMO_PASSWORD`;
- a catalog of 6 SKUs in 3 product lines;
- accounts across industries, regions, touch models and lifecycle stages, with a few parent/child
  hierarchies; contacts with roles (some departed); three years (and for a fifth of the book more)
  of annual contracts with a closed renewal at every term's end — renewed, expanded, contracted (fewer
  seats or a dropped product) or churned, with churn reasons, early and late renewals, reactivations,
  a few cancelled contracts — and open renewals for the contracts ending within the renewal window, plus
  renewal targets (see :mod:`renewals.demo`); a timeline of customer touches and internal notes (a quarter
  of the high-touch accounts untouched for 46–75 days); success plans with objectives for high-touch (and
  some low-touch) accounts.

Renewal outcomes depend on the health signals, with noise: every contract term has a latent risk
(:mod:`accounts.demo_risk`) from which renewals draws the term's outcome and from which the touches and
key-contact departures here (and health's signals) of the months before the renewal are drawn, so a
backtest as of due − 90 days means something (docs/demo.md). Health signals (usage, tickets, invoices,
NPS, CSM pulses) and score history come from
:func:`health.demo.seed_health`; the default playbooks, run through the engine, and the work queue they
make from :mod:`playbooks.demo`; surveys, sends and answered responses from :mod:`feedback.demo`, and
feature requests linked across accounts from :mod:`feedback.demo_requests`.

accounts sits below the apps that add to the demo, so it imports none of them: each registers its demo
module with :func:`register_demo_module` from its ``AppConfig.ready()``, with an explicit ``order``
(renewals 10, health 20, feedback 25 and 40, playbooks 30, health 50). A demo module may define any of these
hooks, called in that order:

- ``history_builder(org, today, products, catalog, addons, seed=seed)``: the builder of every account's contract
  history (renewals: contracts with their renewals); exactly one module provides it. Its ``build(rng,
  account, ...)`` returns an object with ``contracts`` and ``live_end``; the object is kept on the bundle
  as ``history`` for the module's ``insert``;
- ``bulk_models()``: its tables written with the accounts (no per-row foreign-key triggers, ``ANALYZE``);
- ``insert(bundles, write)``: its rows of a batch, right after the contracts and lines (``write`` =
  this module's COPY/``bulk_create`` writer); returns row counts;
- ``wipe(org)``: deletes its rows before the accounts go;
- ``seed(org, *, seed, today, log)``: after the accounts and the ARR check; returns row counts.

Re-running for an existing organization **replaces** its demo data (accounts and everything hanging
off them, and the catalog); it refuses to touch an organization holding accounts that seed_demo did
not make (external ids not starting with ``DEMO-``) unless forced. Everything is written in one
transaction in batches of 1,000 accounts (Postgres: ids drawn from the sequences, then ``COPY``
formatted by :mod:`cs_platform.imports.copy`, with the per-row foreign-key triggers off when the database
role may turn them off and every reference checked set-based instead; SQLite: ``bulk_create``), ARR
is checked at the end by ``refresh_current_arr`` (the generator already computes it, so the refresh
normally changes nothing), and on Postgres the tables are ``ANALYZE``d so the first queries plan
with real statistics.
"""

from __future__ import annotations

import copy
import importlib
import random
import time as clock
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from operator import attrgetter
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import connections, transaction
from django.utils import timezone

from cs_platform.imports.copy import bulk_load, copy_lines, copy_value

from .choices import KEY_CONTACT_ROLES, Role
from .demo_risk import period_risk, signal_profiles
from .models import (
    Account,
    Activity,
    ActivityContact,
    Contact,
    Contract,
    ContractLine,
    Membership,
    Objective,
    Organization,
    Product,
    SuccessPlan,
    Team,
)
from .services import create_organization, ensure_membership, is_successor, refresh_current_arr

__all__ = ["DEMO_PASSWORD", "DemoRefused", "DemoSummary", "bulk_write", "register_demo_module", "seed_demo"]

#: app key → (order, dotted module path): the demo modules of the apps above accounts.
_DEMO_MODULES: dict[str, tuple[int, str]] = {}


def register_demo_module(key: str, module: str, *, order: int) -> None:
    """Add an app's demo module (see the module doc for its hooks). ``order`` decides when its hooks run
    relative to the other apps' (lower first): explicit, never the order in which apps are installed."""
    _DEMO_MODULES[key] = (order, module)


def _demo_modules() -> list[Any]:
    return [importlib.import_module(path) for _, path in sorted(_DEMO_MODULES.values())]


def _hooks(name: str) -> list[Callable[..., Any]]:
    """The registered modules' ``name`` hooks, in order."""
    return [getattr(module, name) for module in _demo_modules() if hasattr(module, name)]


DEMO_PASSWORD = "retain-demo"
PREFIX = "DEMO-"
CHUNK = 1000  # accounts per batch of inserts (memory stays bounded for 50k accounts)
#: accounts' own tables written in bulk (with the registered modules' ``bulk_models``).
LOADED = [Account, Contact, Contract, ContractLine, Activity, ActivityContact, SuccessPlan, Objective]

# (key, first, last, role, team, touch models of the book)
PEOPLE = [
    ("admin", "Dana", "Whitfield", Role.ADMIN, None, ()),
    ("morgan.reyes", "Morgan", "Reyes", Role.LEADER, None, ()),
    ("priya.shah", "Priya", "Shah", Role.CSM, "Enterprise", ("high",)),
    ("lucas.meyer", "Lucas", "Meyer", Role.CSM, "Enterprise", ("high",)),
    ("sofia.alvarez", "Sofia", "Alvarez", Role.CSM, "Enterprise", ("low",)),
    ("kenji.tanaka", "Kenji", "Tanaka", Role.CSM, "Scale", ("low",)),
    ("amara.okafor", "Amara", "Okafor", Role.CSM, "Scale", ("tech",)),
    ("liam.oconnor", "Liam", "O'Connor", Role.CSM, "Scale", ("tech",)),
    ("victor.chen", "Victor", "Chen", Role.VIEWER, None, ()),
]
TEAMS = ("Enterprise", "Scale")

# sku, name, product line, list price per unit and year, per seat?
CATALOG = [
    ("PLT-CORE", "Retain Platform", "Platform", Decimal("420"), True),
    ("PLT-SEC", "Enterprise Security Pack", "Platform", Decimal("90"), True),
    ("ANL-INS", "Insights", "Analytics", Decimal("150"), True),
    ("ANL-WH", "Warehouse Sync", "Analytics", Decimal("18000"), False),
    ("SUP-PREM", "Premium Support", "Support", Decimal("24000"), False),
    ("SUP-TAM", "Technical Account Manager", "Support", Decimal("60000"), False),
]
# Add-on probabilities per tier.
ADDONS = {
    "enterprise": {"PLT-SEC": 0.7, "ANL-INS": 0.55, "ANL-WH": 0.4, "SUP-PREM": 0.8, "SUP-TAM": 0.5},
    "mid": {"PLT-SEC": 0.15, "ANL-INS": 0.35, "ANL-WH": 0.12, "SUP-PREM": 0.35},
    "smb": {"ANL-INS": 0.15},
}
TIERS = {  # share, seats, employees, yearly churn hazard, discount range
    "enterprise": (0.08, (1200, 4000), (2000, 60000), 0.04, (0.10, 0.30)),
    "mid": (0.32, (90, 900), (200, 2500), 0.08, (0.0, 0.15)),
    "smb": (0.60, (10, 90), (15, 300), 0.15, (0.0, 0.05)),
}
TOUCH_OF_TIER = {"enterprise": "high", "mid": "low", "smb": "tech"}
INDUSTRIES = [
    "Software", "Financial Services", "Healthcare", "Retail", "Manufacturing", "Education", "Media", "Logistics",
]  # fmt: skip
REGIONS = [("North America", 0.45), ("EMEA", 0.32), ("APAC", 0.16), ("LATAM", 0.07)]
NAME_A = [
    "North", "Blue", "Silver", "Red", "Bright", "Iron", "Cedar", "Summit", "Harbor", "Pioneer", "Atlas", "Nova",
    "Granite", "Maple", "Orbit", "Vertex", "Crescent", "Falcon", "Golden", "Evergreen", "Lumen", "Quantum", "Sterling",
    "Horizon", "Crystal", "Aurora", "Beacon", "Cobalt", "Delta", "Echo", "Fjord", "Juniper", "Keystone", "Lighthouse",
    "Meridian", "Oak", "Pinnacle", "Ridge", "Sequoia", "Tidal", "Unity", "Willow", "Zenith", "Apex", "Bluebird",
]  # fmt: skip
NAME_B = [
    "wind", "peak", "stone", "field", "bridge", "gate", "line", "point", "works", "wave", "forge", "path", "light",
    "view", "crest", "brook", "spring", "shore", "vale", "port",
]  # fmt: skip
NAME_C = {
    "Software": ["Software", "Systems", "Labs", "Cloud", "Digital"],
    "Financial Services": ["Capital", "Bank", "Financial", "Insurance", "Partners"],
    "Healthcare": ["Health", "Medical", "Clinics", "Care", "Therapeutics"],
    "Retail": ["Retail", "Stores", "Outfitters", "Market", "Brands"],
    "Manufacturing": ["Industries", "Manufacturing", "Components", "Motors", "Materials"],
    "Education": ["Academy", "University", "Learning", "Schools", "Institute"],
    "Media": ["Media", "Studios", "Publishing", "Broadcasting", "Games"],
    "Logistics": ["Logistics", "Freight", "Shipping", "Transport", "Supply"],
}
FIRST = [
    "Alex", "Sam", "Jordan", "Taylor", "Chris", "Maria", "Wei", "Fatima", "Olivia", "Noah", "Emma", "Mateo", "Aisha",
    "Hiro", "Ingrid", "Jonas", "Leila", "Marco", "Nadia", "Omar", "Paula", "Rahul", "Sara", "Tomás", "Yuki", "Zoe",
    "Ben", "Clara", "David", "Elena", "Farah", "Greta", "Hannah", "Ivan", "Julia", "Kofi", "Lena", "Mei", "Nina",
]  # fmt: skip
LAST = [
    "Smith", "Garcia", "Müller", "Rossi", "Kim", "Nguyen", "Patel", "Johansson", "Dubois", "Silva", "Cohen", "Novak",
    "Haddad", "Kowalski", "Lopez", "Brown", "Ito", "Jensen", "Khan", "Larsen", "Moreau", "Nakamura", "Okoro", "Park",
    "Quinn", "Schmidt", "Tanaka", "Varga", "Walsh", "Young",
]  # fmt: skip
TITLES = {
    "executive_sponsor": ("VP Operations", "executive"),
    "economic_buyer": ("Director of Finance", "director"),
    "champion": ("Head of Customer Operations", "director"),
    "admin": ("Systems Administrator", "individual"),
    "power_user": ("Operations Manager", "manager"),
    "end_user": ("Analyst", "individual"),
}
TOUCH_SUMMARIES = {
    "call": ["Weekly check-in on rollout", "Reviewed open support issues", "Discussed adoption in the {team} team"],
    "meeting": ["Workshop on reporting setup", "Roadmap preview with the product team", "Admin training follow-up"],
    "email": ["Sent adoption report", "Shared release notes", "Followed up on renewal paperwork"],
    "qbr": ["QBR: reviewed objectives and usage", "QBR: agreed next quarter's objectives"],
    "ebr": ["Executive business review with the sponsor"],
    "onsite": ["Onsite visit at headquarters"],
    "training": ["Trained new users", "Admin certification session"],
    "note": ["Champion mentioned budget pressure", "Expansion opportunity in the {team} team", "Internal: risk review"],
}
TEAMS_AT_CUSTOMER = ["support", "sales", "finance", "operations", "marketing"]
#: A closed renewal is backtested as of its due date minus this many days (health.demo uses the same).
AS_OF_LEAD = 90
KEY_ROLES = set(KEY_CONTACT_ROLES)
#: relationship profile → odds that a key contact leaves in the three months before a past term's as-of day
DEPARTURE_ODDS = {"healthy": 0.03, "at_risk": 0.4, "critical": 0.9}
#: engagement profile → spacing of touches (× the touch model's cadence) and odds of a quiet spell
TOUCH_PACE = {"healthy": 0.8, "at_risk": 1.1, "critical": 1.5}
QUIET_ODDS = {"healthy": 0.1, "at_risk": 0.35, "critical": 0.6}
OBJECTIVES = [
    ("Cut first-response time", "Median first response (hours)", "9", "4"),
    ("Roll out to the support team", "Active support agents", "40", "120"),
    ("Automate renewal reporting", "Hours of manual reporting per month", "30", "5"),
    ("Raise weekly active usage", "Weekly active users", "55%", "75%"),
    ("Launch executive dashboard", "Dashboards in use by leadership", "0", "3"),
    ("Reduce churn in the SMB book", "Gross revenue retention", "86%", "92%"),
]


class DemoRefused(RuntimeError):
    """The organization holds data that seed_demo did not make; it is left alone."""


@dataclass
class DemoSummary:
    """What seed_demo made."""

    organization: Organization
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    arr_refreshed: int = 0
    admin_email: str = ""


@dataclass
class _Bundle:
    """One account's rows before insertion (model objects linked by Python references)."""

    account: Account
    parent_index: int | None
    contacts: list[Contact]
    contracts: list[tuple[Contract, list[ContractLine]]]
    activities: list[tuple[Activity, list[Contact]]]
    plan: tuple[SuccessPlan, list[Objective]] | None
    history: Any = None  # the history builder's result (renewals: contracts and their renewals), for its insert


def _weighted(rng: random.Random, pairs: list[tuple[str, float]]) -> str:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


class _Generator:
    def __init__(self, org: Organization, seed: int, today: date, owners: dict[str, list[int]], products: dict):
        self.org, self.seed, self.today = org, seed, today
        self.owners = owners
        self.products = products  # sku -> Product
        self.names: set[str] = set()
        builders = _hooks("history_builder")  # renewals: contracts and their renewals, three years of them
        if len(builders) != 1:
            raise RuntimeError(f"the demo needs exactly one contract history builder; {len(builders)} registered")
        self.history = builders[0](org, today, products, CATALOG, ADDONS, seed=seed)

    def _name(self, rng: random.Random, industry: str) -> str:
        for _ in range(6):
            name = f"{rng.choice(NAME_A)}{rng.choice(NAME_B)} {rng.choice(NAME_C[industry])}"
            if name not in self.names:
                break
        else:
            name = f"{name} {rng.randint(2, 999)}"
        self.names.add(name)
        return name

    def account(self, index: int, *, parent: _Bundle | None = None) -> _Bundle:
        rng = random.Random(f"{self.seed}:{index}")
        org, today = self.org, self.today
        if parent is None:
            tier = _weighted(rng, [(t, v[0]) for t, v in TIERS.items()])
            industry = rng.choice(INDUSTRIES)
            region = _weighted(rng, REGIONS)
            name = self._name(rng, industry)
        else:
            tier = "mid" if rng.random() < 0.7 else "enterprise"
            industry, region = parent.account.industry, rng.choice([r for r, _ in REGIONS])
            if f"{parent.account.name} {region}" in self.names:  # a sibling has that region: take a free one
                region = next((r for r, _ in REGIONS if f"{parent.account.name} {r}" not in self.names), region)
            name = f"{parent.account.name} {region}"
            self.names.add(name)
        _, seat_range, employee_range, hazard, discount_range = TIERS[tier]
        touch = TOUCH_OF_TIER[tier]
        if rng.random() < 0.06:  # books are never perfectly tidy
            touch = {"high": "low", "low": rng.choice(["high", "tech"]), "tech": "low"}[touch]
        owner_id = rng.choice(self.owners[touch]) if rng.random() > 0.02 else None
        domain = name.lower().replace(" ", "").replace("'", "") + ".example"
        # New logos every month of the last three years, and a fifth of the book older than that.
        since = today - timedelta(days=rng.randint(1100, 1800) if rng.random() < 0.2 else rng.randint(20, 1095))
        account = Account(
            organization_id=org.pk,
            external_id=f"{PREFIX}{index:06d}",
            name=name,
            domain=domain,
            industry=industry,
            region=region,
            employees=rng.randint(*employee_range),
            owner_id=owner_id,
            touch_model=touch,
            customer_since=since,
            icp_fit=rng.random() < (0.7 if tier != "smb" else 0.35),
            custom_fields={"plan": {"enterprise": "Enterprise", "mid": "Growth", "smb": "Starter"}[tier]},
        )
        history = self.history.build(
            rng, account, tier=tier, seat_range=seat_range, hazard=hazard, discount_range=discount_range
        )
        contracts, live_end = history.contracts, history.live_end
        live_arr = sum(
            (c.arr for c, _ in contracts if c.start_date <= today <= c.end_date and c.status != "cancelled"),
            Decimal("0.00"),
        )
        account.arr = account.hierarchy_arr = live_arr
        # The next renewal by services.next_renewal_dates' rule: a contract already renewed (its successor
        # booked, possibly starting later) no longer counts; its successor's end does.
        renewable = [c for c, lines in contracts if lines and c.status != "cancelled" and c.end_date >= today]
        account.next_renewal_date = min(
            (c.end_date for c in renewable if not any(is_successor(s, c) for s in renewable)), default=None
        )
        age = (today - since).days
        if account.churned_at:
            stage = "churned"
        elif age < 90:
            stage = "onboarding"
        elif live_end and (live_end - today).days <= org.renewal_lead_days:
            stage = "renewal"
        elif age < 365:
            stage = "adoption"
        else:
            stage = "mature"
        account.lifecycle_stage = stage
        account.referenceable = stage == "mature" and rng.random() < 0.2
        # The terms' latent risk (accounts.demo_risk): the renewals' outcomes were drawn from it, the touches,
        # contacts and health signals of each term's last months follow it.
        terms = [c for c, _ in contracts if c.status != "cancelled"]
        profiles = {c.number: signal_profiles(self.seed, c.number, self._risk(account, c)) for c in terms}
        windows = [(c.end_date - timedelta(days=AS_OF_LEAD), c) for c in terms if c.end_date < today]
        windows = [(as_of, c) for as_of, c in windows if as_of > since]
        live = [c for c in terms if c.start_date <= today <= c.end_date] if not account.churned_at else []
        live_profiles = profiles[live[-1].number] if live else None
        tags = []
        if tier == "enterprise":
            tags.append("strategic")
        roll = rng.random()  # the CSM flags most of the riskiest live terms (and a few others) "at-risk"
        if live and (roll < 0.02 or (roll < 0.6 and self._risk(account, live[-1]) > 1.3)):
            tags.append("at-risk")
        if rng.random() < 0.05:
            tags.append("beta")
        account.tags = tags
        contacts = self._contacts(rng, account, tier, index)
        self._departures(account, index, contacts, windows, profiles)
        floor = max((as_of for as_of, _ in windows), default=None)
        floor = floor + timedelta(days=1) if floor else None
        activities = self._activities(rng, account, contacts, live_profiles, floor)
        activities += self._past_touches(account, windows, profiles)
        plan = None
        if not account.churned_at and (touch == "high" or (touch == "low" and rng.random() < 0.3)):
            plan = self._plan(rng, account)
        return _Bundle(account, None, contacts, contracts, activities, plan, history)

    def _contacts(self, rng, account, tier, index) -> list[Contact]:
        count = {"enterprise": rng.randint(6, 10), "mid": rng.randint(3, 6), "smb": rng.randint(1, 3)}[tier]
        roles_by_slot = [["champion"], ["executive_sponsor"], ["economic_buyer"], ["admin", "power_user"]]
        contacts = []
        for k in range(count):
            roles = roles_by_slot[k] if k < len(roles_by_slot) else [rng.choice(["power_user", "end_user"])]
            if count == 1:
                roles = ["champion", "economic_buyer"]
            first, last = rng.choice(FIRST), rng.choice(LAST)
            title, seniority = TITLES[roles[0]]
            departed = rng.random() < 0.07 or bool(account.churned_at and rng.random() < 0.3)
            contact = Contact(
                organization_id=self.org.pk,
                account=account,
                external_id=f"{PREFIX}C{index:06d}-{k + 1}",
                name=f"{first} {last}",
                email=_mailbox(first, last) + f"@{account.domain}",
                title=title,
                roles=roles,
                seniority=seniority,
                is_active=not departed,
                started_on=account.customer_since,  # known since the account became a customer (point in time)
                departed_at=self.today - timedelta(days=rng.randint(3, 400)) if departed else None,
                trained=rng.random() < 0.4,
                unsubscribed=rng.random() < 0.03,
            )
            if not departed:
                contact.last_engaged_at = datetime.combine(
                    self.today - timedelta(days=rng.randint(0, 60)), time(rng.randint(8, 17)), tzinfo=UTC
                )
            contacts.append(contact)
        return contacts

    def _risk(self, account: Account, contract: Contract) -> float:
        return period_risk(self.seed, account.external_id, contract.number)

    def _departures(self, account, index, contacts, windows, profiles) -> None:
        """Key contacts who left in the three months before a past term's as-of day, by the term's
        relationship profile; a successor in the same role joins (not after the account's final term)."""
        final = max((c.end_date for _, c in windows), default=None) if account.churned_at else None
        for as_of, contract in windows:
            rng = random.Random(f"{self.seed}:contacts:{contract.number}")
            if rng.random() >= DEPARTURE_ODDS[profiles[contract.number]["relationship"]]:
                continue
            key = [c for c in contacts if c.is_active and set(c.roles) & KEY_ROLES]
            if not key:
                continue
            leaver = key[0] if rng.random() < 0.6 else rng.choice(key)
            leaver.is_active, leaver.departed_at, leaver.last_engaged_at = (
                False,
                as_of - timedelta(rng.randint(1, 80)),
                None,
            )
            if contract.end_date == final:
                continue
            first, last = rng.choice(FIRST), rng.choice(LAST)
            successor = copy.copy(leaver)
            successor.__dict__.update(
                external_id=f"{PREFIX}C{index:06d}-{len(contacts) + 1}", name=f"{first} {last}",
                email=_mailbox(first, last) + f"@{account.domain}", is_active=True, departed_at=None,
                started_on=leaver.departed_at,  # joins as the leaver goes: not present before (point in time)
                last_engaged_at=datetime.combine(
                    self.today - timedelta(days=rng.randint(0, 60)), time(rng.randint(8, 17)), tzinfo=UTC
                ),
            )  # fmt: skip
            successor._state = copy.copy(leaver._state)
            contacts.append(successor)

    def _past_touches(self, account, windows, profiles) -> list[tuple[Activity, list[Contact]]]:
        """Customer touches in the five months before each past term's as-of day: the pace and the odds of a
        quiet spell before the as-of day follow the term's engagement profile."""
        cadence = {"high": 14, "low": 35, "tech": 75}[account.touch_model]
        out = []
        for as_of, contract in windows:
            rng = random.Random(f"{self.seed}:touches:{contract.number}")
            profile = profiles[contract.number]["engagement"]
            pace = cadence * TOUCH_PACE[profile]
            first = max(account.customer_since, as_of - timedelta(days=150))
            cutoff = as_of
            if rng.random() < QUIET_ODDS[profile]:
                cutoff = as_of - timedelta(days=int(cadence * rng.uniform(1.1, 2.5)))
            day = first + timedelta(days=rng.randint(0, int(pace)))
            while day <= cutoff:
                kind = _weighted(rng, [("call", 4), ("meeting", 2), ("email", 4)])
                summary = rng.choice(TOUCH_SUMMARIES[kind]).format(team=rng.choice(TEAMS_AT_CUSTOMER))
                sentiment = _weighted(
                    rng, [("positive", 5), ("neutral", 4), ("negative", 1 + 2 * (profile != "healthy"))]
                )
                at = datetime.combine(day, time(rng.randint(8, 17), rng.choice((0, 15, 30, 45))), tzinfo=UTC)
                activity = Activity(
                    organization_id=self.org.pk, account=account, type=kind, occurred_at=at,
                    author_id=account.owner_id, summary=summary, sentiment=sentiment,
                )  # fmt: skip
                out.append((activity, []))
                day += timedelta(days=max(1, int(rng.gauss(pace, pace / 3))))
        return out

    def _activities(
        self, rng, account, contacts, live_profiles=None, floor=None
    ) -> list[tuple[Activity, list[Contact]]]:
        """The touches and notes of the last six months (after the last past term's window)."""
        today = self.today
        first = max(account.customer_since, today - timedelta(days=180))
        if floor and floor > first:
            first = floor
        last = account.churned_at or today
        if first >= last:
            return []
        cadence = {"high": 14, "low": 35, "tech": 75}[account.touch_model]
        kinds = {
            "high": [("call", 4), ("meeting", 3), ("email", 3), ("note", 2), ("training", 1), ("onsite", 0.3)],
            "low": [("call", 3), ("email", 4), ("meeting", 1), ("note", 1), ("training", 0.5)],
            "tech": [("email", 5), ("note", 1)],
        }[account.touch_model]
        active = [c for c in contacts if c.is_active]
        out, day, n = [], first + timedelta(days=rng.randint(0, cadence)), 0
        while day < last:
            kind = _weighted(rng, kinds)
            if account.touch_model == "high" and n % 6 == 5:
                kind = "qbr"
            summary = rng.choice(TOUCH_SUMMARIES[kind]).format(team=rng.choice(TEAMS_AT_CUSTOMER))
            sentiment = "" if kind == "note" else _weighted(rng, [("positive", 5), ("neutral", 4), ("negative", 1)])
            activity = Activity(
                organization_id=self.org.pk,
                account=account,
                type=kind,
                occurred_at=datetime.combine(day, time(rng.randint(8, 17), rng.choice((0, 15, 30, 45))), tzinfo=UTC),
                author_id=account.owner_id,
                summary=summary,
                sentiment=sentiment,
            )
            who = rng.sample(active, min(len(active), 2)) if kind in ("meeting", "qbr") and active else []
            out.append((activity, who))
            day += timedelta(days=max(1, int(rng.gauss(cadence, cadence / 3))))
            n += 1
        # A quarter of the live high-touch accounts went quiet: nobody has touched them for 46–75 days (what
        # the "no touch in 45 days" playbook is for). Its own stream: the account's other draws stay the same.
        quiet = random.Random(f"{self.seed}:quiet:{account.external_id}")
        odds = QUIET_ODDS[live_profiles["engagement"]] if live_profiles else 0.25
        if account.touch_model == "high" and not account.churned_at and quiet.random() < odds:
            cutoff = today - timedelta(days=quiet.randint(46, 75))
            out = [(activity, who) for activity, who in out if activity.occurred_at.date() < cutoff]
        return out

    def _plan(self, rng, account) -> tuple[SuccessPlan, list[Objective]]:
        today = self.today
        plan = SuccessPlan(
            organization_id=self.org.pk,
            account=account,
            title=f"{account.name} success plan",
            last_reviewed_at=today - timedelta(days=rng.randint(10, 80)),
            next_review_at=today + timedelta(days=rng.randint(10, 90)),
        )
        objectives = []
        for title, measure, baseline, target in rng.sample(OBJECTIVES, rng.randint(2, 4)):
            status = _weighted(
                rng, [("not_started", 1), ("on_track", 4), ("at_risk", 1.5), ("achieved", 1.5), ("missed", 0.5)]
            )
            fixed = {"not_started": 0, "achieved": 100, "missed": rng.randint(20, 70)}
            progress = fixed.get(status, rng.randint(10, 90))
            objectives.append(
                Objective(
                    organization_id=self.org.pk,
                    plan=plan,
                    title=title,
                    customer_measure=measure,
                    baseline=baseline,
                    target=target,
                    due_date=today + timedelta(days=rng.randint(-30, 180)),
                    status=status,
                    progress=progress,
                )
            )
        return plan, objectives

    def bundles(self, count: int):
        """Accounts in order; now and then a parent followed by its subsidiaries (a family stays whole)."""
        index = 0
        while index < count:
            bundle = self.account(index)
            family = [bundle]
            rng = random.Random(f"{self.seed}:family:{index}")
            index += 1
            if bundle.account.touch_model == "high" and not bundle.account.churned_at and rng.random() < 0.3:
                for _ in range(min(rng.randint(1, 3), count - index)):
                    child = self.account(index, parent=bundle)
                    child.parent_index = 0
                    family.append(child)
                    bundle.account.hierarchy_arr += child.account.arr
                    index += 1
            yield family


def _wipe(org: Organization) -> None:
    """Delete the organization's demo data: raw deletes for our own tables, then the ORM for the rest."""
    # Renewals point at contracts: they go first; then health (millions of usage rows on a big demo: one
    # statement per table, not per account batch). The registered order says so.
    for wipe in _hooks("wipe"):
        wipe(org)
    for model in (ActivityContact, Activity, Objective, SuccessPlan, ContractLine, Contract, Contact):
        model.all_orgs.filter(organization_id=org.pk)._raw_delete(model.all_orgs.db)
    accounts = Account.all_orgs.filter(organization_id=org.pk)
    accounts.update(parent=None)
    accounts.delete()  # the collector handles rows of other apps that reference accounts
    Product.all_orgs.filter(organization_id=org.pk).delete()


def _analyze() -> None:
    """Refresh the planner's statistics after a bulk load (Postgres), as autovacuum would, only later.

    Without it, the first queries after seeding plan with empty-table estimates.
    """
    connection = connections[Account.all_orgs.db]
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return
    with connection.cursor() as cursor:
        # The link table is left to autovacuum, as before (small, and never filtered on its own).
        for model in (*(m for m in LOADED if m is not ActivityContact), *_bulk_models()):
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")


def _mailbox(first: str, last: str) -> str:
    """``first.last`` in ASCII (``Müller`` → ``muller``): a non-ASCII local part fails Django's email
    validation, so the contact could not be saved back through the API or re-imported from a CSV."""
    name = unicodedata.normalize("NFKD", f"{first}.{last}".lower()).encode("ascii", "ignore").decode()
    return name.replace("'", "").replace(" ", "")


def _people(org: Organization, domain: str) -> dict[str, list[int]]:
    """Demo members and teams; returns the owner ids per touch model."""
    users: dict[str, Any] = {}
    for key, first, last, role, _, _ in PEOPLE:
        membership = ensure_membership(organization=org, email=f"{key}@{domain}", role=role, name=f"{first} {last}")
        users[key] = membership.user
    # One hash for every demo user: password hashing is deliberately slow, and nine of them cost seconds.
    get_user_model().objects.filter(pk__in=[u.pk for u in users.values()]).update(password=make_password(DEMO_PASSWORD))
    leader = users["morgan.reyes"]
    teams = {}
    for name in TEAMS:
        team, _ = Team.all_orgs.update_or_create(organization=org, name=name, defaults={"manager": leader})
        teams[name] = team
    owners: dict[str, list[int]] = {"high": [], "low": [], "tech": []}
    for key, _, _, _, team, touches in PEOPLE:
        Membership.all_orgs.filter(organization=org, user=users[key]).update(team=teams[team] if team else None)
        for touch in touches:
            owners[touch].append(users[key].pk)
    return owners


def seed_demo(
    *,
    slug: str = "demo",
    accounts: int = 300,
    seed: int = 42,
    today: date | None = None,
    force: bool = False,
    log: Callable[[str], None] | None = None,
) -> DemoSummary:
    """Create (or replace) the demo organization ``slug`` with ``accounts`` accounts. See the module doc."""
    started = clock.perf_counter()
    today = today or timezone.localdate()
    say = log or (lambda message: None)
    org, _ = create_organization(slug=slug, name="Demo Co")
    foreign = Account.objects.for_org(org).exclude(external_id__startswith=PREFIX).exists()
    if foreign and not force:
        raise DemoRefused(
            f"organization {slug} holds accounts that seed_demo did not make; refusing to replace them "
            "(use another --org, or --force to delete them)"
        )
    counts: dict[str, int] = {}
    with transaction.atomic():
        _wipe(org)
        say("  previous demo data deleted…")
        domain = f"{slug}.retain.local"
        owners = _people(org, domain)
        products = {}
        for sku, name, line, _, _ in CATALOG:
            products[sku] = Product(organization_id=org.pk, sku=sku, name=name, product_line=line)
        Product.all_orgs.bulk_create(list(products.values()))
        generator = _Generator(org, seed, today, owners, products)
        # No per-row foreign-key triggers while loading (Postgres superuser); references checked set-based.
        with bulk_load(connections[Account.all_orgs.db], org.pk, [*LOADED, *_bulk_models()]):
            chunk: list[list[_Bundle]] = []
            size = 0
            for family in generator.bundles(accounts):
                chunk.append(family)
                size += len(family)
                if size >= CHUNK:
                    _insert(chunk, counts)
                    say(f"  {counts['accounts']} accounts…")
                    chunk, size = [], 0
            if chunk:
                _insert(chunk, counts)
        changed = refresh_current_arr(org, today=today)
        # The other apps' rows that need the accounts in place: renewal targets, then health signals and
        # score history (the registered order).
        for seed_part in _hooks("seed"):
            counts.update(seed_part(org, seed=seed, today=today, log=say))
        say("  committing (deferred foreign-key checks)…")
    say("  analyzing…")
    _analyze()
    return DemoSummary(
        organization=org,
        counts=counts,
        seconds=clock.perf_counter() - started,
        arr_refreshed=changed,
        admin_email=f"admin@{domain}",
    )


def _insert(chunk: list[list[_Bundle]], counts: dict[str, int]) -> None:
    """Insert a batch of families, parents before children, then everything hanging off them."""
    bundles = [bundle for family in chunk for bundle in family]
    accounts = [b.account for b in bundles]
    children = [(family[0].account, child.account) for family in chunk for child in family[1:]]
    if _allocate_ids(Account, accounts):  # Postgres: ids known up front, parents set before the write
        for parent, child in children:
            child.parent_id = parent.pk
        bulk_write(Account, accounts)
    else:
        bulk_write(Account, accounts)
        for parent, child in children:
            child.parent_id = parent.pk
        Account.all_orgs.bulk_update([child for _, child in children], ["parent"])
    contacts = [c for b in bundles for c in b.contacts]
    bulk_write(Contact, contacts)
    contracts = [c for b in bundles for c, _ in b.contracts]
    bulk_write(Contract, contracts)
    lines = [line for b in bundles for _, ls in b.contracts for line in ls]
    bulk_write(ContractLine, lines)
    # What hangs off the contracts in the other apps (renewals and their line changes).
    added: dict[str, int] = {}
    for insert in _hooks("insert"):
        added.update(insert(bundles, bulk_write))
    activities = [a for b in bundles for a, _ in b.activities]
    bulk_write(Activity, activities)
    links = [
        ActivityContact(organization_id=a.organization_id, activity=a, contact=c)
        for b in bundles
        for a, who in b.activities
        for c in who
    ]
    bulk_write(ActivityContact, links)
    plans = [b.plan[0] for b in bundles if b.plan]
    bulk_write(SuccessPlan, plans)
    objectives = [o for b in bundles if b.plan for o in b.plan[1]]
    bulk_write(Objective, objectives)
    for key, rows in (
        ("accounts", accounts),
        ("contacts", contacts),
        ("contracts", contracts),
        ("contract_lines", lines),
        *((key, n) for key, n in added.items()),
        ("activities", activities),
        ("success_plans", plans),
        ("objectives", objectives),
    ):
        counts[key] = counts.get(key, 0) + (rows if isinstance(rows, int) else len(rows))


def _allocate_ids(model: Any, objects: list[Any]) -> bool:
    """On Postgres, draw ids from the table's sequence in one query (so COPY can write them)."""
    connection = connections[model.all_orgs.db]
    if connection.vendor != "postgresql" or not objects:
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [model._meta.db_table, len(objects)],
        )
        for obj, (pk,) in zip(objects, cursor.fetchall(), strict=True):
            obj.pk = pk
    return True


def _bulk_models() -> list[Any]:
    """The other apps' tables written with the accounts (renewals, renewal line changes)."""
    return [model for hook in _hooks("bulk_models") for model in hook()]


def bulk_write(model: Any, objects: list[Any]) -> None:
    """Insert ``objects``: Postgres ``COPY`` (ids drawn first), else ``bulk_create`` in batches.

    The writer that demo modules' ``insert`` hooks receive (foreign keys may point at objects of the
    same batch: their ids are copied here)."""
    # Foreign keys were set as Python references before the targets had ids; copy the ids now.
    relations = [f for f in model._meta.concrete_fields if f.is_relation and f.name != "organization"]
    for obj in objects:
        cache = obj._state.fields_cache
        for f in relations:
            if f.name in cache:
                obj.__dict__[f.attname] = cache[f.name].pk  # no descriptor: the cached object stays
    connection = connections[model.all_orgs.db]
    if connection.vendor != "postgresql" or not objects:
        model.all_orgs.bulk_create(objects, batch_size=CHUNK)
        return
    # COPY skips Django's per-value SQL compilation: the seeder's hot path on big demos.
    if objects[0].pk is None:
        _allocate_ids(model, objects)
    fields = [f for f in model._meta.concrete_fields if not f.generated]  # the database computes those
    now = copy_value(timezone.now())
    stamps = [i for i, f in enumerate(fields) if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)]
    values = attrgetter(*(f.attname for f in fields))
    lines = []
    for obj in objects:
        row = list(map(copy_value, values(obj)))
        for i in stamps:
            row[i] = now
        lines.append("\t".join(row) + "\n")
    copy_lines(connection, model._meta.db_table, [f.column for f in fields], lines)
