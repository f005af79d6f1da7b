"""JobRun recording (cs_platform.jobs): the lifecycle admins watch, progress, counts and errors."""

from __future__ import annotations

import pytest

from accounts.choices import JobStatus
from accounts.models import JobRun
from cs_platform import jobs
from cs_platform.jobs import JobError, create_job, public_errors, run_job
from cs_platform.tenancy import OrgScopeError


def _reload(job: JobRun) -> JobRun:
    return JobRun.all_orgs.get(pk=job.pk)


@pytest.mark.django_db
def test_a_new_run_is_queued_with_its_params_and_creator(org, alice):
    job = create_job(organization_id=org.pk, kind="import_csv", params={"kind": "accounts"}, user=alice)
    job = _reload(job)
    assert (job.status, job.params, job.created_by, job.attempts) == (JobStatus.QUEUED, {"kind": "accounts"}, alice, 0)
    assert job.started_at is None and job.finished_at is None
    assert job.progress_percent == 0


@pytest.mark.django_db
def test_a_run_goes_running_then_succeeded_with_counts_and_full_progress(org):
    job = create_job(organization_id=org.pk, kind="demo")
    with run_job(job.pk) as recorder:
        during = _reload(job)
        assert during.status == JobStatus.RUNNING
        assert during.started_at is not None and during.attempts == 1
        recorder.set_total(10)
        assert _reload(job).progress_total == 10
        recorder.count(created=7, updated=3)
    done = _reload(job)
    assert done.status == JobStatus.SUCCEEDED
    assert done.counts == {"created": 7, "updated": 3}
    # A run that finished without reporting its last step still reads as complete.
    assert (done.progress_done, done.progress_percent) == (10, 100)
    assert done.finished_at >= done.started_at
    assert done.duration_seconds is not None and done.duration_seconds >= 0
    assert done.errors == []


@pytest.mark.django_db
def test_a_failing_body_marks_the_run_failed_with_the_error_and_keeps_its_counts(org):
    job = create_job(organization_id=org.pk, kind="demo")
    with pytest.raises(JobError, match="row 7 has no name"), run_job(job.pk) as recorder:
        recorder.set_total(20)
        recorder.advance(6, force=True)
        recorder.count(validated=6)
        raise JobError("row 7 has no name")
    failed = _reload(job)
    assert failed.status == JobStatus.FAILED
    assert failed.errors == [{"error": "row 7 has no name"}]  # a JobError's text is written for users
    assert failed.counts == {"validated": 6}
    assert (failed.progress_done, failed.progress_total, failed.progress_percent) == (6, 20, 30)
    assert failed.finished_at is not None


@pytest.mark.django_db
def test_progress_writes_are_throttled_unless_forced(org, monkeypatch):
    monkeypatch.setattr(jobs, "PROGRESS_WRITE_INTERVAL", 3600.0)  # no time-based write during this test
    job = create_job(organization_id=org.pk, kind="demo")
    with run_job(job.pk) as recorder:
        recorder.set_total(100)  # forced: the first write
        recorder.advance(10)  # within the interval after set_total: kept in memory only
        assert _reload(job).progress_done == 0
        recorder.advance(40, force=True)
        assert _reload(job).progress_done == 40
        recorder.advance(50)
        assert _reload(job).progress_done == 40
    assert _reload(job).progress_done == 100


@pytest.mark.django_db
def test_a_run_to_be_retried_goes_back_to_queued_then_counts_its_attempts(org):
    job = create_job(organization_id=org.pk, kind="demo")
    with pytest.raises(RuntimeError), run_job(job.pk) as recorder:
        recorder.retry_in = 4.0  # what org_task sets when it will retry this error
        raise RuntimeError("worker lost its database")
    waiting = _reload(job)
    assert waiting.status == JobStatus.QUEUED and waiting.finished_at is None
    assert waiting.errors == [
        {"error": "A temporary problem reaching the database; the run will try again in 4 s.", "retry_in_seconds": 4.0}
    ]
    with run_job(job.pk):
        pass
    again = _reload(job)
    assert (again.status, again.attempts, again.errors) == (JobStatus.SUCCEEDED, 2, [])


@pytest.mark.django_db
def test_a_run_of_another_organization_is_refused_and_left_untouched(org, other_org):
    job = create_job(organization_id=other_org.pk, kind="demo")
    with pytest.raises(OrgScopeError), run_job(job.pk, organization_id=org.pk):
        pytest.fail("the body must not run")
    untouched = _reload(job)
    assert (untouched.status, untouched.attempts) == (JobStatus.QUEUED, 0)


@pytest.mark.django_db
def test_runs_are_visible_only_inside_their_organization(org, other_org):
    mine = create_job(organization_id=org.pk, kind="demo")
    create_job(organization_id=other_org.pk, kind="demo")
    assert list(JobRun.objects.for_org(org).values_list("pk", flat=True)) == [mine.pk]


@pytest.mark.django_db
def test_an_unexpected_error_shows_a_plain_reason_and_logs_the_traceback(org, caplog):
    job = create_job(organization_id=org.pk, kind="demo")
    secret = "[Errno 2] No such file or directory: '/srv/retain/var/media/imports/7/3f2a.csv'"
    with caplog.at_level("ERROR", logger="cs_platform.jobs"):
        with pytest.raises(FileNotFoundError), run_job(job.pk):
            raise FileNotFoundError(secret)
    failed = _reload(job)
    assert failed.status == JobStatus.FAILED
    assert failed.errors == [{"error": jobs.internal_error_message(job.pk)}]
    stored = str(failed.errors)
    assert "/srv/" not in stored and "Traceback" not in stored and "FileNotFoundError" not in stored
    # The operator's copy: the log record carries the exception and its traceback.
    record = next(r for r in caplog.records if r.name == "cs_platform.jobs")
    assert f"job run {job.pk}" in record.getMessage()
    assert record.exc_info[0] is FileNotFoundError and secret in str(record.exc_info[1])


def test_public_errors_keep_line_column_reason_and_drop_legacy_tracebacks():
    legacy = {"error": "[Errno 2] No such file: '/srv/x.csv'", "traceback": 'File "/srv/app/accounts/tasks.py"'}
    row = {"line": 3, "column": "name", "reason": "is required", "internal": "x"}
    assert public_errors([row, legacy, "plain"], 9) == [
        {"line": 3, "column": "name", "reason": "is required"},
        {"error": jobs.internal_error_message(9)},
        {"error": "plain"},
    ]
    assert public_errors(None, 9) == []
