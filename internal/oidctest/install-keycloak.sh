#!/usr/bin/env bash
# Installs the OpenID provider Velo's identity tests run on loopback (internal/oidctest):
# Keycloak's server distribution, org.keycloak:keycloak-quarkus-dist, fetched from Maven
# Central with Maven and unpacked into the cache. Prints the folder (VELO_KEYCLOAK_HOME).
# Needs Maven and a JDK 17 or newer (Debian: maven, openjdk-17-jre-headless).
set -euo pipefail
version="${VELO_KEYCLOAK_VERSION:-26.4.7}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/velo"
home="$cache/keycloak-$version"
if [ -x "$home/bin/kc.sh" ]; then
  echo "$home"
  exit 0
fi
mkdir -p "$cache"
artifact="org.keycloak:keycloak-quarkus-dist:$version:zip"
mvn -q -B -Dstyle.color=never dependency:get -Dartifact="$artifact" -Dtransitive=false >&2
repo="$HOME/.m2/repository" # Maven's default local repository
zip="$repo/org/keycloak/keycloak-quarkus-dist/$version/keycloak-quarkus-dist-$version.zip"
tmp="$(mktemp -d "$cache/keycloak-unpack.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
# Debian's unzip, else Python's zipfile (both keep kc.sh's mode only with unzip: chmod after).
if command -v unzip >/dev/null; then
  unzip -q "$zip" -d "$tmp"
else
  python3 -m zipfile -e "$zip" "$tmp"
fi
chmod +x "$tmp/keycloak-$version/bin/"*.sh
mv "$tmp/keycloak-$version" "$home"
echo "$home"
