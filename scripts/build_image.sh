#!/usr/bin/env bash
# Build the dynamo-plan image (Dockerfile) here, with no image registry and no index inside the
# build: Debian's buildah (chroot isolation, vfs storage) on a base root file system that
# debootstrap makes from Debian's packages, with the Python dependencies from a wheelhouse that
# pip builds on this host. README "Deploy it" gives the ordinary docker/buildah builds.
#
#   scripts/build_image.sh            # prints the image reference on its last stdout line
#
# Needs root, `buildah` and `debootstrap` (apt-get install buildah debootstrap), and a python3 of
# the same minor version as the base's (Debian bookworm: 3.11) for the wheelhouse.
# Environment:
#   IMAGE_CACHE   where the base tarball, the wheelhouse and buildah's storage live
#                 (default .cache/image in the checkout; gitignored)
#   IMAGE_TAG     the image reference (default dynamo-plan:<version in pyproject.toml>)
#   IMAGE_PYTHON  the python that builds the wheelhouse (default .venv/bin/python)
#   DEBIAN_MIRROR debootstrap's mirror (default http://deb.debian.org/debian)
#   IMAGE_REBUILD 1: build even when the image under IMAGE_TAG was built from the same inputs
# Cached between runs: the base tarball (made once, ~1.5 min; delete it to refresh), the base
# image in buildah's storage, and the wheelhouse (remade when the dependencies change).
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${IMAGE_CACHE:-$PWD/.cache/image}
PY=${IMAGE_PYTHON:-.venv/bin/python}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
buildah() { command buildah --storage-driver vfs --root "$CACHE/storage" --runroot "$CACHE/run" "$@"; }
# `scripts/build_image.sh buildah ARGS…`: buildah on this script's storage (run, inspect, rmi…)
if [ "${1:-}" = buildah ]; then shift; buildah "$@"; exit; fi
project() { "$PY" -c "import json, tomllib; print(json.dumps(tomllib.load(open('pyproject.toml', 'rb'))$1))"; }
VERSION=$(project '["project"]["version"]' | tr -d '"')
TAG=${IMAGE_TAG:-dynamo-plan:$VERSION}
BASE_TAR=$CACHE/bookworm-python3.tar.gz
BASE_IMAGE=localhost/dynamo-plan-base:bookworm
WHEELHOUSE=$CACHE/wheelhouse
PATH=$PATH:/usr/sbin:/sbin  # debootstrap
mkdir -p "$CACHE"
exec 9>"$CACHE/lock" && flock 9  # one build at a time on this cache
log() { echo "build_image $(date -u +%T): $*" >&2; }

# 1. The base: Debian bookworm (minbase) with python3 and its venv module, as a tarball.
if [ ! -s "$BASE_TAR" ]; then
  log "debootstrap bookworm into a temporary root (once; cached as $BASE_TAR)"
  root=$(mktemp -d "$CACHE/root.XXXXXX")
  trap 'rm -rf "$root"' EXIT
  debootstrap --variant=minbase --include=python3,python3-venv bookworm "$root" "$MIRROR" >&2
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar --numeric-owner -C "$root" -czf "$BASE_TAR.part" .
  mv "$BASE_TAR.part" "$BASE_TAR"
  rm -rf "$root"
  trap - EXIT
  buildah rmi -f "$BASE_IMAGE" >/dev/null 2>&1 || true
fi
# 2. The base image: the tarball as the one layer of an image (buildah's `from scratch`).
if ! buildah inspect --type image "$BASE_IMAGE" >/dev/null 2>&1; then
  log "import $BASE_TAR as $BASE_IMAGE"
  ctr=$(buildah from scratch)
  buildah add "$ctr" "$BASE_TAR" / >/dev/null
  buildah config --cmd '["python3"]' "$ctr"
  buildah commit -q "$ctr" "$BASE_IMAGE" >/dev/null
  buildah rm "$ctr" >/dev/null
fi
# 3. The wheelhouse: every dependency of the package, and hatchling to build it, as wheels.
stamp=$( (project '["project"]["dependencies"]'; project '["build-system"]["requires"]') | sha256sum)
if [ "$(cat "$WHEELHOUSE/.stamp" 2>/dev/null)" != "$stamp" ]; then
  log "pip wheel: the dependencies into $WHEELHOUSE"
  rm -rf "$WHEELHOUSE"
  "$PY" -m pip wheel -q --prefer-binary --wheel-dir "$WHEELHOUSE" . 'hatchling>=1.21' >&2
  rm -f "$WHEELHOUSE"/dynamo_plan-*.whl  # the image builds its own from the sources
  echo "$stamp" >"$WHEELHOUSE/.stamp"
fi
# 4. The image, offline: pip inside the build sees only the wheelhouse. Skipped when the image
#    under TAG was built from the same inputs (its label; IMAGE_REBUILD=1 builds anyway).
inputs=$( {
  find Dockerfile .dockerignore pyproject.toml README.md dynamo_plan schemas templates \
    sample_traces -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 | sort -z \
    | xargs -0 sha256sum
  echo "$stamp $(stat -c %s-%Y "$BASE_TAR")"
} | sha256sum | cut -c1-64)
label=io.github.dynamo-plan.build-inputs
built=$(buildah inspect --type image --format "{{index .OCIv1.Config.Labels \"$label\"}}" "$TAG" \
  2>/dev/null || true)
if [ "$built" = "$inputs" ] && [ "${IMAGE_REBUILD:-0}" != 1 ]; then
  log "$TAG is up to date (built from these inputs)"
  echo "$TAG"
  exit 0
fi
log "buildah bud $TAG (chroot isolation, base $BASE_IMAGE)"
buildah bud --isolation chroot --build-arg BASE="$BASE_IMAGE" --build-arg PIP_NO_INDEX=1 \
  --build-context wheelhouse="$WHEELHOUSE" --label "$label=$inputs" --tag "$TAG" \
  --file Dockerfile . >&2
buildah rmi --prune >/dev/null 2>&1 || true  # the image this tag named before, if any
log "built $TAG"
echo "$TAG"
