"""Settings for Imaging Advisor, read from environment variables with safe local defaults."""

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_number(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    try:
        return float(value) if value else default
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {value!r}") from None


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    # Only reachable with DEBUG on, i.e. on a developer's machine.
    SECRET_KEY = "insecure-local-development-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "decisions.workspace.apps.DecisionsAdminConfig",  # Django's admin, on the decisions admin site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "corsheaders",
    "django_htmx",
    "template_partials",
    "crispy_forms",
    "crispy_bootstrap5",
    "simple_history",
    "ninja",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "decisions",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "corsheaders.middleware.CorsMiddleware",  # before CommonMiddleware, as django-cors-headers asks
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before anything reads a body: refuses oversized, too deep or malformed JSON (problem+json).
    "decisions.web.guards.InputGuardMiddleware",
    "decisions.web.csp.CSPMiddleware",  # django-csp, its constant header built once
    # Cached wizard pages, htmx steps and API answers leave here, with the security headers and
    # the CSP of the full stack, without sessions, CSRF, auth or messages (decisions/clinician/fast_path.py).
    "decisions.clinician.fast_path.FastPathMiddleware",
    # Before anything touches the database (sessions): 503 at once during a known outage, or when
    # DB_BOUND_CONCURRENCY requests already wait on the database (decisions/web/db_gate.py).
    "decisions.web.db_gate.DatabaseGateMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Whether this session passed the second factor; then ask for it where needed (second_factor.py).
    "django_otp.middleware.OTPMiddleware",
    "decisions.workspace.second_factor.SecondFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Django's X-Frame-Options, left out when SMART EHRs may frame the app (decisions/web/csp.py).
    "decisions.web.csp.FrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Answers a locked-out sign-in with the lock-out page (django-axes, below).
    "axes.middleware.AxesMiddleware",
    # Innermost, so it sees the exceptions views raise (decisions/web/guards.py).
    "decisions.web.guards.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "imaging_advisor.urls"

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
                "decisions.clinician.context_processors.csp_nonce",
            ],
            # With the "template_partials" app this is all Django 6 needs removed.
            "builtins": ["template_partials.templatetags.partials"],
            # The admin login page's "Sign in with …" button (decisions/workspace/sign_in.py).
            "libraries": {"sign_in": "decisions.workspace.sign_in"},
        },
    },
]

WSGI_APPLICATION = "imaging_advisor.wsgi.application"

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        # 0: a new connection per request that needs one. A connection kept open across a
        # database freeze waits forever on its next query (no client-side timeout exists for a
        # query already sent), whereas a new one gives up after DB_CONNECT_TIMEOUT. Clinician
        # pages do no database work, so the cost is one connect per admin or feedback request.
        conn_max_age=int(env_number("CONN_MAX_AGE", 0)),
        conn_health_checks=True,
    )
}
# A database that is down or frozen must fail a request in seconds, not hold a worker until
# gunicorn kills it (30 s): a connect timeout, and a statement timeout enforced by the server.
DB_CONNECT_TIMEOUT = env_number("DB_CONNECT_TIMEOUT", 3)
DB_STATEMENT_TIMEOUT = env_number("DB_STATEMENT_TIMEOUT", 5)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "connect_timeout": max(1, round(DB_CONNECT_TIMEOUT)),
            "options": f"-c statement_timeout={round(DB_STATEMENT_TIMEOUT * 1000)}",
        }
    )
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite (make run, the benchmarks): WAL lets pages read while one request writes, NORMAL
    # syncs at checkpoints instead of at every commit, and IMMEDIATE takes the write lock when a
    # transaction starts, so concurrent writers queue (up to the timeout) instead of one of them
    # failing with "database is locked" when it upgrades a read lock.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": max(1, DB_STATEMENT_TIMEOUT),
        }
    )
# After a failed release check, how long each process serves what it has before asking again.
DB_RETRY_SECONDS = env_number("DB_RETRY_SECONDS", 5)
# Requests that need the database (admin, CDS Hooks posts, feedback) running at once per process;
# the other threads of a worker (GUNICORN_THREADS, gunicorn.conf.py) stay for clinician pages.
DB_BOUND_CONCURRENCY = int(env_number("DB_BOUND_CONCURRENCY", 4))

# State shared by every process (the feedback rate limit) lives in Django's cache: this process's
# memory by default, Redis when REDIS_URL is set (needed with more than one process or server).
REDIS_URL = os.environ.get("REDIS_URL", "")
REDIS_TIMEOUT_SECONDS = env_number("REDIS_TIMEOUT_SECONDS", 0.25)
CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "imaging-advisor",
            # Redis that does not answer must not hold a request either: short timeouts, and a
            # circuit breaker in front of it (decisions/web/cache_breaker.py).
            "OPTIONS": {
                "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
                "socket_timeout": REDIS_TIMEOUT_SECONDS,
            },
        }
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# Behind a reverse proxy or load balancer, REMOTE_ADDR is the proxy's address. TRUSTED_PROXIES
# lists the proxies' addresses (or TRUSTED_PROXY_COUNT says how many there are); the client is
# then read from X-Forwarded-For (decisions.views.client_address). With neither set, the header is
# ignored, since anyone can send it.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", "")
TRUSTED_PROXY_COUNT = int(env_number("TRUSTED_PROXY_COUNT", 0))

# JSON request bodies (CDS Hooks, and anything else posted to a JSON endpoint): larger bodies get
# 413, deeper nesting 400, both as application/problem+json (decisions/web/guards.py).
JSON_MAX_BYTES = int(env_number("JSON_MAX_BYTES", 1_000_000))
JSON_MAX_DEPTH = int(env_number("JSON_MAX_DEPTH", 32))

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Admin sign-in is throttled (django-axes): after ADMIN_LOGIN_FAILURE_LIMIT failed attempts for
# one account, or from one client address, further attempts are refused for
# ADMIN_LOGIN_LOCKOUT_MINUTES with a page that says what to do. Both, not only the pair: one
# address guessing many accounts and many addresses guessing one account are both stopped. The
# address is the one decisions.views.client_address trusts (TRUSTED_PROXIES), so a client
# cannot pick its own by sending X-Forwarded-For.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out attempt before any check
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(env_number("ADMIN_LOGIN_FAILURE_LIMIT", 5))
AXES_COOLOFF_TIME = timedelta(minutes=env_number("ADMIN_LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_CLIENT_IP_CALLABLE = "decisions.clinician.views.client_address"
AXES_LOCKOUT_CALLABLE = "decisions.workspace.lockout.locked_out"
AXES_RESET_ON_SUCCESS = True
# Groups whose members must sign in with a second factor (an authenticator app's code), e.g.
# "publisher,clinical_reviewer"; anyone may set one up (decisions/workspace/second_factor.py).
ADMIN_SECOND_FACTOR_GROUPS = env_list("ADMIN_SECOND_FACTOR_GROUPS", "")
OTP_TOTP_ISSUER = "Imaging Advisor"
AXES_VERBOSE = False  # no start-up banner on every manage.py command's stderr
# A session lasts a working day (8 hours) unless SESSION_COOKIE_AGE (seconds) says otherwise:
# the people signed in can publish clinical advice.
SESSION_COOKIE_AGE = int(env_number("SESSION_COOKIE_AGE", 8 * 60 * 60))

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Rendered wizard states kept per process, keyed by release and answers (decisions/clinician/views.py).
# Releases are immutable, so no process can serve a stale entry.
RENDER_CACHE_ENTRIES = int(os.environ.get("RENDER_CACHE_ENTRIES", "5000"))

# Megabytes of complete responses of cached pages and API answers kept per process, to answer a
# repeated request before Django (decisions/clinician/response_cache.py); 0 turns that off.
RESPONSE_CACHE_MB = env_number("RESPONSE_CACHE_MB", 32)

# How often (seconds) each process checks the database for a newly published release.
RELEASE_CHECK_SECONDS = env_number("RELEASE_CHECK_SECONDS", 1)

# /readyz answers from a result that a thread in each process refreshes this often (seconds): a read,
# the latest releases and a rolled-back write (decisions/web/readiness.py). 0 asks on every call.
READINESS_PROBE_SECONDS = env_number("READINESS_PROBE_SECONDS", 2)

# When a process loads a topic's latest release (at start-up or after a publish), it renders every
# reachable wizard state of it (or the RENDER_CACHE_ENTRIES most used) and its API answers in a
# background thread; /readyz says ready once that is done (decisions/clinician/warmup.py).
WARM_UP = env_bool("WARM_UP", True)

# HTTP caching of wizard pages and API answers (decisions/web/http_cache.py): browsers and CDNs keep an
# unpinned page this long, then revalidate (304 while the release is the same); a permalink that
# pins its release (release=N) is immutable and kept at least a day.
HTTP_MAX_AGE_SECONDS = int(env_number("HTTP_MAX_AGE_SECONDS", 60))
HTTP_PINNED_MAX_AGE_SECONDS = int(env_number("HTTP_PINNED_MAX_AGE_SECONDS", 86400))

# Usage statistics are counted in memory and written every N recommendations or S seconds.
USAGE_FLUSH_EVERY = int(os.environ.get("USAGE_FLUSH_EVERY", "200"))
USAGE_FLUSH_SECONDS = env_number("USAGE_FLUSH_SECONDS", 60)

# Clinician feedback: at most N posts per client address per window, counted in the cache (above).
FEEDBACK_RATE_LIMIT = int(os.environ.get("FEEDBACK_RATE_LIMIT", "5"))
FEEDBACK_RATE_WINDOW_SECONDS = int(os.environ.get("FEEDBACK_RATE_WINDOW_SECONDS", "600"))

# CDS Hooks (decisions/cds_hooks/). Every call must carry a JWT signed by a trusted EHR unless
# CDS_HOOKS_VERIFY_JWT=false (local development only: discovery then says so loudly).
# CDS_HOOKS_TRUSTED_ISSUERS is a JSON object: issuer -> its JWKS URL, or the JWKS itself
# ({"keys": [...]}), or {"jwks_url": "...", "fhir_servers": [...]} / {"keys": [...],
# "fhir_servers": [...]}: the FHIR base URLs that issuer may send as fhirServer (none otherwise).
# With verification off, CDS_HOOKS_FHIR_SERVERS lists them. Nothing else is ever fetched.
# CDS_HOOKS_PUBLIC_BASE_URL is the base URL EHRs call (the JWT `aud` is this plus the path);
# empty means: built from the request.
CDS_HOOKS_VERIFY_JWT = env_bool("CDS_HOOKS_VERIFY_JWT", True)
_ISSUERS_FORMAT = (
    'CDS_HOOKS_TRUSTED_ISSUERS must be a JSON object of issuer -> JWKS URL, {"keys": [...]}, or '
    '{"jwks_url": "https://…", "fhir_servers": ["https://…"]} (or "keys" with "fhir_servers")'
)


def _https_unless_debug(name: str, url: str) -> str:
    # A bearer token (fhirServer) or the keys we trust (JWKS) must not travel in clear text.
    if not url.startswith(("https://", "http://")):
        raise ImproperlyConfigured(f"{name}: {url!r} is not an http(s) URL")
    if not DEBUG and not url.startswith("https://"):
        raise ImproperlyConfigured(f"{name}: {url!r} must use https when DEBUG is off")
    return url


def _cds_hooks_trusted_issuers() -> dict[str, Any]:
    import json

    try:
        issuers = json.loads(os.environ.get("CDS_HOOKS_TRUSTED_ISSUERS") or "{}")
    except json.JSONDecodeError as error:
        raise ImproperlyConfigured(f"CDS_HOOKS_TRUSTED_ISSUERS is not valid JSON: {error}") from error
    if not isinstance(issuers, dict):
        raise ImproperlyConfigured(_ISSUERS_FORMAT)
    for issuer, source in issuers.items():
        where = f"CDS_HOOKS_TRUSTED_ISSUERS[{issuer!r}]"
        if isinstance(source, str):
            _https_unless_debug(where, source)
            continue
        if not isinstance(source, dict):
            raise ImproperlyConfigured(_ISSUERS_FORMAT)
        keys, url, servers = source.get("keys"), source.get("jwks_url"), source.get("fhir_servers", [])
        if not (isinstance(keys, list) or isinstance(url, str)) or not isinstance(servers, list):
            raise ImproperlyConfigured(_ISSUERS_FORMAT)
        if isinstance(url, str):
            _https_unless_debug(f"{where}.jwks_url", url)
        for server in servers:
            if not isinstance(server, str):
                raise ImproperlyConfigured(_ISSUERS_FORMAT)
            _https_unless_debug(f"{where}.fhir_servers", server)
    return issuers


CDS_HOOKS_TRUSTED_ISSUERS = _cds_hooks_trusted_issuers()
CDS_HOOKS_FHIR_SERVERS = [
    _https_unless_debug("CDS_HOOKS_FHIR_SERVERS", url) for url in env_list("CDS_HOOKS_FHIR_SERVERS", "")
]
CDS_HOOKS_PUBLIC_BASE_URL = os.environ.get("CDS_HOOKS_PUBLIC_BASE_URL", "").rstrip("/")
# Clock skew allowed on the EHR's JWT, and its longest accepted lifetime (exp - iat).
CDS_HOOKS_JWT_LEEWAY_SECONDS = int(os.environ.get("CDS_HOOKS_JWT_LEEWAY_SECONDS", "60"))
CDS_HOOKS_JWT_MAX_LIFETIME_SECONDS = int(os.environ.get("CDS_HOOKS_JWT_MAX_LIFETIME_SECONDS", "300"))
# Reading the record from the EHR's fhirServer when the prefetch lacks it: every fetch of one
# call runs in parallel, and all of them together stop after CDS_HOOKS_FHIR_TIMEOUT_SECONDS.
CDS_HOOKS_FHIR_TIMEOUT_SECONDS = env_number("CDS_HOOKS_FHIR_TIMEOUT_SECONDS", 5)
CDS_HOOKS_FHIR_MAX_BYTES = int(os.environ.get("CDS_HOOKS_FHIR_MAX_BYTES", "2000000"))
# A SMART client of this deployment: its launch URL makes cards carry a `smart` link.
CDS_HOOKS_SMART_LAUNCH_URL = os.environ.get("CDS_HOOKS_SMART_LAUNCH_URL", "")
# Argonaut PAMA ratings (pama-rating extensions as system actions and on suggested orders). CMS
# paused the PAMA AUC programme, so a site may switch them off; the cards say the same either way.
CDS_HOOKS_PAMA = env_bool("CDS_HOOKS_PAMA", True)
# Days a CDS Hooks consultation record is kept (0: kept until deleted by hand).
CDS_HOOKS_CONSULTATION_RETENTION_DAYS = int(os.environ.get("CDS_HOOKS_CONSULTATION_RETENTION_DAYS", "365"))


# SMART App Launch (EHR launch, decisions/smart/). SMART_ISSUERS lists the EHRs' FHIR base URLs
# (the `iss` of a launch) this deployment accepts; any other launch is refused, and only these
# EHRs' origins may show the app in a frame (CSP frame-ancestors, below). https unless DEBUG.
def _smart_issuer(url: str) -> str:
    from urllib.parse import urlsplit

    _https_unless_debug("SMART_ISSUERS", url)
    parts = urlsplit(url)
    if not parts.hostname or parts.query or parts.fragment or parts.username or parts.password:
        raise ImproperlyConfigured(
            f"SMART_ISSUERS: {url!r} is not a FHIR base URL such as https://ehr.example.org/fhir"
        )
    return url.rstrip("/")


def origin_of(url: str) -> str:
    """scheme://host[:port] of a URL, the default port left out (a CSP source expression)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{host}" + (f":{parts.port}" if parts.port not in (None, default) else "")


SMART_ISSUERS = [_smart_issuer(url) for url in env_list("SMART_ISSUERS", "")]
SMART_CLIENT_ID = os.environ.get("SMART_CLIENT_ID", "")
if SMART_ISSUERS and not SMART_CLIENT_ID:
    raise ImproperlyConfigured(
        "SMART_CLIENT_ID must be set when SMART_ISSUERS is (the id the EHR registered)"
    )
SMART_SCOPES = " ".join(
    os.environ.get(
        "SMART_SCOPES", "launch openid fhirUser patient/Patient.read patient/Condition.read"
    ).split()
)
if "launch" not in SMART_SCOPES.split():
    raise ImproperlyConfigured(
        f"SMART_SCOPES must include `launch` (an EHR launch asks for it): {SMART_SCOPES!r}"
    )
# The callback URL registered with the EHR; empty: built from the request (right unless a proxy
# in front rewrites the host or scheme without SECURE_PROXY_SSL_HEADER).
SMART_REDIRECT_URI = os.environ.get("SMART_REDIRECT_URI", "")
# Seconds each call to the EHR may take: discovery, the token request, and the FHIR reads together.
SMART_TIMEOUT_SECONDS = env_number("SMART_TIMEOUT_SECONDS", 5)
# The EHRs that may frame the app: the origins of SMART_ISSUERS (none: no one may).
SMART_FRAME_ANCESTORS = sorted({origin_of(url) for url in SMART_ISSUERS})


# Optional admin sign-in through the hospital's SSO (OpenID Connect; decisions/workspace/sign_in.py,
# docs/oidc.md). Off unless OIDC_RP_CLIENT_ID is set; then the secret and every endpoint must be
# too (https unless DEBUG), and the URLs under /admin/sso/ are mounted. Only an existing, active
# staff account with the provider's verified email is signed in; none is ever created.
OIDC_RP_CLIENT_ID = os.environ.get("OIDC_RP_CLIENT_ID", "")
OIDC_ENABLED = bool(OIDC_RP_CLIENT_ID)
OIDC_RP_CLIENT_SECRET = os.environ.get("OIDC_RP_CLIENT_SECRET", "")
OIDC_OP_AUTHORIZATION_ENDPOINT = os.environ.get("OIDC_OP_AUTHORIZATION_ENDPOINT", "")
OIDC_OP_TOKEN_ENDPOINT = os.environ.get("OIDC_OP_TOKEN_ENDPOINT", "")
OIDC_OP_USER_ENDPOINT = os.environ.get("OIDC_OP_USER_ENDPOINT", "")
OIDC_OP_JWKS_ENDPOINT = os.environ.get("OIDC_OP_JWKS_ENDPOINT", "")
# The provider's issuer identifier (`issuer` in its discovery document): every id_token must name it.
OIDC_OP_ISSUER = os.environ.get("OIDC_OP_ISSUER", "")
_OIDC_REQUIRED = {
    "OIDC_RP_CLIENT_SECRET": OIDC_RP_CLIENT_SECRET,
    "OIDC_OP_AUTHORIZATION_ENDPOINT": OIDC_OP_AUTHORIZATION_ENDPOINT,
    "OIDC_OP_TOKEN_ENDPOINT": OIDC_OP_TOKEN_ENDPOINT,
    "OIDC_OP_USER_ENDPOINT": OIDC_OP_USER_ENDPOINT,
    "OIDC_OP_JWKS_ENDPOINT": OIDC_OP_JWKS_ENDPOINT,
    "OIDC_OP_ISSUER": OIDC_OP_ISSUER,
}
if OIDC_ENABLED:
    _missing = [name for name, value in _OIDC_REQUIRED.items() if not value]
    if _missing:
        raise ImproperlyConfigured(
            f"OIDC_RP_CLIENT_ID is set (sign-in through the SSO), so {', '.join(_missing)} must be "
            "set too: see docs/oidc.md"
        )
    for _name, _url in _OIDC_REQUIRED.items():
        if _name.startswith("OIDC_OP_"):
            _https_unless_debug(_name, _url)
elif any(_OIDC_REQUIRED.values()):
    raise ImproperlyConfigured(
        "OIDC_* endpoints or secret are set without OIDC_RP_CLIENT_ID: set it to turn on sign-in "
        "through the SSO (docs/oidc.md), or remove them"
    )
# The id_token's signature algorithm: the provider's keys come from its JWKS, so an asymmetric one.
OIDC_RP_SIGN_ALGO = os.environ.get("OIDC_RP_SIGN_ALGO", "RS256")
_OIDC_SIGN_ALGOS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512")
if OIDC_RP_SIGN_ALGO not in _OIDC_SIGN_ALGOS:
    raise ImproperlyConfigured(
        f"OIDC_RP_SIGN_ALGO must be one of {', '.join(_OIDC_SIGN_ALGOS)}, not {OIDC_RP_SIGN_ALGO!r}"
    )
OIDC_PROVIDER_NAME = os.environ.get("OIDC_PROVIDER_NAME", "the hospital's SSO")
# Providers whose directory sets people's email (e.g. Microsoft Entra ID) may not send
# email_verified; only then may a deployment set this false (docs/oidc.md).
OIDC_REQUIRE_VERIFIED_EMAIL = env_bool("OIDC_REQUIRE_VERIFIED_EMAIL", True)
# Seconds each call to the provider may take (the library waits forever otherwise).
OIDC_TIMEOUT = env_number("OIDC_TIMEOUT_SECONDS", 5)
# How the client secret goes to the token endpoint: in the form (client_secret_post) or, when
# true, as HTTP Basic (client_secret_basic), whichever the provider's registration says.
OIDC_TOKEN_USE_BASIC_AUTH = env_bool("OIDC_TOKEN_USE_BASIC_AUTH", False)
OIDC_RP_SCOPES = "openid email"
OIDC_CREATE_USER = False
OIDC_USE_NONCE = True
OIDC_USE_PKCE = True
OIDC_AUTHENTICATION_CALLBACK_URL = "admin:sso-callback"
if OIDC_ENABLED:
    AUTHENTICATION_BACKENDS.append("decisions.workspace.sign_in.StaffByEmailBackend")  # after axes

# Browser CDS clients (e.g. the CDS Hooks sandbox) need CORS on the CDS endpoints only; no origin
# is allowed unless listed.
CORS_ALLOWED_ORIGINS = env_list("CDS_HOOKS_CORS_ORIGINS", "")
CORS_URLS_REGEX = r"^/cds-services(/.*)?$"
CORS_PREFLIGHT_MAX_AGE = 3600

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# Security headers; HTTPS-only settings switch on with DEBUG off unless the deployment
# terminates TLS elsewhere and says so (SECURE_SSL_REDIRECT=false).
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0" if DEBUG else "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Joining the browsers' HSTS preload list is hard to undo, so it is the domain owner's explicit
# choice (SECURE_HSTS_PRELOAD=true), not a default; the check's reminder is silenced.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
# Django's check looks for its own XFrameOptionsMiddleware by name; ours (decisions.csp) sends the
# same DENY unless SMART EHRs may frame the app, and decisions.W002 checks that it is installed.
SILENCED_SYSTEM_CHECKS.append("security.W002")
# Load balancers probe health over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Scripts only from this origin or with the per-response nonce: no inline script, no eval
# (htmx runs with allowEval off). Styles from this origin only.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        # The EHRs of SMART_ISSUERS may show the app in a frame, no one else; X-Frame-Options
        # says the same (decisions/web/csp.py: DENY without issuers, left out with them).
        "frame-ancestors": SMART_FRAME_ANCESTORS or [NONE],
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
