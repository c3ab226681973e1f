# okrsync as a container service: `okrsync run` measuring the OKRs in /etc/okrsync.
#   docker build -t okrsync .
#   docker run -v ./config:/etc/okrsync:ro -v okrsync-data:/data -p 9464:9464 okrsync
# Secrets come from the environment (OKRSYNC_<SOURCE>_TOKEN, or *_FILE for mounted secrets).
# A PostgreSQL store: OKRSYNC_DB=postgresql://user@host:5432/db, OKRSYNC_DB_PASSWORD(_FILE).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python3 -m venv /opt/okrsync
WORKDIR /src
COPY pyproject.toml README.md ./
COPY okrsync ./okrsync
COPY connectors ./connectors
RUN /opt/okrsync/bin/pip install ".[postgres]" \
    && /opt/okrsync/bin/okrsync --version

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="okrsync" \
      org.opencontainers.image.description="Keeps OKRs true by measuring key results from Jira, GitHub and Prometheus on a schedule" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="0.1.0"
RUN useradd --uid 10001 --user-group --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin okrsync \
    && mkdir -p /data /etc/okrsync \
    && chown okrsync:okrsync /data
COPY --from=build /opt/okrsync /opt/okrsync
ENV PATH=/opt/okrsync/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    OKRSYNC_CONFIG=/etc/okrsync \
    OKRSYNC_DB=/data/okrsync.db \
    OKRSYNC_LISTEN=0.0.0.0:9464 \
    OKRSYNC_LOG_FORMAT=json
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; port = os.environ.get('OKRSYNC_LISTEN', ':9464').rpartition(':')[2]; urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4)"]
ENTRYPOINT ["okrsync"]
CMD ["run"]
