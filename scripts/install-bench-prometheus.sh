#!/usr/bin/env bash
# The Prometheus `make bench` measures: 3.5 LTS (Debian's prometheus and promtool 3.5.3,
# from Debian testing's pool), unpacked into .tools/ and put first on PATH by the Makefile.
# The tests keep Debian stable's 2.42 (scripts/install-tools.sh); the bench measures what
# production would run today. Checked against the SHA-256 of Debian's Packages index.
# Prints the bin directory.
set -euo pipefail
version=3.5.3+ds1-6
dir=".tools/prometheus-${version%%+*}"
if [ -x "$dir/bin/prometheus" ] && [ -x "$dir/bin/promtool" ]; then echo "$dir/bin"; exit 0; fi
arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
[ "$arch" = amd64 ] || { echo "install-bench-prometheus: only amd64 is pinned here (this is $arch)" >&2; exit 2; }
declare -A sha=(
  [prometheus]=593bcced02d8082688ea034dfc543848ad145c5f793aae5aad756c4dbdfa98da  # sha256 of the .deb
  [promtool]=1fb8bad7b932e7a44bccb12517f0bd96d5d5d83f15d3a1c0e2aa705cbf93fe90  # sha256 of the .deb
)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p "$dir/bin"
for pkg in prometheus promtool; do
  deb="${pkg}_${version}_${arch}.deb"
  echo "install-bench-prometheus: downloading $deb" >&2
  curl -fsSL -o "$tmp/$deb" "http://deb.debian.org/debian/pool/main/p/prometheus/$deb" || {
    echo "install-bench-prometheus: $deb is no longer in Debian's pool; bump version and the SHA-256 sums here from" \
         "http://deb.debian.org/debian/dists/testing/main/binary-amd64/Packages.xz" >&2; exit 2; }
  echo "${sha[$pkg]}  $tmp/$deb" | sha256sum --check --quiet - >&2
  dpkg-deb -x "$tmp/$deb" "$tmp/x"
  cp "$tmp/x/usr/bin/$pkg" "$dir/bin/$pkg"
done
echo "$dir/bin"
