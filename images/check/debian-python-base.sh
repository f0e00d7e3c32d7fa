#!/bin/sh
# Make a stand-in for the official python:3.11 base image from Debian packages (Debian bookworm's python3.11)
# and import it into podman as IMAGE. Used by `make image-check` on machines that cannot pull the official
# base. Idempotent: does nothing when IMAGE already exists. Needs root (debootstrap) and podman.
# Usage: debian-python-base.sh IMAGE [MIRROR]
set -eu
image="${1:?usage: $0 IMAGE [MIRROR]}"
mirror="${2:-http://deb.debian.org/debian}"
if podman image exists "$image"; then
  echo "image-check: stand-in base $image is cached"
  exit 0
fi
root=$(mktemp -d /var/tmp/modelopsx-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "image-check: building the stand-in base $image with debootstrap (bookworm, a few minutes)"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 \
  || { tail -20 "$root.log" >&2; rm -f "$root.log"; exit 1; }
rm -f "$root.log"
# What the official image provides: python (as `python` too), venv with pip, CA certificates. Installed by
# apt inside the root rather than by debootstrap, whose resolver does not follow virtual packages.
chroot "$root" apt-get update -q >/dev/null
chroot "$root" /usr/bin/env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  python3.11 python3.11-venv python-is-python3 ca-certificates >/dev/null
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | podman import --change 'CMD ["python3"]' --change 'ENV LANG=C.UTF-8' - "$image" >/dev/null
echo "image-check: stand-in base $image ready"
