# The chroma-journal KCL consumer: the Java MultiLangDaemon (from the official
# amazon-kclpy package) running the project's Python record processor.
# Build from the repository root:  docker build -t chroma-journal:TAG .

# python:3.11-slim pinned by tag; pin by digest (FROM python:3.11-slim-bookworm@sha256:...)
# in the registry you build from, where the digest can be looked up.

# --- build: wheels for the project and amazon-kclpy ---------------------------
# amazon-kclpy fetches the KCL jars from Maven Central while it is built, so
# this stage needs network access to Maven Central, plus Maven and a JDK.
FROM python:3.11-slim-bookworm AS build

RUN apt-get update \
    && apt-get install -y --no-install-recommends maven default-jdk-headless \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml README.md ./
COPY chroma_journal ./chroma_journal
COPY journal ./journal
COPY pipeline ./pipeline
COPY replay ./replay

RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir "amazon-kclpy==3.2.0" \
    && /opt/venv/bin/pip install --no-cache-dir . \
    && /opt/venv/bin/python -c "import amazon_kclpy, pathlib; jars = list((pathlib.Path(amazon_kclpy.__file__).parent / 'jars').glob('*.jar')); assert jars, 'amazon-kclpy installed without its KCL jars'"

# --- runtime -------------------------------------------------------------------
FROM python:3.11-slim-bookworm

# Debian's JRE post-install step writes man-page links; slim images lack the
# directory.
RUN mkdir -p /usr/share/man/man1 \
    && apt-get update \
    && apt-get install -y --no-install-recommends default-jre-headless \
    && rm -rf /var/lib/apt/lists/*

# A fixed non-root user; its uid/gid equal the EFS access point's posix user
# (infra/terraform: efs_posix_uid / efs_posix_gid).
RUN groupadd --system --gid 10001 chroma \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin chroma \
    && mkdir -p /var/lib/chroma-journal/staging /mnt/chroma \
    && chown 10001:10001 /var/lib/chroma-journal/staging /mnt/chroma

COPY --from=build /opt/venv /opt/venv
COPY --chmod=0755 infra/docker/entrypoint.sh /app/entrypoint.sh

# The task's root file system is read-only: HOME and every scratch file live
# under /tmp, a task-local volume. Declaring the staging directory a volume
# makes a Fargate bind mount there start with this directory's owner.
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CHROMA_ROOT=/mnt/chroma \
    STAGING_ROOT=/var/lib/chroma-journal/staging \
    LOG_FORMAT=json
VOLUME ["/var/lib/chroma-journal/staging", "/tmp"]

WORKDIR /app
USER 10001:10001

# The entry point execs the daemon, so PID 1 is the JVM once it runs.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["grep", "-qa", "MultiLangDaemon", "/proc/1/cmdline"]

ENTRYPOINT ["/app/entrypoint.sh"]
