# spendgate gateway image: docker build -t spendgate .   (docs/deployment.md)
# Three stages: the dashboard bundle (Node), the Python install, a slim non-root runtime.

# 1. The dashboard, built into src/spendgate/static (an empty folder when web/ is absent).
FROM node:22-bookworm-slim AS web
WORKDIR /build
COPY . .
RUN if [ -f web/package.json ]; then \
      cd web && npm ci --no-audit --no-fund && npm run build; \
    else \
      mkdir -p src/spendgate/static; \
    fi

# 2. spendgate and its dependencies in a virtual environment (the otel extra included).
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/spendgate
WORKDIR /build
COPY pyproject.toml README.md ./
COPY src/ src/
COPY --from=web /build/src/spendgate/static/ src/spendgate/static/
ARG EXTRAS=otel
RUN /opt/spendgate/bin/pip install ".[${EXTRAS}]"

# 3. The runtime: the venv only, an unprivileged user, data under /var/lib/spendgate.
FROM python:3.11-slim-bookworm
# tini as PID 1 reaps what a dead worker leaves (its writer process exits on its own).
RUN apt-get update && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/spendgate --create-home spendgate
COPY --from=build /opt/spendgate /opt/spendgate
ENV PATH=/opt/spendgate/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SPENDGATE_HOME=/var/lib/spendgate \
    SPENDGATE_HOST=0.0.0.0 \
    SPENDGATE_PORT=8080
WORKDIR /var/lib/spendgate
VOLUME ["/var/lib/spendgate"]
USER 10001:10001
EXPOSE 8080
# Ready = database reachable and migrated, writer running, not shutting down.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('SPENDGATE_PORT', '8080'), timeout=4)"]
STOPSIGNAL SIGTERM
# `serve` migrates the database, refuses unsafe settings, then serves.
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["spendgate", "serve"]
