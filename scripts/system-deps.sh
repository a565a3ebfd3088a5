#!/usr/bin/env bash
# The offline image path needs debootstrap; the unit test that runs `nginx -t` on rendered configs needs an
# nginx binary; the integration test of report.html needs chromium; the test of `lab images push` needs a
# registry of its own on 127.0.0.1 (Debian's docker-registry; it is not started as a service). Install
# them from apt where we may (root on a Debian-like host); elsewhere, say what is missing and go on: a
# laptop that can pull the official images needs none of them.
set -u
missing=()
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v docker-registry >/dev/null 2>&1 || [ -x /usr/bin/docker-registry ] || missing+=(docker-registry)
# The report test opens report.html in headless Chromium. Debian packages it; Ubuntu's package is only a
# stub that installs a snap, so it is asked for on Debian itself.
if ! command -v chromium >/dev/null 2>&1 && grep -qs '^ID=debian' /etc/os-release; then
  missing+=(chromium)
fi
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} from apt"
  export DEBIAN_FRONTEND=noninteractive
  # Debian starts nginx on install where it can; the lab only wants the binary. A policy-rc.d that says
  # "no" (exit 101) keeps the package from starting it, without touching any nginx already running.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "note: ${missing[*]} not installed (needs root and apt); the offline base image, the host nginx -t test, the report's Chromium test and the registry test need them"
fi
exit 0
