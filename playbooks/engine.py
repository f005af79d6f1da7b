"""The playbook engine (spec §5, docs/playbooks.md): matching, firing exactly once, noise control, clearing,
preview.

* **Time-based triggers**: :func:`evaluate_organization` (the beat job, per organization) runs every active
  playbook set-based: :func:`candidates` is one query per playbook (conditions and segment compiled to SQL,
  the trigger's condition as SQL, minus the occurrences already recorded, with the cooldown as a column).
  Python then only *acts* on the accounts that query returned.
* **Event-driven triggers**: :func:`on_event` is a consumer of the domain-event stream (registered in
  ``PlaybooksConfig.ready``): it runs within seconds of the event, in the dispatch task, once per event
  (the receipt), and the occurrence key is derived from the event, so even a replay fires once.
* **Exactly once**: :func:`fire` claims the occurrence by inserting its :class:`PlaybookFiring` (unique per
  playbook, account and occurrence key) before doing anything; a second claimant gets the unique violation
  and does nothing.
* **Noise control**: cooldown per (playbook, account) and a snoozed CTA both record a ``suppressed``
  firing with the reason; open CTAs are updated, not duplicated (``playbooks.ctas``).
* **Clearing**: for condition-based triggers, :func:`clear_conditions` marks the firings whose condition no
  longer holds as cleared and auto-closes their CTAs, with the reason.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, OperationalError, transaction
from django.db.models import CharField as _CharField
from django.db.models import Exists, F, Max, OuterRef, QuerySet, Sum, Value
from django.utils import timezone

from accounts.models import Account, Segment
from accounts.segments import compile_or_none

from . import ctas
from .actions import execute, plan
from .choices import AssigneeRule
from .models_engine import AccountStageMark, FiringOutcome, Playbook, PlaybookFiring, TriggerKind
from .triggers import TRIGGERS, nps_category, params_of

__all__ = [
    "CONSUMER_NAME",
    "candidates",
    "clear_conditions",
    "evaluate_organization",
    "evaluate_playbook",
    "fire",
    "holding_now",
    "on_event",
    "preview",
    "scope",
    "sync_stage_marks",
    "would_fire",
]

logger = logging.getLogger(__name__)

#: The engine's name in event receipts (docs/events.md): keep it stable.
CONSUMER_NAME = "playbooks"
#: Accounts a preview lists by name.
PREVIEW_SAMPLE = 20
#: Occurrences fired in one set-based transaction.
BATCH = 2000
#: Condition-based triggers whose condition is one grouped pass over the organization's usage whatever the
#: accounts asked about: the evaluation computes it once (:func:`holding_now`) for clearing and matching,
#: instead of once each — on a large book that pass is most of an evaluation's time.
ORG_WIDE = (TriggerKind.USAGE_DROP, TriggerKind.SEATS_OVER)

CLEARED = {
    TriggerKind.HEALTH_COLOR: "Health is no longer {colors}.",
    TriggerKind.HEALTH_DROP: "Health recovered: no longer {points} points below {days} days ago.",
    TriggerKind.USAGE_DROP: "Usage recovered: no longer down {percent} % on the previous 30 days.",
    TriggerKind.SEATS_OVER: "Active users are within the licensed seats again.",
    TriggerKind.NO_TOUCH: "The customer was touched (an activity was logged).",
}


# --- Matching ---------------------------------------------------------------------------------------------


def scope(playbook: Playbook) -> QuerySet | None:
    """The accounts the playbook may act on now: the organization's live (not churned) accounts that meet its
    conditions and are in its segment, as one queryset; ``None`` when the stored rules are invalid (the
    playbook then matches nothing, and its problems show in the API)."""
    accounts = Account.objects.for_org(playbook.organization_id).filter(churned_at__isnull=True)
    condition = compile_or_none(playbook.conditions or {})
    if condition is None:
        return None
    accounts = accounts.filter(condition)
    if playbook.segment_id is not None:
        rules = (
            Segment.objects.for_org(playbook.organization_id)
            .filter(pk=playbook.segment_id)
            .values_list("rules", flat=True)
        )
        segment_q = compile_or_none(rules.first() or {})
        if segment_q is None:
            return None
        accounts = accounts.filter(segment_q)
    return accounts


def _uncleared(playbook: Playbook) -> QuerySet:
    return PlaybookFiring.all_orgs.filter(
        organization_id=playbook.organization_id, playbook_id=playbook.pk, cleared_at__isnull=True
    ).exclude(condition_key="")


def _cooldown_since(playbook: Playbook, now: dt.datetime) -> dt.datetime | None:
    return now - dt.timedelta(days=playbook.cooldown_days) if playbook.cooldown_days else None


def candidates(
    playbook: Playbook,
    *,
    now: dt.datetime | None = None,
    account_ids: list[int] | None = None,
    held: set[int] | None = None,
) -> QuerySet | None:
    """The occurrences a time-based playbook would fire now: rows of ``account_id``, ``occurrence_key`` and
    ``in_cooldown``, as ONE query (``None`` for event-driven playbooks and invalid rules).

    = the accounts in :func:`scope` where the trigger occurs (its SQL), minus occurrences already recorded,
    minus (condition-based triggers) accounts whose previous firing has not cleared yet. ``account_ids``
    narrows it to those accounts (the benchmark's per-account baseline); ``held``: the accounts where the
    condition holds, when the caller already knows them (:func:`holding_now`)."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    spec = TRIGGERS[playbook.trigger]
    accounts = scope(playbook)
    if spec.event_driven or accounts is None:
        return None
    if account_ids is not None:
        accounts = accounts.filter(pk__in=account_ids)
    params = params_of(playbook.trigger, playbook.trigger_params)
    if spec.keyed is not None:
        rows = spec.keyed(playbook.organization_id, accounts.values("pk"), params, today, now)
    else:
        episode = _uncleared(playbook).filter(account_id=OuterRef("pk"))
        holds = (
            accounts.filter(pk__in=sorted(held))
            if held is not None
            else spec.holding(playbook.organization_id, accounts, params, today, now)
        )
        rows = (
            holds.filter(~Exists(episode))
            .annotate(account_id=F("pk"), occurrence_key=Value(f"since:{today.isoformat()}", _CharField()))
            .values("account_id", "occurrence_key")
        )
    recorded = PlaybookFiring.all_orgs.filter(
        organization_id=playbook.organization_id,
        playbook_id=playbook.pk,
        account_id=OuterRef("account_id"),
        occurrence_key=OuterRef("occurrence_key"),
    )
    rows = rows.filter(~Exists(recorded))
    since = _cooldown_since(playbook, now)
    if since is not None:
        fired = PlaybookFiring.all_orgs.filter(
            organization_id=playbook.organization_id,
            playbook_id=playbook.pk,
            account_id=OuterRef("account_id"),
            outcome=FiringOutcome.FIRED,
            fired_at__gt=since,
        )
        return rows.annotate(in_cooldown=Exists(fired)).values("account_id", "occurrence_key", "in_cooldown")
    return rows.annotate(in_cooldown=Value(False)).values("account_id", "occurrence_key", "in_cooldown")


# --- Firing -------------------------------------------------------------------------------------------------


def _last_fired(playbook: Playbook, account_id: int, now: dt.datetime, *, besides: Any = None) -> dt.datetime | None:
    """When the playbook last fired for the account within its cooldown (``besides``: a firing to ignore)."""
    since = _cooldown_since(playbook, now)
    if since is None:
        return None
    return (
        PlaybookFiring.objects.for_org(playbook.organization_id)
        .filter(playbook=playbook, account_id=account_id, outcome=FiringOutcome.FIRED, fired_at__gt=since)
        .exclude(pk=besides)
        .order_by("-fired_at")
        .values_list("fired_at", flat=True)
        .first()
    )


def fire(
    playbook: Playbook,
    account: Account,
    occurrence_key: str,
    *,
    reason: str,
    now: dt.datetime | None = None,
    event_id: Any = None,
    in_cooldown: bool | None = None,
) -> PlaybookFiring | None:
    """Fire one occurrence of ``playbook`` for ``account``: claim it, then run the actions, and record what
    happened. Returns the firing, or ``None`` when the occurrence was already recorded (fired, suppressed or
    skipped before): that is the exactly-once guarantee.

    Suppressed (recorded, nothing done) while the account is in the playbook's cooldown, or when the CTA it
    opens is open and snoozed (nothing after that action runs). An action that fails rolls the firing back
    and records it as ``skipped`` with the error, so a broken action is visible rather than retried forever.
    """
    now = now or timezone.now()
    spec = TRIGGERS[playbook.trigger]
    firing = PlaybookFiring(
        organization_id=playbook.organization_id,
        playbook=playbook,
        account=account,
        occurrence_key=occurrence_key[:120],
        fired_at=now,
        outcome=FiringOutcome.FIRED,
        reason=reason,
        event_id=event_id,
        condition_key=spec.condition_key(playbook.pk),
    )
    try:
        with transaction.atomic():
            firing.save(force_insert=True)  # the claim: a second claimant fails here
            _act(playbook, account, firing, now=now, in_cooldown=in_cooldown)
            firing.save(update_fields=["outcome", "reason", "cta", "results"])
        return firing
    except IntegrityError:
        if PlaybookFiring.all_orgs.filter(
            organization_id=playbook.organization_id,
            playbook=playbook,
            account=account,
            occurrence_key=firing.occurrence_key,
        ).exists():
            return None
        raise
    except Exception as exc:
        logger.exception("playbook %s on account %s failed", playbook.pk, account.pk)
        firing.pk, firing.cta, firing.results = None, None, []
        firing.outcome, firing.reason = FiringOutcome.SKIPPED, f"An action failed: {exc}"[:2000]
        try:
            with transaction.atomic():
                firing.save(force_insert=True)
        except IntegrityError:
            return None
        return firing


def _act(playbook: Playbook, account: Account, firing: PlaybookFiring, *, now: dt.datetime, in_cooldown: Any) -> None:
    last = _last_fired(playbook, account.pk, now, besides=firing.pk) if in_cooldown is not False else None
    if in_cooldown or (in_cooldown is None and last is not None):
        firing.outcome = FiringOutcome.SUPPRESSED
        firing.reason = (
            f"Cooldown: this playbook fired for this account on {timezone.localdate(last).isoformat()} "
            f"(cooldown {playbook.cooldown_days} days)."
            if last
            else f"Cooldown of {playbook.cooldown_days} days."
        )
        return
    for action in playbook.actions or []:
        result = execute(playbook, account, action, firing=firing)
        firing.results.append(result)
        if result["kind"] == "open_cta" and result["status"] == ctas.SUPPRESSED:
            cta = firing.cta
            firing.outcome = FiringOutcome.SUPPRESSED
            firing.reason = (
                f"The open CTA “{cta.title}” is snoozed until {cta.snoozed_until.isoformat()}: nothing else was done."
            )
            return


def evaluate_playbook(playbook: Playbook, *, now: dt.datetime | None = None) -> dict[str, int]:
    """Clear what has cleared, then fire every occurrence :func:`candidates` finds (time-based playbooks)."""
    now = now or timezone.now()
    counts = {"fired": 0, "suppressed": 0, "skipped": 0, "cleared": 0}
    spec = TRIGGERS[playbook.trigger]
    held = holding_now(playbook, now=now) if playbook.trigger in ORG_WIDE else None
    if spec.clears and spec.holding is not None:
        counts["cleared"] = clear_conditions(playbook, now=now, held=held)
    rows = candidates(playbook, now=now, held=held)
    if rows is None:
        return counts
    found = list(rows)
    if not found:
        return counts
    accounts = Account.objects.for_org(playbook.organization_id).in_bulk([r["account_id"] for r in found])
    found = [r for r in found if r["account_id"] in accounts]
    bulk = _set_based(playbook)
    # Rounds in which each account occurs once (two invoices of one account: the second updates the CTA the
    # first opened, as one after the other would).
    rounds: list[list[dict[str, Any]]] = []
    seen: dict[int, int] = {}
    for row in found:
        n = seen[row["account_id"]] = seen.get(row["account_id"], -1) + 1
        if n == len(rounds):
            rounds.append([])
        rounds[n].append(row)
    for batch in rounds:
        for start in range(0, len(batch), BATCH):
            chunk = batch[start : start + BATCH]
            done = _fire_many(playbook, chunk, accounts, now=now) if bulk else None
            if done is None:
                done = _fire_each(playbook, chunk, accounts, now=now)
            for outcome, n in done.items():
                counts[outcome] += n
    return counts


def _reason(playbook: Playbook, occurrence_key: str) -> str:
    return f"{TriggerKind(playbook.trigger).label} ({occurrence_key})."


def _fire_each(playbook: Playbook, rows: list[dict[str, Any]], accounts: dict[int, Account], *, now: Any) -> Counter:
    """The one-by-one path: :func:`fire` per occurrence (its own claim and transaction)."""
    counts: Counter = Counter()
    for row in rows:
        key = row["occurrence_key"]
        account = accounts[row["account_id"]]
        firing = fire(playbook, account, key, reason=_reason(playbook, key), now=now, in_cooldown=row["in_cooldown"])
        if firing is not None:
            counts[firing.outcome] += 1
    return counts


def _set_based(playbook: Playbook) -> bool:
    """Whether the playbook's occurrences can be fired set-based (:func:`_fire_many`): every action opens a
    CTA assigned by the ``owner`` or ``manager`` rule (round-robin turns a cursor per CTA; other actions run
    one account at a time through :func:`fire`)."""
    actions = playbook.actions or []
    for action in actions:
        if action.get("kind") != "open_cta" or "team" in action:
            return False
        rules = {action.get("assignee", AssigneeRule.OWNER), *(t.get("assignee") for t in action.get("tasks", []))}
        if not rules - {None} <= {AssigneeRule.OWNER, AssigneeRule.MANAGER}:
            return False
    return bool(actions)


def _fire_many(
    playbook: Playbook, rows: list[dict[str, Any]], accounts: dict[int, Account], *, now: dt.datetime
) -> Counter | None:
    """Fire many occurrences of a time-based playbook at once, each account at most once, with the outcome
    :func:`fire` would give each (cooldown suppression, snoozed CTA suppression, CTA opened or updated) and
    the same rows written, in a fixed number of queries: the cooldown's last firings in one query, each
    ``open_cta`` action through :func:`playbooks.ctas.open_or_update_many`, the firings in one bulk insert —
    all in one transaction. Returns the counts, or ``None`` when it could not (a concurrent claim or CTA, a
    failing action): then nothing of it was written and the caller fires them one by one, which records
    each outcome (a lost claim, a skipped firing with its error) as :func:`fire` does."""
    org_id = playbook.organization_id
    spec = TRIGGERS[playbook.trigger]
    condition_key = spec.condition_key(playbook.pk)
    cooling = [r["account_id"] for r in rows if r["in_cooldown"]]
    last: dict[int, dt.datetime] = {}
    if cooling:
        last = dict(
            PlaybookFiring.objects.for_org(org_id)
            .filter(playbook=playbook, account_id__in=cooling, outcome=FiringOutcome.FIRED,
                    fired_at__gt=_cooldown_since(playbook, now))
            .values("account_id").annotate(last=Max("fired_at")).values_list("account_id", "last")
        )  # fmt: skip
    firings: dict[int, PlaybookFiring] = {}
    for row in rows:
        key, account_id = row["occurrence_key"], row["account_id"]
        firing = PlaybookFiring(
            organization_id=org_id, playbook=playbook, account_id=account_id, occurrence_key=key[:120], fired_at=now,
            outcome=FiringOutcome.FIRED, reason=_reason(playbook, key), condition_key=condition_key, results=[],
        )  # fmt: skip
        if row["in_cooldown"]:
            at = last.get(account_id)
            firing.outcome = FiringOutcome.SUPPRESSED
            firing.reason = (
                f"Cooldown: this playbook fired for this account on {timezone.localdate(at).isoformat()} "
                f"(cooldown {playbook.cooldown_days} days)."
                if at
                else f"Cooldown of {playbook.cooldown_days} days."
            )
        firings[account_id] = firing
    try:
        with transaction.atomic():
            acting = [accounts[pk] for pk, f in firings.items() if f.outcome == FiringOutcome.FIRED]
            for action in playbook.actions:
                if not acting:
                    break
                try:
                    opened = ctas.open_or_update_many(
                        organization_id=org_id, accounts=acting, type=action["type"], reason=action["reason"],
                        title=action.get("title", ""), description=action.get("description", ""),
                        assignee_rule=action.get("assignee", AssigneeRule.OWNER), priority=action.get("priority"),
                        due_in_days=action.get("due_in_days"),
                        tasks=[ctas.TaskTemplate(t["title"], t.get("due_in_days"), t.get("assignee"))
                               for t in action.get("tasks", [])],
                        source="playbook", source_ref=playbook.source_ref, condition_key=condition_key,
                    )  # fmt: skip
                except ctas.InactiveCta as inactive:  # checked before anything is written
                    for account in acting:
                        firings[account.pk].results.append(
                            {"kind": "open_cta", "status": "skipped", "detail": inactive.messages[0]}
                        )
                    continue
                still = []
                for account in acting:
                    cta, status = opened[account.pk]
                    firing = firings[account.pk]
                    firing.cta = cta
                    firing.results.append({"kind": "open_cta", "status": status, "cta": cta.pk})
                    if status == ctas.SUPPRESSED:
                        firing.outcome = FiringOutcome.SUPPRESSED
                        firing.reason = (
                            f"The open CTA “{cta.title}” is snoozed until {cta.snoozed_until.isoformat()}: "
                            "nothing else was done."
                        )
                    else:
                        still.append(account)
                acting = still
            PlaybookFiring.all_orgs.bulk_create(list(firings.values()), batch_size=2000)
    except (IntegrityError, OperationalError) as exc:
        # A concurrent opening (the partial unique index) or a lock/serialization failure: the one-by-one path
        # resolves the race and records what went wrong per occurrence. Any other error is a bug: it propagates.
        logger.warning(
            "playbook %s: set-based firing of %d occurrence(s) fell back to one by one (%s: %s)",
            playbook.pk, len(firings), type(exc).__name__, exc,
        )  # fmt: skip
        return None
    return Counter(f.outcome for f in firings.values())


def holding_now(playbook: Playbook, *, now: dt.datetime | None = None) -> set[int]:
    """The accounts of the organization (any, not only the playbook's scope) where the playbook's condition
    holds now: one query."""
    now = now or timezone.now()
    spec = TRIGGERS[playbook.trigger]
    params = params_of(playbook.trigger, playbook.trigger_params)
    accounts = Account.objects.for_org(playbook.organization_id)
    holds = spec.holding(playbook.organization_id, accounts, params, timezone.localdate(now), now)
    return set(holds.values_list("pk", flat=True))


def clear_conditions(
    playbook: Playbook,
    *,
    now: dt.datetime | None = None,
    account_id: int | None = None,
    held: set[int] | None = None,
) -> int:
    """Mark the playbook's uncleared firings whose condition no longer holds as cleared, and auto-close their
    CTAs with the reason (one query finds them; with ``held``, the accounts where it holds as
    :func:`holding_now` found them, one query reads the uncleared firings). Returns how many firings
    cleared."""
    now = now or timezone.now()
    spec = TRIGGERS[playbook.trigger]
    if not spec.clears or spec.holding is None:
        return 0
    params = params_of(playbook.trigger, playbook.trigger_params)
    org_id = playbook.organization_id
    uncleared = _uncleared(playbook)
    if account_id is not None:
        uncleared = uncleared.filter(account_id=account_id)
    if held is not None:
        rows = uncleared.values_list("pk", "account_id", "condition_key")
        cleared = [(pk, account, key) for pk, account, key in rows if account not in held]
    else:
        # The condition's SQL over the accounts in an episode only, not the whole organization.
        in_episode = Account.objects.for_org(org_id).filter(pk__in=uncleared.values("account_id"))
        holding = spec.holding(org_id, in_episode, params, timezone.localdate(now), now).values("pk")
        stale = uncleared.exclude(account_id__in=holding)
        cleared = list(stale.values_list("pk", "account_id", "condition_key"))
    if not cleared:
        return 0
    reason = CLEARED[playbook.trigger].format(**{**params, "colors": " or ".join(params.get("colors", []))})
    by_key: dict[str, set[int]] = {}
    for _, account, key in cleared:
        by_key.setdefault(key, set()).add(account)
    with transaction.atomic():
        PlaybookFiring.all_orgs.filter(pk__in=[pk for pk, _, _ in cleared]).update(cleared_at=now)
        for key, accounts in by_key.items():
            ctas.auto_close_many(org_id, condition_key=key, reason=reason, account_ids=accounts)
    return len(cleared)


def sync_stage_marks(organization_id: int, *, today: dt.date | None = None) -> None:
    """Keep :class:`AccountStageMark` in step with the accounts' stages, set-based: marks of accounts whose
    stage changed are dropped, accounts without a mark get one since ``today`` (the engine cannot know an
    earlier change: a stage is counted from when it was first seen)."""
    today = today or timezone.localdate()
    # A DELETE of the one table with a correlated EXISTS (one primary-key probe per mark), not
    # ``exclude(stage=F("account__lifecycle_stage"))``: that is a join, which Django writes as
    # ``DELETE … WHERE id IN (SELECT … JOIN …)``, and with the marks' statistics taken while the table was
    # empty (the first evaluation after they were created) Postgres ran it as a nested loop over marks ×
    # marks — 50,000 accounts stalled it for many minutes.
    moved = Account.all_orgs.filter(organization_id=organization_id, pk=OuterRef("account_id")).exclude(
        lifecycle_stage=OuterRef("stage")
    )
    AccountStageMark.objects.for_org(organization_id).filter(Exists(moved)).delete()
    missing = (
        Account.objects.for_org(organization_id)
        .filter(~Exists(AccountStageMark.all_orgs.filter(account_id=OuterRef("pk"))))
        .values_list("pk", "lifecycle_stage")
    )
    AccountStageMark.all_orgs.bulk_create(
        [AccountStageMark(organization_id=organization_id, account_id=pk, stage=s, since=today) for pk, s in missing],
        batch_size=5000,
        ignore_conflicts=True,
    )


def evaluate_organization(organization_id: int, *, now: dt.datetime | None = None) -> dict[str, int]:
    """The beat's work for one organization: every active playbook, time-based ones fired set-based, the
    condition-based ones (event-driven included) cleared. Returns the totals."""
    now = now or timezone.now()
    totals = {"playbooks": 0, "fired": 0, "suppressed": 0, "skipped": 0, "cleared": 0}
    playbooks = list(Playbook.objects.for_org(organization_id).filter(active=True).order_by("pk"))
    if any(p.trigger == TriggerKind.STAGE_UNCHANGED for p in playbooks):
        sync_stage_marks(organization_id, today=timezone.localdate(now))
    for playbook in playbooks:
        counts = evaluate_playbook(playbook, now=now)
        totals["playbooks"] += 1
        for key, value in counts.items():
            totals[key] += value
    return totals


# --- Events --------------------------------------------------------------------------------------------------


def _event_account_id(event: Any) -> int | None:
    payload = event.payload or {}
    if event.name in ("health.color_changed",):
        value = payload.get("id") if "cause" not in payload else payload.get("account")
        value = value if value is not None else payload.get("account")
    elif event.name == "account.created":
        value = payload.get("id")
    else:
        value = payload.get("account")
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _occurrence(playbook: Playbook, params: dict[str, Any], event: Any) -> str | None:
    """The occurrence key of ``event`` for ``playbook``, or ``None`` when the event does not match the
    trigger's parameters (a colour change to green, a detractor for a promoter playbook)."""
    payload = event.payload or {}
    kind = playbook.trigger
    if kind == TriggerKind.HEALTH_COLOR:
        return f"event:{event.pk}" if payload.get("to") in params["colors"] else None
    if kind == TriggerKind.CONTACT_DEPARTED:
        roles = set(payload.get("roles") or [])
        wanted = roles & set(params["roles"]) if params["roles"] else payload.get("key_role")
        return f"contact:{payload.get('id', event.subject_id)}" if wanted else None
    if kind == TriggerKind.SURVEY_RESPONSE:
        category = payload.get("category")
        if category is None and payload.get("score") is not None:
            category = nps_category(payload["score"])
        return f"response:{payload.get('id', event.subject_id)}" if category == params["category"] else None
    if kind in (TriggerKind.SEGMENT_ENTERED, TriggerKind.SEGMENT_LEFT):
        return f"event:{event.pk}" if str(payload.get("segment")) == str(params["segment"]) else None
    if kind == TriggerKind.ACCOUNT_CREATED:
        return "created"
    if kind == TriggerKind.ONBOARDING_STALLED:
        # One stall, one occurrence: stalled_on is set once per stall (value.stalls), so a redelivered event
        # gives the same key, and the same milestone stalling again after a change gives a new one.
        reasons = set(payload.get("reasons") or [])
        milestone, stalled_on = payload.get("milestone", event.subject_id), payload.get("stalled_on")
        return f"milestone:{milestone}:{stalled_on}" if reasons & set(params["reasons"]) and stalled_on else None
    return None


def on_event(event: Any) -> None:
    """The engine's consumer of the domain-event stream: evaluate the event's account against every active
    event-driven playbook listening to the event's name, now (within the dispatch task: seconds after the
    event committed), and clear condition-based firings the event ends (health back to green)."""
    kinds = [kind for kind, spec in TRIGGERS.items() if event.name in spec.events]
    if not kinds:
        return
    account_id = _event_account_id(event)
    if account_id is None:
        return
    org_id = event.organization_id
    account = Account.objects.for_org(org_id).filter(pk=account_id).first()
    if account is None:
        return
    now = timezone.now()
    for playbook in Playbook.objects.for_org(org_id).filter(active=True, trigger__in=kinds).order_by("pk"):
        params = params_of(playbook.trigger, playbook.trigger_params)
        key = _occurrence(playbook, params, event)
        spec = TRIGGERS[playbook.trigger]
        if key is None:
            if spec.clears:
                clear_conditions(playbook, now=now, account_id=account_id)
            continue
        label = TriggerKind(playbook.trigger).label
        in_scope = scope(playbook)
        skip = None
        if in_scope is None or not in_scope.filter(pk=account_id).exists():
            skip = "The account does not meet the playbook's conditions or segment."
        elif spec.clears and _uncleared(playbook).filter(account_id=account_id).exists():
            skip = "Already fired for this condition, which has not cleared since."
        if skip is not None:
            _record_skip(playbook, account, key, skip, event_id=event.pk, now=now)
            continue
        fire(playbook, account, key, reason=f"{label} (event {event.name}).", now=now, event_id=event.pk)


def _record_skip(playbook: Playbook, account: Account, key: str, reason: str, *, event_id: Any, now: Any) -> None:
    try:
        with transaction.atomic():
            PlaybookFiring.all_orgs.create(
                organization_id=playbook.organization_id, playbook=playbook, account=account, occurrence_key=key[:120],
                fired_at=now, outcome=FiringOutcome.SKIPPED, reason=reason, event_id=event_id,
            )  # fmt: skip
    except IntegrityError:
        pass  # that occurrence is already recorded


# --- Preview -------------------------------------------------------------------------------------------------


def would_fire(playbook: Playbook, *, now: dt.datetime | None = None) -> tuple[list[int], set[int]] | None:
    """The ids of the accounts the playbook would fire for now (see :func:`preview`), and those of them in
    its cooldown; ``None`` when its conditions or segment rules are invalid. Writes nothing. The playbook
    may be unsaved (a draft's content on an instance with the playbook's id: its own firings count)."""
    now = now or timezone.now()
    spec = TRIGGERS[playbook.trigger]
    accounts = scope(playbook)
    if accounts is None:
        return None
    if spec.event_driven:
        params = params_of(playbook.trigger, playbook.trigger_params)
        if spec.holding is not None:
            accounts = spec.holding(playbook.organization_id, accounts, params, timezone.localdate(now), now)
        ids = list(accounts.values_list("pk", flat=True))
        cooling = set()
        if playbook.cooldown_days:
            cooling = set(
                PlaybookFiring.objects.for_org(playbook.organization_id)
                .filter(
                    playbook=playbook,
                    account_id__in=ids,
                    outcome=FiringOutcome.FIRED,
                    fired_at__gt=_cooldown_since(playbook, now),
                )
                .values_list("account_id", flat=True)
            )
    else:
        rows = list(candidates(playbook, now=now) or [])
        ids = sorted({r["account_id"] for r in rows})
        cooling = {r["account_id"] for r in rows if r["in_cooldown"]}
    return ids, cooling


def preview(playbook: Playbook, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """Which accounts match now and what the playbook would do, without doing anything (no row is written).

    Time-based: the occurrences the next evaluation would fire (:func:`candidates`), those it would suppress
    for the cooldown, and :func:`playbooks.actions.plan` of the rest. Event-driven: the accounts in scope where
    the condition holds now (health colour) or all of the scope, i.e. what would fire if the event happened.
    ``arr``: the current ARR of the matching accounts.
    """
    now = now or timezone.now()
    spec = TRIGGERS[playbook.trigger]
    result: dict[str, Any] = {
        "event_driven": spec.event_driven, "matching": 0, "arr": Decimal("0"), "in_cooldown": 0, "sample": []
    }  # fmt: skip
    found = would_fire(playbook, now=now)
    if found is None:
        return {**result, "problems": ["The playbook's conditions or segment rules are invalid."], **plan(
            playbook.organization_id, [], [])}  # fmt: skip
    ids, cooling = found
    acting = [pk for pk in ids if pk not in cooling]
    matching = Account.objects.for_org(playbook.organization_id).filter(pk__in=ids)
    sample = matching.filter(pk__in=ids[:PREVIEW_SAMPLE]).order_by("name")
    return {
        **result,
        "matching": len(ids),
        "arr": (matching.aggregate(arr=Sum("arr"))["arr"] or Decimal("0")) if ids else Decimal("0"),
        "in_cooldown": len(cooling),
        "sample": [{"id": a.pk, "name": a.name} for a in sample],
        "problems": [],
        **plan(playbook.organization_id, playbook.actions or [], acting),
    }
