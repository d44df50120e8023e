# syntax=docker/dockerfile:1
# The dynamo-plan image: the Planner service (`plan run`) and the online profiling Jobs
# (`profile --online`) that generate-dgd and `dgdr run` render. README "Deploy it".
#
#   docker build -t dynamo-plan:0.1.0 .                      # tag = the version in pyproject.toml
#
# Two stages: `build` builds the wheel and installs it into a virtualenv (/opt/dynamo-plan);
# the final stage copies only that virtualenv onto the same base, adds a non-root user and no
# build tools.
#
# Build arguments:
#   BASE          the Python base of both stages (default python:3.11-slim; any Debian-like
#                 image with python3 >= 3.11, its venv module, useradd and groupadd)
#   PIP_NO_INDEX  1: never reach a package index; every wheel comes from the `wheelhouse`
#                 build context (below). 0 (default): the index, as configured.
#   EXTRAS        the package's extras to install too, e.g. "prophet" or
#                 "prophet,aiconfigurator" (default: none)
# Build context `wheelhouse` (optional): a folder of wheels pip may use (--find-links), e.g.
#   pip wheel --wheel-dir wh . hatchling
#   docker buildx build --build-context wheelhouse=wh --build-arg PIP_NO_INDEX=1 -t ... .
# Without it the stage below is an empty folder. scripts/build_image.sh builds this way with
# buildah on a Debian root file system made by debootstrap, with no image registry at all.

ARG BASE=python:3.11-slim

# Replaced by `--build-context wheelhouse=DIR`; empty otherwise.
FROM scratch AS wheelhouse

FROM ${BASE} AS build
ARG PIP_NO_INDEX=0
ARG EXTRAS=""
ENV PIP_FIND_LINKS=/wheelhouse \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
COPY --from=wheelhouse / /wheelhouse/
WORKDIR /src
# Only what the wheel is made of (pyproject.toml [tool.hatch.build]); README.md is its readme.
COPY pyproject.toml README.md ./
COPY dynamo_plan/ dynamo_plan/
COPY schemas/ schemas/
COPY templates/ templates/
COPY sample_traces/ sample_traces/
# /opt/build has pip and builds the wheel (hatchling comes through build isolation, from the
# index or the wheelhouse); /opt/dynamo-plan gets the wheel and its dependencies, and no pip.
RUN python3 -m venv /opt/build \
    && /opt/build/bin/pip wheel --no-deps --wheel-dir /dist . \
    && python3 -m venv --without-pip /opt/dynamo-plan \
    && wheel=$(echo /dist/dynamo_plan-*.whl) \
    && /opt/build/bin/pip --python /opt/dynamo-plan/bin/python install "$wheel${EXTRAS:+[$EXTRAS]}" \
    && /opt/dynamo-plan/bin/dynamo-plan --version

FROM ${BASE}
LABEL org.opencontainers.image.title="dynamo-plan" \
      org.opencontainers.image.description="SLA planner and profiler for NVIDIA Dynamo deployments" \
      org.opencontainers.image.licenses="Apache-2.0"
# A fixed numeric user, so that a pod's `runAsNonRoot: true` can verify it.
RUN groupadd --gid 10001 dynamo-plan \
    && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/dynamo-plan \
       --shell /usr/sbin/nologin dynamo-plan
COPY --from=build /opt/dynamo-plan /opt/dynamo-plan
ENV PATH=/opt/dynamo-plan/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    MPLBACKEND=Agg \
    MPLCONFIGDIR=/tmp/matplotlib
USER 10001:10001
WORKDIR /home/dynamo-plan
ENTRYPOINT ["dynamo-plan"]
CMD ["--help"]
