"""Django settings for Retain.

One module, configured from the environment. With no environment at all it runs the demo:
SQLite in ``var/`` and a Celery queue on the local filesystem, so a newcomer needs only Python.
Production sets ``DATABASE_URL`` (Postgres) and ``REDIS_URL`` (broker, result backend and cache).
"""

from __future__ import annotations

import ipaddress
import re
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from .env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("RETAIN_VAR_DIR", str(BASE_DIR / "var")))

# RETAIN_ENV=production turns every insecure default into an error or a safe value.
RETAIN_ENV = env_str("RETAIN_ENV", "development")
if RETAIN_ENV not in {"development", "production"}:
    raise ImproperlyConfigured(f"RETAIN_ENV must be 'development' or 'production', got {RETAIN_ENV!r}")
PRODUCTION = RETAIN_ENV == "production"
DEBUG = env_bool("DEBUG", False)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG must be off when RETAIN_ENV=production (it shows settings and data in errors)")
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured("SECRET_KEY must be set when RETAIN_ENV=production")
    # Demo and tests only: a fixed key so sessions survive restarts of the demo.
    SECRET_KEY = "retain-demo-insecure-key-do-not-use-in-production"
# Secrets stored for the tenant (connector credentials, chat webhook URLs) are encrypted at rest with Fernet
# (django-fernet-encrypted-fields): the key is derived from SECRET_KEY and each salt below. Rotation: put the old
# SECRET_KEY in SECRET_KEY_FALLBACKS (or a new salt first in the list) and every stored value still decrypts.
SALT_KEY = env_list("FIELD_ENCRYPTION_SALTS", ["retain-field-encryption-v1"])

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]", "testserver"])
if PRODUCTION and not ALLOWED_HOSTS:
    # Django would answer every request with 400; say why at start-up instead.
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when RETAIN_ENV=production (comma-separated host names)")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_htmx",
    "axes",
    "csp",
    "cs_platform",  # the kernel: the domain-event outbox (cs_platform/models.py), before every domain app
    "accounts",
    "health",
    "renewals",
    "playbooks",
    "feedback",
    "value",
    "integrations",  # connectors (issue 21): beside playbooks, on top of the layers
]

MIDDLEWARE = [
    # /healthz, /readyz and /metrics first: before the host check and the HTTPS redirect (cs_platform/ops.py).
    "cs_platform.ops.OpsEndpointsMiddleware",
    "cs_platform.ops.RequestMetricsMiddleware",
    # A view that loses the database or Redis answers 503 + Retry-After, not 500 (docs/operations.md).
    "cs_platform.ops.UnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    # Budgets per client address for public pages: unsubscribe and invitation links, sign-in (before sessions:
    # a refused request costs one cache call).
    "cs_platform.ratelimit.PublicPagesRateLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: turns a locked-out sign-in into the lockout page (see "Login throttling").
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "cs_platform.urls"
WSGI_APPLICATION = "cs_platform.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.organization",
                "playbooks.context_processors.notifications",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------------
_default_sqlite = f"sqlite:///{VAR_DIR / 'retain.sqlite3'}"
# Connections live a minute (CONN_MAX_AGE); one reused after a database restart or failover is tested first
# (CONN_HEALTH_CHECKS), so the first request after it reconnects instead of failing (tests/test_faults_services.py).
DATABASES = {
    "default": dj_database_url.parse(env_str("DATABASE_URL", _default_sqlite), conn_max_age=60, conn_health_checks=True)
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # The demo runs web, worker and beat as separate processes on one file: wait instead of failing.
    DATABASES["default"]["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Row-level security (cs_platform/rls.py, docs/operations.md "Row-level security"). The policies are always
# on (Postgres); they bind only a role that is neither superuser nor BYPASSRLS. DATABASE_APP_ROLE makes every
# new connection SET ROLE to such a role (created by `manage.py rls_role`); migrate switches back to the login
# user. RETAIN_RLS carries the tenancy scope into the database settings without switching role (implied by
# DATABASE_APP_ROLE). Both off by default: the login user (a superuser in dev and CI) bypasses the policies.
DATABASE_APP_ROLE = env_str("DATABASE_APP_ROLE", "")
if DATABASE_APP_ROLE and not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", DATABASE_APP_ROLE):
    raise ImproperlyConfigured("DATABASE_APP_ROLE must be a plain lower-case Postgres role name")
RETAIN_RLS = env_bool("RETAIN_RLS", False) or bool(DATABASE_APP_ROLE)

# --- Cache (rate limits, debounce keys) ---------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Countdown of the debounced per-account health recompute (health/triggers.py): changes to an
# account's signals within it join one run.
HEALTH_RECOMPUTE_DEBOUNCE_SECONDS = env_int("HEALTH_RECOMPUTE_DEBOUNCE_SECONDS", 60)
# Segment membership is refreshed this many seconds after a domain event that may change it (one run per
# burst of events per organization; accounts/segment_membership.py).
SEGMENT_REFRESH_DEBOUNCE_SECONDS = env_int("SEGMENT_REFRESH_DEBOUNCE_SECONDS", 10)

# --- Auth ---------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
# django-axes first: it refuses a locked-out user+address before the password is even checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", PRODUCTION)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# --- Login throttling (django-axes) -------------------------------------------------------------
# Every password sign-in (the login page, the Django admin's when it is enabled) goes through
# authenticate(), where axes counts failures per user name *and* client address: after
# LOGIN_FAILURE_LIMIT failures that pair is refused, even with the right password, for
# LOGIN_COOLOFF_MINUTES. Keying on the pair means an attacker elsewhere cannot lock a user out of
# their own network. API keys and write keys never call authenticate(), so they are unaffected.
# Unlock: the Members admin page (org admins, for their members), or
# `manage.py axes_reset_username <email>` (the operator). See docs/security.md.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True  # a successful sign-in clears the pair's failures
# The cool-off runs from the failure that locked the pair; attempts while locked are refused without
# checking the password and do not extend it, so the page can say when sign-in opens again.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_USERNAME_CALLABLE = "accounts.auth.login_username"  # "Bob@X.com " and "bob@x.com" are one user
AXES_LOCKOUT_CALLABLE = "accounts.auth.locked_out"  # the sign-in page with the reason, 429
AXES_VERBOSE = False  # no start-up banner in every management command's output
AXES_DISABLE_ACCESS_LOG = True  # keep failures only: successful sign-ins need no per-login IP record
# The client's address: REMOTE_ADDR, or behind TRUSTED_PROXY_COUNT reverse proxies that each append
# the address they received from to X-Forwarded-For (nginx's $proxy_add_x_forwarded_for), the entry
# that many places from the right (accounts.auth.client_ip). Set it only when such proxies are always
# in front: otherwise a client could pick the address its failures are counted under.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
if TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured("TRUSTED_PROXY_COUNT must be 0 or more")
AXES_CLIENT_IP_CALLABLE = "accounts.auth.client_ip"

# --- Django admin -------------------------------------------------------------------------------
# The operator's cross-tenant view (/django-admin/). Off in production unless the operator turns it
# on; when on, it is staff-only (Django's rule) and its sign-in is throttled like every other.
DJANGO_ADMIN_ENABLED = env_bool("DJANGO_ADMIN_ENABLED", not PRODUCTION)

# --- HTTPS behind a proxy -----------------------------------------------------------------------
# Behind a TLS-terminating proxy set SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https, and only
# when the proxy overwrites that header (otherwise a client could claim HTTPS).
_proxy_header = env_list("SECURE_PROXY_SSL_HEADER", [])
if _proxy_header:
    if len(_proxy_header) != 2:
        raise ImproperlyConfigured("SECURE_PROXY_SSL_HEADER must be 'HEADER,value', e.g. HTTP_X_FORWARDED_PROTO,https")
    SECURE_PROXY_SSL_HEADER = (_proxy_header[0], _proxy_header[1])
# Production speaks HTTPS only: plain HTTP is redirected and browsers are told (HSTS, one year) never to
# try plain HTTP again. TLS may end at a proxy in front (then set SECURE_PROXY_SSL_HEADER above, or every
# request looks like plain HTTP and is redirected forever). The demo (`make run`) is development, plain
# HTTP on loopback: none of this applies there. To try the production settings on plain HTTP (docker
# compose on a laptop), set SECURE_SSL_REDIRECT=0, SECURE_HSTS_SECONDS=0 and SESSION_COOKIE_SECURE=0
# explicitly: `check --deploy` then warns, as it should. docs/security.md, "Transport and cookies".
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600 if PRODUCTION else 0)
if SECURE_HSTS_SECONDS < 0:
    raise ImproperlyConfigured("SECURE_HSTS_SECONDS must be 0 (off) or more")
# HSTS for the host's own subdomains too (retain.example.com's, not its siblings').
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
# Asking browsers to ship the domain in their preload list is hard to undo (months) and only counts on a
# registrable domain, so it is the operator's decision: off unless SECURE_HSTS_PRELOAD=1. Django's
# deploy check reminds of it (security.W021); that reminder alone is silenced while it is off.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
# A load balancer probes over plain HTTP inside the network, and Prometheus scrapes the same way: /healthz,
# /readyz and /metrics are answered before the redirect (cs_platform.ops.OpsEndpointsMiddleware).
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# --- Content Security Policy (django-csp) ---------------------------------------------------------
# Everything comes from the app itself: no inline script, no inline style, no CDN, no eval. Templates
# carry no style="" or <script> body (tests/test_csp.py reads every template), htmx is told not to inject
# its indicator <style> (meta htmx-config in base.html), the Swagger UI page loads its init script as a
# file (SpectacularSwaggerSplitView) and ReDoc, which needs inline styles and web fonts, is not served.
# img-src allows data: for Swagger UI's icons and for CSS-drawn shapes.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- i18n ---------------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files (served by the app itself through WhiteNoise; no CDN) -------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Uploaded files (CSV imports) go here: workers read them by path, so in a multi-host deployment this
# is a volume shared by the web and worker containers.
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "/media/"  # never served: uploads are read by the workers, not published
# CSV imports: what one uploaded file may hold, for every organization whose own limit (set by the
# operator in django-admin) is empty. Refused at the door beyond that (413 / a form error).
IMPORT_MAX_BYTES = env_int("IMPORT_MAX_BYTES", 50 * 1024 * 1024)
IMPORT_MAX_ROWS = env_int("IMPORT_MAX_ROWS", 1_000_000)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# The demo and the tests serve straight from the finders, so no collectstatic step is needed there.
# Production runs collectstatic and serves the hashed, compressed copies from STATIC_ROOT instead.
WHITENOISE_USE_FINDERS = env_bool("WHITENOISE_USE_FINDERS", not PRODUCTION)
if WHITENOISE_USE_FINDERS:
    STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns at start-up when it is missing

# --- Email --------------------------------------------------------------------------------------
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "retain@localhost")
# Email to the timeline (docs/integrations.md "Email to the timeline"): capture addresses are
# <org slug>+<token>@CAPTURE_DOMAIN; the SMTP listener (manage.py email_listener) binds
# EMAIL_LISTENER_HOST:EMAIL_LISTENER_PORT and refuses messages over EMAIL_CAPTURE_MAX_BYTES (552).
CAPTURE_DOMAIN = env_str("CAPTURE_DOMAIN", "capture.localhost")
EMAIL_LISTENER_HOST = env_str("EMAIL_LISTENER_HOST", "127.0.0.1")
EMAIL_LISTENER_PORT = env_int("EMAIL_LISTENER_PORT", 2525)
EMAIL_CAPTURE_MAX_BYTES = env_int("EMAIL_CAPTURE_MAX_BYTES", 10 * 1024 * 1024)
EMAIL_CAPTURE_POLL_SECONDS = env_int("EMAIL_CAPTURE_POLL_SECONDS", 120)
# A stored message still unprocessed this many seconds after it arrived is queued again (beat, every minute).
EMAIL_CAPTURE_REQUEUE_AFTER = env_int("EMAIL_CAPTURE_REQUEUE_AFTER", 120)
# The address customers reach Retain at: links in emails to contacts (the one-click unsubscribe link) are built
# on it, since those emails are sent by workers, outside any request.
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "http://localhost:8000").rstrip("/")
# The local hour (organization's time zone) from which the daily digest email goes out (playbooks/digest.py).
DIGEST_HOUR = env_int("DIGEST_HOUR", 7)
# How long an invitation link to join an organization stays valid (it is single-use either way).
INVITATION_TTL_DAYS = env_int("INVITATION_TTL_DAYS", 7)

# --- REST API -----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "cs_platform.api.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # The API speaks JSON (a form encoding cannot say null, a nested list or a JSON field, so the OpenAPI
    # document could not describe it truthfully); only the import upload adds multipart. JSON nested past
    # a sane depth is a 400 with the reason, not a RecursionError (cs_platform/api/parsers.py).
    "DEFAULT_PARSER_CLASSES": ["cs_platform.api.parsers.JSONParser"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "cs_platform.api.pagination.StandardPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_CLASSES": ["cs_platform.api.throttling.OrgRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"org": env_str("API_RATE_LIMIT", "1200/min")},
    "EXCEPTION_HANDLER": "cs_platform.api.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Retain API",
    "DESCRIPTION": "Customer-success platform API. Authenticate with `Authorization: Bearer <api key>`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Tenant models' default `objects` manager refuses unscoped queries; schema generation only needs `.none()`.
    "DEFAULT_QUERY_MANAGER": "all_orgs",
    # One schema name for a choice set several fields share (forecast category, CSM call, final call).
    "ENUM_NAME_OVERRIDES": {
        "ForecastCategoryEnum": "renewals.models.ForecastCategory",
        # Renewals' outcomes keep the name they had before CTAs had outcomes too.
        "OutcomeEnum": "renewals.models.RenewalOutcome",
        "PriorityEnum": "health.models.TicketPriority",
        "CtaOutcomeEnum": "playbooks.choices.CtaOutcome",
        "CtaPriorityEnum": "playbooks.choices.CtaPriority",
        "SnoozeReasonEnum": "playbooks.choices.SnoozeReason",
        "FeatureRequestTypeEnum": "feedback.models_requests.RequestType",
        "FeatureRequestStatusEnum": "feedback.models_requests.RequestStatus",
        "SurveyKindEnum": "feedback.choices.SurveyKind",
        # Import runs and scorecard backtests share the JobRun statuses.
        "JobStatusEnum": "cs_platform.choices.JobStatus",
        # Webhook and chat (Slack/Teams) deliveries share the delivery statuses; the webhooks' name is kept.
        "WebhookDeliveryStatusEnum": "playbooks.models.DeliveryStatus",
        "HealthColorEnum": "health.models.HealthColor",
        "DetailsFigureEnum": "value.analytics_details.FIGURE_CHOICES",
        "BusinessReviewKindEnum": "value.choices.ReviewKind",
        "BusinessReviewStatusEnum": "value.choices.ReviewStatus",
        "OnboardingStatusEnum": "value.choices.OnboardingStatus",
        # Contact roles: a contact's ``roles`` and a handoff stakeholder's ``role`` are the same set.
        "RolesEnum": "accounts.choices.ContactRole",
        "RoleEnum": "cs_platform.choices.Role",
        # Connectors (integrations): a sync run's trigger, mode; a connection's status; a sync's direction.
        "SyncRunTriggerEnum": "integrations.choices.RunTrigger",
        "TriggerEnum": "playbooks.models_engine.TriggerKind",  # the playbooks keep their enum name
        "SyncRunModeEnum": "integrations.choices.RunMode",
        "IntegrationStatusEnum": "integrations.choices.ConnectionStatus",
        "SyncDirectionEnum": "integrations.choices.Direction",
    },
}

# --- Celery -------------------------------------------------------------------------------------
# No task may run forever: the soft limit raises SoftTimeLimitExceeded inside the task (its JobRun is
# marked failed), the hard limit kills the worker child.
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 60 * 60)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", CELERY_TASK_SOFT_TIME_LIMIT + 5 * 60)
if CELERY_TASK_TIME_LIMIT <= CELERY_TASK_SOFT_TIME_LIMIT:
    raise ImproperlyConfigured("CELERY_TASK_TIME_LIMIT must be greater than CELERY_TASK_SOFT_TIME_LIMIT")

# Production: Redis. Demo: kombu's filesystem transport, a queue in var/queue that needs no server
# and is shared by the web process, the worker and beat.
_queue_dir = VAR_DIR / "queue"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or REDIS_URL or "filesystem://"
if CELERY_BROKER_URL.startswith("filesystem://"):
    for _folder in ("out", "processed", "control"):
        (_queue_dir / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "data_folder_in": str(_queue_dir / "out"),
        "data_folder_out": str(_queue_dir / "out"),
        "processed_folder": str(_queue_dir / "processed"),
        # Exchange tables (remote control, broadcast); kombu's default is a "control" folder in the cwd.
        "control_folder": str(_queue_dir / "control"),
        "store_processed": False,
    }
else:
    # With acks_late a message not acknowledged within this time is redelivered to another worker:
    # it must exceed the hard time limit, or a long job would run twice at once.
    _visibility_timeout = env_int("CELERY_VISIBILITY_TIMEOUT", CELERY_TASK_TIME_LIMIT + 15 * 60)
    if _visibility_timeout <= CELERY_TASK_TIME_LIMIT:
        raise ImproperlyConfigured("CELERY_VISIBILITY_TIMEOUT must be greater than CELERY_TASK_TIME_LIMIT")
    # How often a worker sweeps Redis for messages unacknowledged longer than the visibility timeout (a
    # killed worker's) and puts them back on their queue: every INTERVAL x THROTTLE seconds (kombu's
    # defaults, 10 x 10). Lower both with a short visibility timeout (the fault tests use 1 and 1).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": _visibility_timeout,
        "unacked_restore_interval": env_int("CELERY_UNACKED_RESTORE_INTERVAL", 10),
        "unacked_restore_throttle": env_int("CELERY_UNACKED_RESTORE_THROTTLE", 10),
    }
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True  # outcomes are recorded in JobRun rows, not in a result backend
CELERY_RESULT_EXPIRES = None  # no result backend, so no nightly celery.backend_cleanup in beat
CELERY_TASK_ACKS_LATE = True  # a crashed worker's job is redelivered, not lost
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# The queue tasks are sent to when they name none (workers consume it with -Q); "celery" is Celery's own.
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE", "celery")
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_WORKER_SEND_TASK_EVENTS = False
CELERY_TIMEZONE = "UTC"
# Queues (docs/operations.md): "celery" for everything by default; "outbound" for every call to a URL a
# tenant chose (webhook deliveries; CRM and Slack later), served by workers of its own so that slow
# receivers never hold imports, recomputes or renewals.
OUTBOUND_QUEUE = "outbound"
CELERY_TASK_ROUTES = {
    "playbooks.tasks.deliver_webhook": {"queue": OUTBOUND_QUEUE},
    "playbooks.tasks.deliver_chat": {"queue": OUTBOUND_QUEUE},
}
# Beat keeps its schedule in the database (editable in the admin); the entries below are synced into
# it every time beat starts.
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    # Connectors (docs/integrations.md): start the object syncs whose next run is due.
    "integrations-due-syncs": {"task": "integrations.tasks.queue_due_syncs", "schedule": 60},
    # Email to the timeline: poll the organizations' capture mailboxes (IMAP).
    "integrations-poll-mailboxes": {
        "task": "integrations.tasks.poll_all_capture_mailboxes",
        "schedule": EMAIL_CAPTURE_POLL_SECONDS,
    },
    # ... and queue again a stored message the broker never got (down when it was stored).
    "integrations-requeue-emails": {"task": "integrations.tasks.requeue_unprocessed_emails", "schedule": 60},
    "refresh-current-arr": {"task": "accounts.tasks.refresh_all_current_arr", "schedule": 60 * 60 * 6},
    "rollup-usage": {"task": "health.tasks.rollup_all_usage", "schedule": 5 * 60},
    # Daily; idempotent, so a missed day is caught up by the next run.
    "create-due-renewals": {"task": "renewals.tasks.create_all_due_renewals", "schedule": 60 * 60 * 24},
    "recompute-health": {"task": "health.tasks.recompute_all_health", "schedule": 60 * 60},
    # Stored segment members (docs/segments.md): derived values move with the calendar and with signals
    # that raise no domain event; events refresh sooner (SEGMENT_REFRESH_DEBOUNCE_SECONDS).
    "refresh-segments": {
        "task": "accounts.tasks.refresh_all_segment_memberships",
        "schedule": env_int("SEGMENT_REFRESH_SCHEDULE_SECONDS", 15 * 60),
    },
    # The outbox's safety net (docs/events.md): events whose dispatch message was lost are queued again.
    "redispatch-events": {"task": "cs_platform.events.redispatch_pending_events", "schedule": 60},
    "purge-events": {"task": "cs_platform.events.purge_dispatched_events", "schedule": 60 * 60 * 24},
    # Time-based playbook triggers, set-based per organization (docs/playbooks.md); idempotent.
    "evaluate-playbooks": {"task": "playbooks.tasks.evaluate_all_playbooks", "schedule": 15 * 60},
    # Hourly: each organization's opted-in members get their daily digest once it is DIGEST_HOUR there.
    "send-digests": {"task": "playbooks.tasks.send_all_digests", "schedule": 60 * 60},
    # Stalled onboarding milestones (docs/events.md, value/stalls.py): hourly so each organization's day turns
    # over near its own midnight; idempotent (a stall is raised once, until the milestone changes).
    "detect-onboarding-stalls": {"task": "value.tasks.detect_all_stalls", "schedule": 60 * 60},
    # Survey sends (docs/surveys.md): due recurring runs and drip emails; idempotent.
    "run-survey-sends": {"task": "feedback.tasks.run_all_survey_sends", "schedule": 5 * 60},
}
# --- Domain events (cs_platform/events.py, docs/events.md) -------------------------------------------
# An event still undispatched this many seconds after it occurred is dispatched again by the beat.
EVENTS_REDISPATCH_AFTER = env_int("EVENTS_REDISPATCH_AFTER", 60)
# Dispatched events are kept this many days (what consumers made of them, e.g. webhook deliveries, stays).
EVENTS_RETENTION_DAYS = env_int("EVENTS_RETENTION_DAYS", 30)

# --- Outbound calls (cs_platform/outbound.py) ----------------------------------------------------
# Private networks an operator allows outbound calls to (on-premise receivers), as CIDRs such as
# "10.20.0.0/16,192.168.5.0/24". Empty: public internet addresses only. Loopback only when listed.
OUTBOUND_ALLOWED_NETWORKS = env_list("OUTBOUND_ALLOWED_NETWORKS", [])
for _cidr in OUTBOUND_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_cidr, strict=False)
    except ValueError as _exc:
        raise ImproperlyConfigured(f"OUTBOUND_ALLOWED_NETWORKS: {_cidr!r} is not a network (e.g. 10.0.0.0/8)") from _exc
OUTBOUND_CONNECT_TIMEOUT = env_int("OUTBOUND_CONNECT_TIMEOUT", 3)  # seconds per connection attempt
OUTBOUND_TIMEOUT = env_int("OUTBOUND_TIMEOUT", 10)  # seconds for the whole call once connected
OUTBOUND_ORG_CONCURRENCY = env_int("OUTBOUND_ORG_CONCURRENCY", 2)  # calls in flight per organization
OUTBOUND_MAX_RESPONSE_BYTES = env_int("OUTBOUND_MAX_RESPONSE_BYTES", 32 * 1024 * 1024)  # vendor API answers
OUTBOUND_CA_BUNDLE = env_str("OUTBOUND_CA_BUNDLE", "")  # a CA file for receivers with a private CA
if min(OUTBOUND_CONNECT_TIMEOUT, OUTBOUND_TIMEOUT, OUTBOUND_ORG_CONCURRENCY) < 1:
    raise ImproperlyConfigured("OUTBOUND_CONNECT_TIMEOUT, OUTBOUND_TIMEOUT and OUTBOUND_ORG_CONCURRENCY must be >= 1")
# "Send test" per organization: N per second/min/hour/day.
WEBHOOK_TEST_RATE = env_str("WEBHOOK_TEST_RATE", "5/min")
# Inbound webhooks (/hooks/<org>/tracker/, /hooks/<org>/helpdesk/): requests per organization and source, beyond
# which the answer is 429 with Retry-After (health/inbound.py).
INBOUND_HOOK_RATE = env_str("INBOUND_HOOK_RATE", "120/min")
# The public survey response page /s/<token>/: requests per client address (N per second/min/hour/day).
SURVEY_PAGE_RATE = env_str("SURVEY_PAGE_RATE", "30/min")
# The other public pages, per client address (cs_platform.ratelimit.PublicPagesRateLimitMiddleware): the
# unsubscribe link /u/<signed>/, invitation links /invitations/<token>/, and password sign-in (POST /login/),
# the last across every user name (django-axes also locks each user name and address pair after 5 failures).
UNSUBSCRIBE_PAGE_RATE = env_str("UNSUBSCRIBE_PAGE_RATE", "30/min")
INVITATION_PAGE_RATE = env_str("INVITATION_PAGE_RATE", "30/min")
LOGIN_RATE = env_str("LOGIN_RATE", "60/min")

# --- Monitoring (cs_platform/ops.py, docs/operations.md) ------------------------------------------------
# /metrics needs "Authorization: Bearer <METRICS_TOKEN>"; without a token it is served only outside production.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
# /readyz gives Redis this long (connect, then PING) before it answers 503.
READINESS_TIMEOUT_SECONDS = env_int("READINESS_TIMEOUT_SECONDS", 2)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Survey (/s/<token>/), unsubscribe (/u/<signed>/) and invitation links carry their credential in the path,
    # and a message or an exception may carry a key, an Authorization header or a password: every record is
    # masked (cs_platform/logging_filters.py; gunicorn's access log: gunicorn_conf.py).
    "filters": {"mask_tokens": {"()": "cs_platform.logging_filters.MaskPathTokens"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["mask_tokens"]}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # axes: failures and lockouts are warnings; every successful sign-in would be an INFO line.
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "axes": {"level": "WARNING"},
        "django.request": {"filters": ["mask_tokens"]},
        "django.server": {"filters": ["mask_tokens"]},
    },
}
