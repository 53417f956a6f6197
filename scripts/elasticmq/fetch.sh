#!/usr/bin/env bash
# Fetches ElasticMQ (an SQS-compatible server on the JVM) for the tests and the bench: the jars in
# artifacts.txt, downloaded over HTTPS from Maven Central, each checked against its sha256, into a
# per-machine cache outside the repository. A warm run prints the directory and does nothing else.
#
#   scripts/elasticmq/fetch.sh          fetch what the cache lacks; print the jar directory
#
# Cache root: PODWARDEN_ELASTICMQ_CACHE, else ${XDG_CACHE_HOME:-$HOME/.cache}/podwarden/elasticmq.
# Mirror: PODWARDEN_MAVEN_REPOSITORY (default https://repo1.maven.org/maven2).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
list="$here/artifacts.txt"
# Must match ELASTICMQ_VERSION in lib/devcluster/elasticmq.ts.
version=1.7.1
cache_root="${PODWARDEN_ELASTICMQ_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/podwarden/elasticmq}"
dir="$cache_root/$version"
repository="${PODWARDEN_MAVEN_REPOSITORY:-https://repo1.maven.org/maven2}"

say() { echo "elasticmq fetch: $*" >&2; }

if [[ -f "$dir/complete" ]] && cmp -s "$dir/complete" "$list"; then
  echo "$dir/lib"
  exit 0
fi

mkdir -p "$cache_root"
exec 9>"$cache_root/.lock"
flock 9
# Another run may have finished while this one waited for the lock.
if [[ -f "$dir/complete" ]] && cmp -s "$dir/complete" "$list"; then
  echo "$dir/lib"
  exit 0
fi

staging="$(mktemp -d "$cache_root/.staging.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
count=0
while read -r coordinates sha256; do
  [[ -z "$coordinates" || "$coordinates" == \#* ]] && continue
  IFS=: read -r group artifact artifact_version <<<"$coordinates"
  file="$artifact-$artifact_version.jar"
  url="$repository/${group//.//}/$artifact/$artifact_version/$file"
  curl --fail --silent --show-error --location --retry 3 --proto '=https' -o "$staging/$file" "$url" ||
    { say "could not download $url"; exit 1; }
  actual="$(sha256sum "$staging/$file" | cut -d' ' -f1)"
  if [[ "$actual" != "$sha256" ]]; then
    say "$file has sha256 $actual, artifacts.txt expects $sha256; refusing it"
    exit 1
  fi
  count=$((count + 1))
done <"$list"

rm -rf "$dir"
mkdir -p "$dir"
mv "$staging" "$dir/lib"
trap - EXIT
cp "$list" "$dir/complete"
say "fetched $count jars ($(du -sh "$dir/lib" | cut -f1)) into $dir/lib"
echo "$dir/lib"
