#!/usr/bin/env bash
# The virtualenv the Airflow tests run in: apache-airflow and the cncf-kubernetes provider from PyPI,
# pinned by requirements.txt and constraints-py<major.minor>.txt beside this script, plus the
# podwarden-airflow package (editable, from integrations/airflow). Built once per machine under
#   ~/.cache/podwarden/airflow/py<X.Y>-airflow<A>-k8s<P>-<hash of the pins>/
# and a no-op when warm. Prints the venv's directory as its last line of stdout; progress goes
# to stderr.
#
#   bash scripts/airflow/venv.sh            build or reuse the venv
#   bash scripts/airflow/venv.sh --relock   resolve requirements.txt afresh (PyPI) and rewrite
#                                           the constraints file for this Python
# PODWARDEN_PYTHON picks the interpreter (default python3).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
python="${PODWARDEN_PYTHON:-python3}"
package="$root/integrations/airflow"

pyver="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
constraints="$here/constraints-py$pyver.txt"
say() { echo "airflow venv: $*" >&2; }

if [ "${1:-}" = "--relock" ]; then
  scratch="$(mktemp -d)"
  trap 'rm -rf "$scratch"' EXIT
  "$python" -m venv "$scratch/venv"
  "$scratch/venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2
  {
    echo "# Resolved from requirements.txt for Python $pyver by scripts/airflow/venv.sh --relock; do not edit."
    "$scratch/venv/bin/pip" freeze --all --exclude pip
  } >"$constraints"
  say "wrote $constraints ($(grep -vc '^#' "$constraints") pins)"
  exit 0
fi

if [ ! -f "$constraints" ]; then
  say "no $constraints for Python $pyver; set PODWARDEN_PYTHON to a Python with one" \
    "($(cd "$here" && ls constraints-py*.txt | tr '\n' ' ')) or run: bash scripts/airflow/venv.sh --relock"
  exit 1
fi

version_of() { sed -n "s/^$1==//p" "$here/requirements.txt"; }
airflow="$(version_of apache-airflow)"
provider="$(version_of apache-airflow-providers-cncf-kubernetes)"
pins="$(cat "$here/requirements.txt" "$constraints" | sha256sum | cut -c1-12)"
cache="${PODWARDEN_AIRFLOW_CACHE:-$HOME/.cache/podwarden/airflow}"
venv="$cache/py$pyver-airflow$airflow-k8s$provider-$pins"

# The editable install records which checkout it points at; another clone sharing the cache
# re-points it (seconds, no download) instead of testing someone else's source.
editable_points_here() {
  "$venv/bin/python" - "$package" <<'PY'
import json, sys
from importlib.metadata import distribution
try:
    url = json.loads(distribution("podwarden-airflow").read_text("direct_url.json") or "{}").get("url", "")
except Exception:
    sys.exit(1)
sys.exit(0 if url == "file://" + sys.argv[1] else 1)
PY
}
install_package() {
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps --no-build-isolation \
    -e "$package" >&2
}

if [ -f "$venv/.complete" ]; then
  editable_points_here || { say "re-pointing podwarden-airflow at $package"; install_package; }
  echo "$venv"
  exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [ ! -f "$venv/.complete" ]; then
  started=$(date +%s)
  say "building $venv (Airflow $airflow, provider $provider, Python $pyver)"
  # Built in place (venv scripts carry their absolute path); .complete marks it usable.
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    -r "$here/requirements.txt" -c "$constraints" >&2
  install_package
  "$venv/bin/pip" check --disable-pip-version-check >&2
  touch "$venv/.complete"
  say "built in $(($(date +%s) - started)) s"
fi
editable_points_here || install_package
echo "$venv"
