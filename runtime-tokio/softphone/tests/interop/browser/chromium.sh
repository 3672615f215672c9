#!/bin/sh
# Starts Chromium for browser.mjs. Chromium honours only the last --disable-features=
# switch, and Playwright passes its own list: merge every one given into one switch, so
# the harness can add features to Playwright's list instead of replacing it.
# HARNESS_CHROMIUM names the binary (default /usr/bin/chromium, Debian's launcher).
exe="${HARNESS_CHROMIUM:-/usr/bin/chromium}"
features=""
n=$#
i=0
while [ "$i" -lt "$n" ]; do
  a="$1"
  shift
  i=$((i + 1))
  case "$a" in
    --disable-features=*) features="${features:+$features,}${a#--disable-features=}" ;;
    *) set -- "$@" "$a" ;;
  esac
done
if [ -n "$features" ]; then
  set -- "$@" "--disable-features=$features"
fi
exec "$exe" "$@"
