# Confrere API image: slim Python, non-root, migrations at start, no build tools in the final stage.
# Build: docker build -t confrere .   Run with PostgreSQL: compose.yaml (README, "Deployment").

# The web client (web/, served at /app): built with esbuild from package-lock.json.
FROM node:20-slim AS web
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/build.mjs ./
COPY web/public ./public
COPY web/src ./src
RUN node build.mjs

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir .

FROM python:3.11-slim
# CONFRERE_SECRET_KEY and CONFRERE_AUDIT_LOG_ORIGIN have no usable default in production: the container
# stops at start with a one-line error naming what is missing. CONFRERE_WORKERS defaults to 1 on SQLite
# (one writer) and 2 on PostgreSQL (CONFRERE_DATABASE_URL).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CONFRERE_ENVIRONMENT=production \
    CONFRERE_DATA_DIR=/var/lib/confrere \
    CONFRERE_ALEMBIC_INI=/srv/confrere/alembic.ini \
    CONFRERE_WEB_DIR=/srv/confrere/web
RUN useradd --system --uid 10001 --home-dir /var/lib/confrere --create-home confrere
COPY --from=build /opt/venv /opt/venv
WORKDIR /srv/confrere
COPY alembic.ini ./
COPY alembic ./alembic
COPY --from=web /web/dist ./web
USER confrere
# The SQLite database (when no CONFRERE_DATABASE_URL), the server's keys and the attachment blobs: a new
# container on the same volume keeps them. Keep keys/ readable by the service user only.
VOLUME ["/var/lib/confrere"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2)"
CMD ["sh", "-c", "confrere migrate && exec confrere serve --host 0.0.0.0 --port 8000"]
