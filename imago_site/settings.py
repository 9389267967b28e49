"""Imago settings: one file, every knob read from the environment (docs/configuration.md) with
the helpers of imago_site/environment.py."""

import ipaddress
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from corsheaders.defaults import default_headers as cors_default_headers
from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

from imago_site.environment import (
    env,
    env_any,
    envbool,
    envint,
    envlist,
    envurl,
    local_secret_key,
    origin,
)
from kit import logs

BASE_DIR = Path(__file__).resolve().parent.parent


DEBUG = envbool("DEBUG", False)
SECRET_KEY = env("SECRET_KEY") or local_secret_key(BASE_DIR / ".secret_key")
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")

# HTTPS. Off by default so that `make run` works over plain HTTP; a production deployment turns
# them on (`manage.py check --deploy` says what is missing).
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", False)
# Probes and the Prometheus scraper talk plain HTTP inside the deployment's network.
SECURE_REDIRECT_EXEMPT = [r"^health", r"^metrics$"]
# Set only behind a proxy that always overwrites this header, e.g. X-Forwarded-Proto.
_proxy_ssl_header = env("SECURE_PROXY_SSL_HEADER", "")
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https") if _proxy_ssl_header else None
)
# Proxies (addresses or CIDRs) whose X-Forwarded-For is believed: behind them the client is the
# right-most hop not in this list (kit/addresses.py). Empty: the socket's peer is the client.
# Parsed here so that a mistyped entry stops the start.
TRUSTED_PROXIES = [
    str(ipaddress.ip_network(cidr, strict=False)) for cidr in envlist("TRUSTED_PROXIES", "")
]
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = envbool("SECURE_COOKIES", SECURE_SSL_REDIRECT)
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", False)

INSTALLED_APPS = [
    # django.contrib.admin, with the dashboard on its front page.
    "imago_site.apps.ImagoAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    # Swagger UI's and ReDoc's files, served from here: the docs work without internet.
    "drf_spectacular_sidecar",
    "django_rq",
    "django_filters",
    "axes",
    # CORS for browser clients on other origins (Robotoff's web apps): the block at the end.
    "corsheaders",
    "images",
    "annotations",
    "ai",
]

MIDDLEWARE = [
    # First, so that every answer (redirects, 404s, 500s) carries the request id and is counted.
    "kit.logs.RequestIdMiddleware",
    "kit.metrics.MetricsMiddleware",
    # Before anything that may answer on its own (redirects, static files, CSRF refusals), so
    # that those answers carry the CORS headers too and preflights are answered here.
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files in every mode (runserver with DEBUG off, gunicorn): hashed, compressed, cached.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "images.tenancy.auth.RateLimitHeadersMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it answers a locked-out login attempt.
    "axes.middleware.AxesMiddleware",
]

# --- Content-Security-Policy (django-csp) on every answer; it matters on the HTML pages (admin,
# RQ admin, question page, API docs). Scripts only from here, inline ones only with the
# response's nonce (templates: nonce="{{ request.csp_nonce }}"). Inline styles stay allowed: the
# admin, django-rq and Swagger UI set style attributes, which a nonce cannot cover.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, UNSAFE_INLINE],
        # Swagger UI draws icons from data: URIs; pictures of imported insights come from
        # their image host (the question page hides a picture the policy refuses).
        "img-src": [SELF, "data:", *envlist("CSP_IMG_SRC", "https://images.openfoodfacts.org")],
        "worker-src": [SELF, "blob:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# --- Admin login lockout (django-axes)
# First, so that a locked-out username and address are refused before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = envint("ADMIN_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=envint("ADMIN_LOGIN_COOLOFF_MINUTES", 15))
# A username from an address: one attacker cannot lock a colleague out from elsewhere, and
# guessing many usernames from one address is still counted per username.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "kit.addresses.client_address"
AXES_RESET_ON_SUCCESS = True
# No banner on every start of every process (each management command, each worker).
AXES_VERBOSE = False

ROOT_URLCONF = "imago_site.urls"
WSGI_APPLICATION = "imago_site.wsgi.application"

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
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"), conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Workers and the web server write concurrently: wait for the lock instead of failing at once.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # A file, not memory, so that tests can start real worker processes against it; one per
    # test run, so that two runs in one checkout do not share it.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / f".test-db-{os.getpid()}.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# plate_detect's REDIS_HOST / REDIS_PORT stand in when REDIS_URL is unset.
REDIS_URL = env("REDIS_URL") or (
    f"redis://{env('REDIS_HOST', '127.0.0.1')}:{env('REDIS_PORT', '6379')}/0"
)
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "imago",
        # The rate limiter fails open when Redis is down: it should learn that quickly.
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
}

RQ_JOB_TIMEOUT = envint("RQ_JOB_TIMEOUT", 600)
RQ_QUEUES = {
    name: {"URL": REDIS_URL, "DEFAULT_TIMEOUT": RQ_JOB_TIMEOUT}
    for name in ("high", "default", "low")
}
# Jobs are enqueued only once the transaction that created their rows commits (django-rq's default,
# spelled out because the pipeline relies on it).
# Our classes carry the request id into jobs and bind the job id on worker log lines.
RQ = {
    "COMMIT_MODE": "on_db_commit",
    "QUEUE_CLASS": "kit.workers.Queue",
    "WORKER_CLASS": "kit.workers.Worker",
}
RQ_SHOW_ADMIN_LINK = True

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
# Where `manage.py collectstatic` puts the files WhiteNoise serves (make run and the image do it).
STATIC_ROOT = Path(env("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(BASE_DIR / "media")))
MEDIA_URL = "/media/"
MODELS_DIR = Path(env("MODELS_DIR", str(BASE_DIR / "models")))

# Storage: the local filesystem by default; S3 or MinIO when STORAGE_BACKEND=s3. Each S3_* name
# also answers to the AWS_* name django-storages documents.
STORAGE_BACKEND = env("STORAGE_BACKEND", "local")
SIGNED_URL_TTL = int(env_any("SIGNED_URL_TTL", "AWS_QUERYSTRING_EXPIRE", default="3600"))
if STORAGE_BACKEND == "s3":
    from botocore.config import Config

    if not 1 <= SIGNED_URL_TTL <= 7 * 24 * 3600:
        # S3 refuses presigned links that live longer than a week: better to fail at start than
        # when someone follows a link.
        raise ImproperlyConfigured("SIGNED_URL_TTL must be 1 to 604800 seconds with S3 storage.")
    _s3_endpoint = env_any("S3_ENDPOINT_URL", "AWS_S3_ENDPOINT_URL")
    _default_storage = {
        "BACKEND": "images.library.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_any("S3_BUCKET", "AWS_STORAGE_BUCKET_NAME", default="imago"),
            "endpoint_url": _s3_endpoint or None,
            "public_endpoint_url": env("S3_PUBLIC_ENDPOINT_URL") or None,
            "region_name": env_any("S3_REGION", "AWS_S3_REGION_NAME", default="us-east-1"),
            # None lets boto3 find credentials itself (instance roles, ~/.aws). S3_ACCESS_KEY and
            # S3_SECRET_KEY: the FastAPI Imago's names.
            "access_key": env_any("S3_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID", "S3_ACCESS_KEY") or None,
            "secret_key": env_any("S3_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY", "S3_SECRET_KEY")
            or None,
            "client_config": Config(
                # MinIO serves buckets as paths (bucket.minio:9000 resolves nowhere); botocore's
                # guess for other endpoints has changed between releases, so say it.
                s3={
                    "addressing_style": env_any("S3_ADDRESSING_STYLE", "AWS_S3_ADDRESSING_STYLE")
                    or ("path" if _s3_endpoint else None)
                },
                signature_version="s3v4",
                # A storage that stops answering fails a request, and /health/detailed, in
                # seconds rather than boto3's minutes.
                connect_timeout=5,
                read_timeout=30,
                retries={"mode": "standard", "max_attempts": 3},
            ),
            "querystring_expire": SIGNED_URL_TTL,
            "file_overwrite": False,
            # Objects stay private (bucket policy decides); links to them are presigned.
            "default_acl": None,
        },
    }
    # Pages show thumbnails through presigned links to the storage's own host: the policy must
    # let them load (AWS without an endpoint: the bucket's virtual host under amazonaws.com).
    _links_origin = env("S3_PUBLIC_ENDPOINT_URL") or _s3_endpoint or "https://*.amazonaws.com"
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["img-src"].append(origin(_links_origin))
else:
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT)},
    }
STORAGES = {
    "default": _default_storage,
    # Names carry a hash of the content (cached for ever by browsers), with gzip and brotli copies.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "images.tenancy.auth.ApiKeyAuthentication",
        "images.compat.objectvision.auth.MemberJwtAuthentication",
        "rest_framework.authentication.SessionAuthentication",
        "images.compat.plate_detect.auth.KeylessAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["images.tenancy.auth.HasScopes"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_THROTTLE_CLASSES": ["images.tenancy.auth.ClientRateThrottle"],
    "DEFAULT_PAGINATION_CLASS": "kit.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "kit.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "kit.errors.api_exception_handler",
    # JSON with a depth limit (API_JSON_MAX_DEPTH); forms and multipart as DRF reads them.
    "DEFAULT_PARSER_CLASSES": [
        "kit.parsers.JSONParser",
        "kit.parsers.FormParser",
        "kit.parsers.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "UNAUTHENTICATED_USER": None,
}

# JSON bodies (and JSON text in form fields) nested deeper than this are refused, unparsed.
API_JSON_MAX_DEPTH = envint("API_JSON_MAX_DEPTH", 64)

SPECTACULAR_SETTINGS = {
    "TITLE": "Imago API",
    "DESCRIPTION": "Image processing for tenants: uploads, thumbnails, EXIF, AI and insights.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The areas operations are grouped under (kit.openapi.AREAS picks each one's).
    "TAGS": [
        {"name": "images", "description": "Upload, list, process and download images."},
        {"name": "detection", "description": "Object detection on stored or sent images."},
        {"name": "plates", "description": "Licence plates and faces covered, with webhooks."},
        {"name": "ai", "description": "Summaries of web pages and drafted tasks."},
        {"name": "insights", "description": "Robotoff-style insights: import, read, annotate."},
        {"name": "questions", "description": "Open insights asked as questions."},
        {"name": "clients", "description": "Tenants and their keys (admin scope)."},
    ],
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ImageStatusEnum": "images.models.ImageStatus",
        "StepStatusEnum": "images.models.StepStatus",
        # Detection jobs and plate tasks share these states.
        "JobStatusEnum": "images.models.DetectionJob.Status",
        "InsightImportStatusEnum": "annotations.models.InsightImport.Status",
        "QuestionStatusEnum": "annotations.serializers.QUESTION_STATUSES",
        "InsightListStatusEnum": "annotations.serializers.INSIGHT_STATUSES",
        "AnnotationStatusEnum": "annotations.serializers.ANNOTATION_STATUSES",
    },
}

# Uploads and images.
# plate_detect's MAX_FILE_SIZE_BYTES and MAX_FILES_PER_REQUEST are read when ours are unset.
MAX_UPLOAD_BYTES = int(env_any("MAX_UPLOAD_BYTES", "MAX_FILE_SIZE_BYTES", default=str(50 * 2**20)))
MAX_UPLOAD_FILES = int(env_any("MAX_UPLOAD_FILES", "MAX_FILES_PER_REQUEST", default="50"))
MAX_IMAGE_PIXELS = envint("MAX_IMAGE_PIXELS", 100_000_000)
# Memory one image may take while a step processes it, counted in decoded pixels
# (images.library.budget): larger images are refused at upload (413 over_memory_budget).
IMAGE_MEMORY_BUDGET_MB = envint("IMAGE_MEMORY_BUDGET_MB", 1024)
# Django would refuse a multi-file request before our own checks could name the file at fault.
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_UPLOAD_BYTES
DATA_UPLOAD_MAX_NUMBER_FILES = MAX_UPLOAD_FILES + 10
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
THUMBNAIL_SIZES = [int(size) for size in envlist("THUMBNAIL_SIZES", "256,1024")]
THUMBNAIL_QUALITY = envint("THUMBNAIL_QUALITY", 80)

# Pipeline.
# The steps every image goes through, in the order they are queued: the quick ones a gallery shows
# first, then the slow ones. Each app registers its own; leaving one out turns it off.
PIPELINE_STEPS = envlist(
    "PIPELINE_STEPS", "exif,thumbnails,ocr,detection,anonymize,vision,insights"
)
PIPELINE_RETRY_MAX = envint("PIPELINE_RETRY_MAX", 3)
PIPELINE_RETRY_INTERVALS = [int(s) for s in envlist("PIPELINE_RETRY_INTERVALS", "10,60,300")]
# Steps unfinished this long with no live RQ job are queued again (or failed): requeue_stuck_steps.
PIPELINE_STUCK_AFTER = envint("PIPELINE_STUCK_AFTER", 300)

# Detection: the built-in models (files under MODELS_DIR, fetched by `manage.py fetch_models`).
# Task, class names and input size are read from each file's metadata.
DETECTION_MODELS = {
    "coco": {"file": "yolov8n.onnx", "confidence": 0.25},
    "plates": {"file": "platedet.onnx", "confidence": 0.25},
}
DETECTION_DEFAULT_MODEL = env("DETECTION_DEFAULT_MODEL", "coco")
DETECTION_THREADS = envint("DETECTION_THREADS", 2)
DETECTION_SPIN = envbool("DETECTION_SPIN", False)
# cpu or cuda (plate_detect's PROCESSING_DEVICE too): cuda uses ONNX Runtime's CUDA provider when
# the installed onnxruntime has it (onnxruntime-gpu), else the CPU, with a warning.
DETECTION_DEVICE = env_any("DETECTION_DEVICE", "PROCESSING_DEVICE", default="cpu").lower()
if DETECTION_DEVICE not in ("cpu", "cuda"):
    raise ImproperlyConfigured(f"DETECTION_DEVICE must be cpu or cuda, not {DETECTION_DEVICE!r}.")
DETECTION_CONCURRENCY = envint("DETECTION_CONCURRENCY", 2)
DETECTION_TAG_CONFIDENCE = float(env("DETECTION_TAG_CONFIDENCE", "0.5"))
DETECTION_MAX_BATCH = envint("DETECTION_MAX_BATCH", 50)
# Tenants' ONNX uploads and `register_model`: ultralytics' largest YOLOv8 export (x) is ~260 MB.
DETECTION_MODEL_MAX_BYTES = envint("DETECTION_MODEL_MAX_BYTES", 300 * 1024 * 1024)

# Plate anonymisation (plate_detect-compatible tasks and the `anonymize` step).
ANONYMIZE_MODEL = env("ANONYMIZE_MODEL", "plates")
# Low on purpose: an uncovered plate is a privacy leak, a covered bumper sticker is not.
ANONYMIZE_CONFIDENCE = float(env("ANONYMIZE_CONFIDENCE", "0.05"))
ANONYMIZE_MARGIN = float(env("ANONYMIZE_MARGIN", "0.08"))
ANONYMIZE_MAX_SIDE = envint("ANONYMIZE_MAX_SIDE", 4096)
ANONYMIZE_QUALITY = envint("ANONYMIZE_QUALITY", 85)
ANONYMIZE_WEBP_METHOD = envint("ANONYMIZE_WEBP_METHOD", 2)
ANONYMIZE_MAX_REQUEST_BYTES = envint("ANONYMIZE_MAX_REQUEST_BYTES", 200 * 1024 * 1024)
TASK_TTL_HOURS = int(env_any("TASK_TTL_HOURS", "TASK_STORAGE_TTL_HOURS", default="48"))
# Outbound requests to tenants' URLs (kit/outbound.py): hosts or CIDRs allowed although
# loopback or private (an intranet). AI_FETCH_ALLOWED_HOSTS, the older name, is read as well.
OUTBOUND_ALLOWED_HOSTS = envlist("OUTBOUND_ALLOWED_HOSTS", "")
# A whole delivery (connect, send, read) ends by then: not per read.
WEBHOOK_TIMEOUT = float(env("WEBHOOK_TIMEOUT", "10"))
WEBHOOK_RETRY_MAX = envint("WEBHOOK_RETRY_MAX", 8)
WEBHOOK_RETRY_INTERVALS = [
    int(s) for s in envlist("WEBHOOK_RETRY_INTERVALS", "10,30,90,270,810,2430,7290,21870")
]
PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", "")

# Per-client rate limits (requests per minute) by plan; a client's own rate_limit overrides.
RATE_LIMIT_FREE = envint("RATE_LIMIT_FREE", 120)
RATE_LIMIT_PREMIUM = envint("RATE_LIMIT_PREMIUM", 1200)

# Logs: JSON lines in production, readable columns in development; Django's, RQ's and our own
# lines all go through structlog (kit/logs.py) and carry request_id / job_id.
LOG_FORMAT = env("LOG_FORMAT", "console" if DEBUG else "json")
LOG_LEVEL = env("LOG_LEVEL", "INFO")
LOGGING = logs.logging_config(LOG_FORMAT, LOG_LEVEL)
logs.configure_structlog()

# GET /metrics: a Bearer token, or no credentials from these networks (REMOTE_ADDR).
METRICS_TOKEN = env("METRICS_TOKEN", "")
# Parsed here so that a mistyped CIDR stops the start, not the first scrape.
METRICS_ALLOWED_NETWORKS = [
    str(ipaddress.ip_network(cidr, strict=False))
    for cidr in envlist("METRICS_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128")
]

# --- AI (ai app)
# The provider of vision, OCR fallback, summaries and task drafts: gemini, openrouter or local.
# Empty: gemini when GEMINI_API_KEY is set, else openrouter when OPENROUTER_API_KEY is, else local.
AI_PROVIDER = env("AI_PROVIDER", "")
GEMINI_API_KEY = env("GEMINI_API_KEY", "")
GEMINI_MODEL = env("GEMINI_MODEL", "gemini-2.5-flash")
GEMINI_BASE_URL = env("GEMINI_BASE_URL", "")
OPENROUTER_API_KEY = env("OPENROUTER_API_KEY", "")
OPENROUTER_MODEL = env("OPENROUTER_MODEL", "google/gemini-2.5-flash")
OPENROUTER_BASE_URL = env("OPENROUTER_BASE_URL", "https://openrouter.ai/api/v1")
AI_TIMEOUT = float(env("AI_TIMEOUT", "60"))
AI_RETRY_ATTEMPTS = envint("AI_RETRY_ATTEMPTS", 3)
AI_RETRY_INITIAL_DELAY = float(env("AI_RETRY_INITIAL_DELAY", "1"))
AI_LANGUAGE = env("AI_LANGUAGE", "en")
OCR_LANGUAGES = env("OCR_LANGUAGES", "eng+fra")
OCR_FALLBACK_CONFIDENCE = float(env("OCR_FALLBACK_CONFIDENCE", "0.6"))
# Same as OUTBOUND_ALLOWED_HOSTS (either allows a host for every outbound request).
AI_FETCH_ALLOWED_HOSTS = envlist("AI_FETCH_ALLOWED_HOSTS", "")
AI_FETCH_MAX_BYTES = envint("AI_FETCH_MAX_BYTES", 5 * 1024 * 1024)
AI_FETCH_TIMEOUT = float(env("AI_FETCH_TIMEOUT", "10"))
AI_FETCH_MAX_REDIRECTS = envint("AI_FETCH_MAX_REDIRECTS", 5)

# --- Insights (annotations app)
# Question routes count matching questions up to this many (an exact count is a full index scan;
# 1,000 rows cost about 2 ms on PostgreSQL, 10,000 about 20 ms).
INSIGHT_QUESTION_COUNT_CAP = envint("INSIGHT_QUESTION_COUNT_CAP", 1_000)
# Imported insights' relative source_image paths are served from here (Open Food Facts' images).
INSIGHT_SOURCE_IMAGE_BASE_URL = env(
    "INSIGHT_SOURCE_IMAGE_BASE_URL", "https://images.openfoodfacts.org/images/products"
)
# Anonymous callers of the question and annotation routes, per address (DRF rate syntax).
INSIGHT_ANONYMOUS_RATE = env("INSIGHT_ANONYMOUS_RATE", "300/min")

# --- Insight import (annotations app)
INSIGHT_IMPORT_BATCH_SIZE = envint("INSIGHT_IMPORT_BATCH_SIZE", 5000)
INSIGHT_IMPORT_MAX_BYTES = envint("INSIGHT_IMPORT_MAX_BYTES", 512 * 1024 * 1024)
# A longer line (or question) is a bad line, skipped without being read whole: what a worker holds.
INSIGHT_IMPORT_MAX_LINE_BYTES = envint("INSIGHT_IMPORT_MAX_LINE_BYTES", 1024 * 1024)
# A gzip file stops being read past this many inflated bytes (a bomb costs time, not memory).
INSIGHT_IMPORT_MAX_INFLATED_BYTES = envint("INSIGHT_IMPORT_MAX_INFLATED_BYTES", 4 * 1024**3)
# The errors kept on an import run (each bad line is still counted).
INSIGHT_IMPORT_MAX_ERRORS = envint("INSIGHT_IMPORT_MAX_ERRORS", 1000)
INSIGHT_IMPORT_JOB_TIMEOUT = envint("INSIGHT_IMPORT_JOB_TIMEOUT", 3600)

# --- Legacy names: FastAPI Imago (docs/coming-from-fastapi-imago.md)
# Its variables, each read only where Imago's own name is unset, converted to Imago's units.
# The operator's key for /auth/clients and nothing else; unset, those routes refuse every caller.
ADMIN_API_KEY = env("ADMIN_API_KEY")
# Its token secret signs Imago's (sessions, links), so that every process of a deployment agrees.
SECRET_KEY = env_any("SECRET_KEY", "JWT_SECRET_KEY") or SECRET_KEY
# The key of /files/signed/ links (images/library/signing.py): SECRET_KEY unless set.
SIGNED_URL_SECRET = env("SIGNED_URL_SECRET") or SECRET_KEY
if not env("MAX_UPLOAD_BYTES") and env("MAX_UPLOAD_SIZE_MB"):
    MAX_UPLOAD_BYTES = DATA_UPLOAD_MAX_MEMORY_SIZE = round(float(env("MAX_UPLOAD_SIZE_MB")) * 2**20)
if not env("PIPELINE_STEPS") and not envbool("OCR_ENABLED", True):
    PIPELINE_STEPS = [name for name in PIPELINE_STEPS if name != "ocr"]
if not env("PIPELINE_RETRY_MAX") and env("WORKER_MAX_TRIES"):
    # Its tries count the first run; RQ's Retry(max=) counts only the runs after it.
    PIPELINE_RETRY_MAX = max(envint("WORKER_MAX_TRIES", 1) - 1, 0)
# Its routes have their own schema (/openapi.json): Imago's leaves them out.
SPECTACULAR_SETTINGS["PREPROCESSING_HOOKS"] = [
    "images.compat.fastapi_imago.openapi.without_legacy_routes"
]

# --- Legacy names: Robotoff (docs/coming-from-robotoff.md)
# Robotoff's browser clients (Hunger Games, the Node SDK) call the question, insight, annotate and
# user statistics routes from their own origin with `credentials: "include"`: each origin listed
# here gets CORS answers naming it and allowing credentials; other origins get none. A mistyped
# origin (a path, no scheme) stops `migrate` and `check` (django-cors-headers' system checks).
CORS_ALLOWED_ORIGINS = envlist("CORS_ALLOWED_ORIGINS", "")
# True: the same origins on the whole API (/api/...), not only Robotoff's routes.
CORS_WHOLE_API = envbool("CORS_WHOLE_API", False)
CORS_URLS_REGEX = (
    r"^/api/.*$" if CORS_WHOLE_API else r"^/api/v1/(questions|insights|users/statistics)(/.*)?$"
)
CORS_ALLOW_CREDENTIALS = True
# A browser app that calls with one of Imago's keys sends it in X-API-Key.
CORS_ALLOW_HEADERS = [*cors_default_headers, "x-api-key"]

# --- Plate search: a second look inside each vehicle (images/plates/finding.py, find_plates)
# The COCO model that finds cars, motorcycles, buses and trucks, and its threshold.
ANONYMIZE_VEHICLE_MODEL = env("ANONYMIZE_VEHICLE_MODEL", "coco")
ANONYMIZE_VEHICLE_CONFIDENCE = float(env("ANONYMIZE_VEHICLE_CONFIDENCE", "0.25"))
# At most this many vehicles (the most confident) get the plate model again on their crop at full
# resolution: the work per photo is bounded. 0 turns the second look off.
ANONYMIZE_VEHICLE_CROPS = envint("ANONYMIZE_VEHICLE_CROPS", 8)
# Each side of a vehicle's crop grows by this fraction of its size (a plate on the bumper's edge).
ANONYMIZE_CROP_MARGIN = float(env("ANONYMIZE_CROP_MARGIN", "0.1"))
# The plate model's input side for a crop (a vehicle's plate is large in its crop: 320 finds more
# than 640 there, at a quarter of the work; bench/README.md), and its threshold on crops.
ANONYMIZE_CROP_SIZE = envint("ANONYMIZE_CROP_SIZE", 320)
ANONYMIZE_CROP_CONFIDENCE = float(env("ANONYMIZE_CROP_CONFIDENCE", "0.02"))
# A photo with no sure plate found yet: its vehicles are looked at closer, their quarters at this
# input side, at most this many windows a photo (0 turns it off; each costs about a full pass).
ANONYMIZE_ZOOM_WINDOWS = envint("ANONYMIZE_ZOOM_WINDOWS", 4)
ANONYMIZE_ZOOM_SIZE = envint("ANONYMIZE_ZOOM_SIZE", 640)
_crop_counts = (ANONYMIZE_VEHICLE_CROPS, ANONYMIZE_ZOOM_WINDOWS)
if not all(0 <= n <= 64 for n in _crop_counts) or not all(
    32 <= side <= 2048 for side in (ANONYMIZE_CROP_SIZE, ANONYMIZE_ZOOM_SIZE)
):
    raise ImproperlyConfigured(
        "ANONYMIZE_VEHICLE_CROPS and ANONYMIZE_ZOOM_WINDOWS must be 0-64, ANONYMIZE_CROP_SIZE "
        "and ANONYMIZE_ZOOM_SIZE 32-2048 (work per photo)."
    )

# --- Review of covered plates (never silent; the admin's review queue)
# A plate covered below this confidence marks its result needs_review (low_confidence).
ANONYMIZE_REVIEW_CONFIDENCE = float(env("ANONYMIZE_REVIEW_CONFIDENCE", "0.3"))
# At most this many boxes in one operator's correction (kept and drawn together).
ANONYMIZE_REVIEW_MAX_BOXES = envint("ANONYMIZE_REVIEW_MAX_BOXES", 100)

# --- Legacy names: plate_detect (docs/coming-from-plate-detect.md). Its aliases of our settings are
# read where ours are defined (REDIS_URL, MAX_UPLOAD_*, TASK_TTL_HOURS, DETECTION_DEVICE).
# The tenant (slug) that requests without credentials act as, on plate_detect's routes only;
# empty: they answer 401 like any other.
PLATE_DETECT_CLIENT = env("PLATE_DETECT_CLIENT", "")


# That tenant's webhook targets when it has set none itself; the operator's, so they may be
# internal (the tenant outbound guard does not apply to them).
BACKEND_UPLOAD_URL = envurl("BACKEND_UPLOAD_URL")
BACKEND_CALLBACK_URL = envurl("BACKEND_CALLBACK_URL")

# Legacy names: ObjectVision (images.compat.objectvision; docs/coming-from-objectvision.md).
# Its users log in (email and password, Argon2 hashes) and call with `Authorization: Bearer <JWT>`.
INSTALLED_APPS += ["rest_framework_simplejwt.token_blacklist", "images.compat.objectvision"]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    # Older hashes (the admin's users) still check, and are rehashed with Argon2 when they do.
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
SPECTACULAR_SETTINGS["TAGS"].append(
    {"name": "users", "description": "Users who log in (ObjectVision's): signup, tokens."}
)
OBJECTVISION_SIGNUP = envbool("OBJECTVISION_SIGNUP", False)
# Signup, login and refresh per client address (DRF rate syntax).
OBJECTVISION_AUTH_RATE = env("OBJECTVISION_AUTH_RATE", "10/min")
JWT_ALGORITHM = env("JWT_ALGORITHM", "HS256")
if JWT_ALGORITHM not in ("HS256", "HS384", "HS512"):
    raise ImproperlyConfigured(f"JWT_ALGORITHM must be HS256, HS384 or HS512: {JWT_ALGORITHM!r}.")
SIMPLE_JWT = {
    "SIGNING_KEY": env_any("JWT_SIGNING_KEY", "JWT_SECRET_KEY", default=SECRET_KEY),
    "ALGORITHM": JWT_ALGORITHM,
    "ACCESS_TOKEN_LIFETIME": timedelta(
        minutes=int(env_any("JWT_ACCESS_MINUTES", "ACCESS_TOKEN_EXPIRE_MINUTES", default="30"))
    ),
    "REFRESH_TOKEN_LIFETIME": timedelta(
        days=int(env_any("JWT_REFRESH_DAYS", "REFRESH_TOKEN_EXPIRE_DAYS", default="7"))
    ),
    # `sub` carries the user's id (a UUID, the Django username of ObjectVision's users).
    "USER_ID_FIELD": "username",
    "USER_ID_CLAIM": "sub",
    "AUTH_HEADER_TYPES": ("Bearer",),
    "UPDATE_LAST_LOGIN": False,
}
# The backend's public base URL (PUBLIC_BASE_URL's ObjectVision name).
PUBLIC_BASE_URL = PUBLIC_BASE_URL or env("API_BASE_URL")
# The confidence POST /detect/image and /detect/batch use when a request gives none; empty: the
# model's own.
_detection_confidence = env_any("DETECTION_CONFIDENCE", "CONFIDENCE_THRESHOLD")
DETECTION_CONFIDENCE = float(_detection_confidence) if _detection_confidence else None

# Closing the legacy contracts' gaps (issue #17 follow-up; docs/coming-from-*.md).
# How long GET /api/v1/questions/unanswered keeps its answer per tenants and query (0: not kept).
INSIGHT_UNANSWERED_CACHE_SECONDS = envint("INSIGHT_UNANSWERED_CACHE_SECONDS", 60)
