#!/usr/bin/env bash
# Builds the local Kubernetes control plane the cluster tests and the demo run on: etcd,
# kube-apiserver, kube-scheduler and KWOK, from their official Go modules through the Go module
# proxy. The binaries go into a per-machine cache outside the repository, keyed by the versions in
# versions.env, so they are built once and reused; a warm run prints nothing and takes a moment.
#
#   scripts/controlplane/build.sh            build what the cache lacks (quiet when nothing is missing)
#   scripts/controlplane/build.sh --where    print the directory the binaries are taken from
#   scripts/controlplane/build.sh --force    rebuild the cached set from scratch
#
# Instead of building, point at binaries you already have:
#   PODWARDEN_CONTROLPLANE_BIN=dir   a directory with etcd, kube-apiserver, kube-scheduler and kwok
#   KUBEBUILDER_ASSETS=dir           envtest assets: etcd and kube-apiserver are taken from there,
#                                    kube-scheduler and kwok still come from the cache (built here)
# Cache root: PODWARDEN_CONTROLPLANE_CACHE, else ${XDG_CACHE_HOME:-$HOME/.cache}/podwarden/controlplane.
# Go's own module and build caches stay where Go keeps them by default, outside the repository.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

mode=build
case "${1:-}" in
  '') ;;
  --where) mode=where ;;
  --force) mode=force ;;
  -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "controlplane build: unknown option '$1' (try --help)" >&2; exit 2 ;;
esac

say() { echo "controlplane build: $*" >&2; }

go_os() { case "$(uname -s)" in Linux) echo linux ;; Darwin) echo darwin ;; *) uname -s | tr 'A-Z' 'a-z' ;; esac; }
go_arch() { case "$(uname -m)" in x86_64 | amd64) echo amd64 ;; aarch64 | arm64) echo arm64 ;; *) uname -m ;; esac; }

# Must match cacheKey() in lib/devcluster/binaries.ts.
key="k8s-${KUBERNETES_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_$(go_os)-$(go_arch)"
cache_root="${PODWARDEN_CONTROLPLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/podwarden/controlplane}"
cache_dir="$cache_root/$key"

if [[ -n "${PODWARDEN_CONTROLPLANE_BIN:-}" ]]; then
  missing=()
  for b in etcd kube-apiserver kube-scheduler kwok; do
    [[ -x "$PODWARDEN_CONTROLPLANE_BIN/$b" ]] || missing+=("$b")
  done
  if ((${#missing[@]})); then
    say "PODWARDEN_CONTROLPLANE_BIN=$PODWARDEN_CONTROLPLANE_BIN lacks executable ${missing[*]}." \
      "Put them there, or unset it to build them into $cache_dir."
    exit 1
  fi
  [[ $mode == where ]] && echo "$PODWARDEN_CONTROLPLANE_BIN"
  exit 0
fi

if [[ $mode == where ]]; then
  echo "$cache_dir"
  exit 0
fi

# Which binaries this machine still needs built.
needed=()
for b in etcd kube-apiserver; do
  if [[ -n "${KUBEBUILDER_ASSETS:-}" && -x "${KUBEBUILDER_ASSETS}/$b" ]]; then continue; fi
  [[ $mode != force && -x "$cache_dir/$b" ]] || needed+=("$b")
done
for b in kube-scheduler kwok; do
  [[ $mode != force && -x "$cache_dir/$b" ]] || needed+=("$b")
done
((${#needed[@]})) || exit 0

want_go="${KUBERNETES_GO:-1.26.0}" # the `go` line of k8s.io/kubernetes, etcd and kwok at these versions
# Go's own installer puts it here without touching PATH.
if ! command -v go > /dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then PATH="/usr/local/go/bin:$PATH"; fi
if ! command -v go > /dev/null 2>&1; then
  say "cannot build ${needed[*]}: no Go toolchain on PATH."
  say "Either install Go $want_go or newer (https://go.dev/doc/install; the build needs the Go module proxy),"
  say "or set PODWARDEN_CONTROLPLANE_BIN to a directory holding etcd, kube-apiserver, kube-scheduler and kwok"
  say "(Kubernetes ${KUBERNETES_VERSION#v}-compatible; kwok ${KWOK_VERSION}), or KUBEBUILDER_ASSETS for etcd and kube-apiserver."
  exit 1
fi
have_go="$(go env GOVERSION)"
have_go="${have_go#go}"
if [[ "$(printf '%s\n%s\n' "$want_go" "${have_go%%[-+ ]*}" | sort -V | head -n1)" != "$want_go" ]]; then
  say "cannot build ${needed[*]}: Go $have_go is older than the $want_go these modules declare."
  say "Install Go $want_go or newer, or set PODWARDEN_CONTROLPLANE_BIN to prebuilt binaries (see --help)."
  exit 1
fi

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod -trimpath"
# The build reads the environment's GOPROXY/GOMODCACHE/GOCACHE, so a user's mirror or caches apply.

mkdir -p "$cache_root"
exec 9> "$cache_root/.lock-$key"
if command -v flock > /dev/null 2>&1 && ! flock -n 9; then
  say "another build of $key is running; waiting for it"
  flock 9
  # It may have built everything we need.
  still=()
  for b in "${needed[@]}"; do [[ -x "$cache_dir/$b" ]] || still+=("$b"); done
  ((${#still[@]})) || exit 0
  needed=("${still[@]}")
fi

work="$cache_root/.build-$key"
rm -rf "$work"
mkdir -p "$work/out" "$cache_dir"
trap 'rm -rf "$work"' EXIT
started=$SECONDS
say "building ${needed[*]} into $cache_dir (first time on this machine; several minutes on 2 cores)"

render() { # template -> file, filling the version placeholders
  sed -e "s/@KUBERNETES_VERSION@/$KUBERNETES_VERSION/g" -e "s/@ETCD_VERSION@/$ETCD_VERSION/g" \
    -e "s/@GO_DIRECTIVE@/$want_go/g" "$1" > "$2"
}
wants() { local b; for b in "${needed[@]}"; do [[ $b == "$1" ]] && return 0; done; return 1; }

build_kubernetes() {
  local dir="$work/kubernetes" targets=() kmod staging_version build_date ldflags pkg
  wants kube-apiserver && targets+=(k8s.io/kubernetes/cmd/kube-apiserver)
  wants kube-scheduler && targets+=(k8s.io/kubernetes/cmd/kube-scheduler)
  ((${#targets[@]})) || return 0
  mkdir -p "$dir"
  render "$here/wrappers/kubernetes/go.mod.tmpl" "$dir/go.mod"
  # Staging modules are published as v0.Y.Z for Kubernetes v1.Y.Z.
  staging_version="v0.${KUBERNETES_VERSION#v1.}"
  kmod="$(cd "$dir" && go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
  [[ -f "$kmod" ]] || { say "could not fetch k8s.io/kubernetes@$KUBERNETES_VERSION's go.mod"; return 1; }
  {
    echo
    echo '// Generated from the replace block of k8s.io/kubernetes@'"$KUBERNETES_VERSION"'/go.mod.'
    echo 'replace ('
    sed -n 's#^[[:space:]]*\(k8s\.io/[A-Za-z0-9._-]*\) => \./staging/.*#\1#p' "$kmod" | while read -r mod; do
      case "$mod" in
        # The sample-* staging modules are examples that no component links, and not every patch
        # release publishes them; an empty local module satisfies the requirement.
        k8s.io/sample-*)
          mkdir -p "$dir/stub/${mod#k8s.io/}"
          echo "module $mod" > "$dir/stub/${mod#k8s.io/}/go.mod"
          echo "	$mod => ./stub/${mod#k8s.io/}"
          ;;
        *) echo "	$mod => $mod $staging_version" ;;
      esac
    done
    echo ')'
  } >> "$dir/go.mod"
  (cd "$dir" && go mod tidy)
  build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  # What hack/lib/version.sh stamps, so /version and the components' --version are sane.
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1"
    ldflags+=" -X $pkg.gitMinor=$(echo "${KUBERNETES_VERSION#v1.}" | cut -d. -f1)"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
  done
  (cd "$dir" && go build -ldflags "$ldflags" -o "$work/out/" "${targets[@]}")
}

build_etcd() {
  wants etcd || return 0
  local dir="$work/etcd"
  mkdir -p "$dir"
  render "$here/wrappers/etcd/go.mod.tmpl" "$dir/go.mod"
  cp "$here/wrappers/etcd/main.go" "$dir/main.go"
  (cd "$dir" && go mod tidy && go build -ldflags "-s -w" -o "$work/out/etcd" .)
}

build_kwok() {
  wants kwok || return 0
  # KWOK's go.mod has no replace directives, so it installs by version directly.
  GOBIN="$work/out" go install -ldflags "-s -w" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
}

build_etcd
build_kwok
build_kubernetes
for b in "${needed[@]}"; do
  [[ -x "$work/out/$b" ]] || { say "build finished without producing $b"; exit 1; }
  mv -f "$work/out/$b" "$cache_dir/$b"
done
{
  echo "KUBERNETES_VERSION=$KUBERNETES_VERSION"
  echo "ETCD_VERSION=$ETCD_VERSION"
  echo "KWOK_VERSION=$KWOK_VERSION"
  echo "GO_VERSION=$(go env GOVERSION)"
} > "$cache_dir/BUILD_INFO"
say "built ${needed[*]} in $((SECONDS - started)) s; cache: $(du -sh "$cache_dir" | cut -f1) in $cache_dir"
