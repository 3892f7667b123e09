#!/usr/bin/env bash
# Installs the real Prometheus tools the tests run (promtool, prometheus, amtool,
# alertmanager) and the second engine (victoria-metrics, vmalert: tests/test_engines.py)
# from the distribution's packages, only where they are missing.
set -euo pipefail
missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v amtool >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
{ command -v victoria-metrics >/dev/null 2>&1 && command -v vmalert >/dev/null 2>&1; } || missing+=(victoria-metrics)
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing ${missing[*]} (Debian packages)" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
