# Confrere API image: slim Python, non-root, migrations at start, no build tools in the final stage.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir .

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CONFRERE_ENVIRONMENT=production \
    CONFRERE_DATA_DIR=/var/lib/confrere \
    CONFRERE_ALEMBIC_INI=/srv/confrere/alembic.ini
RUN useradd --system --uid 10001 --home-dir /var/lib/confrere --create-home confrere
COPY --from=build /opt/venv /opt/venv
WORKDIR /srv/confrere
COPY alembic.ini ./
COPY alembic ./alembic
USER confrere
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2)"
CMD ["sh", "-c", "confrere migrate && exec confrere serve --host 0.0.0.0 --port 8000"]
