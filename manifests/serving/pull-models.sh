#!/bin/sh
# Mirror <SERVING_URI>/<MODEL_NAME> into /staging, then publish each complete version (saved_model.pb present)
# into /models/<MODEL_NAME>/<version> by an atomic rename. TF Serving ignores non-numeric directory names, so
# it never sees a partial copy.
set -u
src="${SERVING_URI}/${MODEL_NAME}"
staging="${STAGING_DIR:-/staging}/${MODEL_NAME}"
target="${MODELS_DIR:-/models}/${MODEL_NAME}"
mkdir -p "$staging" "$target"
while true; do
  modelopsx sync "$src" "$staging" --quiet || echo "model-puller: sync from $src failed; retrying in ${POLL_SECONDS}s"
  for dir in "$staging"/*/; do
    [ -d "$dir" ] || continue
    version=$(basename "$dir")
    case "$version" in *[!0-9]*) continue ;; esac
    [ -f "$dir/saved_model.pb" ] || continue
    [ -d "$target/$version" ] && continue
    rm -rf "$target/.incoming-$version"
    cp -r "$dir" "$target/.incoming-$version" && mv "$target/.incoming-$version" "$target/$version" \
      && echo "model-puller: published version $version"
  done
  [ "${ONCE:-0}" = "1" ] && exit 0  # one pass, for tests and manual catch-up
  sleep "${POLL_SECONDS}"
done
