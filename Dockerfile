# Retain production image: gunicorn web, Celery worker and beat all run from it (see docker-compose.yml).
# Not built on the development machines of this project (no Docker engine there); see README.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RETAIN_ENV=production \
    RETAIN_VAR_DIR=/app/var \
    WHITENOISE_USE_FINDERS=0

WORKDIR /app
RUN useradd --create-home --uid 1000 retain

# Dependencies first, from pyproject.toml alone, so that a code change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; \
open('/tmp/requirements.txt', 'w').write('\n'.join(deps))" \
    && pip install -r /tmp/requirements.txt

COPY . .
# Editable, so that BASE_DIR stays /app (templates/ and static/ live beside the packages).
# Static files are collected into the image (hashed and compressed, served by WhiteNoise); the
# throwaway values only let the production settings load, nothing is written to a database.
RUN pip install --no-deps -e . \
    && SECRET_KEY=collectstatic-only ALLOWED_HOSTS=localhost DATABASE_URL=sqlite:////tmp/collectstatic.sqlite3 \
       python manage.py collectstatic --noinput \
    && rm -f /tmp/collectstatic.sqlite3 \
    && mkdir -p /app/var/media && chown -R retain /app/var

USER retain
EXPOSE 8000
CMD ["sh", "-c", "exec gunicorn -c python:cs_platform.gunicorn_conf cs_platform.wsgi:application --bind 0.0.0.0:8000 --workers ${WEB_CONCURRENCY:-3} --forwarded-allow-ips=${FORWARDED_ALLOW_IPS:-127.0.0.1}"]
