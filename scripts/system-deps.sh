#!/usr/bin/env bash
# The offline image path needs debootstrap; the unit test that runs `nginx -t` on rendered configs needs an
# nginx binary. Install them from apt where we may (root on a Debian-like host); elsewhere, say what is
# missing and go on: a laptop that can pull the official images needs neither.
set -u
missing=()
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} from apt"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts nginx on install where it can; the lab only wants the binary.
  (command -v service >/dev/null 2>&1 && service nginx stop >/dev/null 2>&1) || pkill -x nginx 2>/dev/null || true
else
  echo "note: ${missing[*]} not installed (needs root and apt); the offline base image and the host nginx -t test need them"
fi
exit 0
