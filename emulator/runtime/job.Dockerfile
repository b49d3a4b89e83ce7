# Generic job / scoring image for amlemu.
#
# Offline (default): FROM the base image built by docker/base/build-base.sh.
# With registry access: docker build --build-arg BASE=python:3.11-slim ...
#
# The build context must contain wheels/ with the wheels to install and
# wheels/requirements.txt naming them; the caller produces both on the host
# (`pip download --only-binary=:all: --dest <context>/wheels ...`), because pip
# inside a build container cannot reach a package index on these machines.
ARG BASE=amlemu/base:bookworm
FROM ${BASE}

ENV LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/amlemu/venv \
    PATH=/opt/amlemu/venv/bin:$PATH

USER root

# The offline base already has aml (uid 1000); python:3.11-slim and friends do not.
RUN id aml >/dev/null 2>&1 || useradd -m -u 1000 -s /bin/bash aml

COPY wheels/ /tmp/wheels/
RUN python3 -m venv /opt/amlemu/venv \
 && /opt/amlemu/venv/bin/pip install --no-index --find-links /tmp/wheels -r /tmp/wheels/requirements.txt \
 && rm -rf /tmp/wheels

USER aml
WORKDIR /home/aml
CMD ["python"]
