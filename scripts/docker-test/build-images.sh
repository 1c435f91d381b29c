#!/usr/bin/env bash
# Builds the NVFlare test images flare-deploy-test/nvflare:<version> (default: 2.8.1 and 2.9.0)
# into the Docker daemon named by DOCKER_HOST (the private one of dockerd.sh), from Debian's
# packages and PyPI only; no image registry is used.
#
#   build-images.sh [--no-import] [VERSION...]
#
# How: a minimal Debian root filesystem (debootstrap --variant=minbase, python3 and
# python3-venv), made once; per version a copy of it in which, inside a chroot, a venv at
# /opt/nvflare gets nvflare==VERSION, numpy and the docker SDK (NVFlare's Docker job launcher
# imports it); /usr/local/bin/python3 and /usr/local/bin/python run that venv's python. The
# root filesystem is then `tar | docker import`ed.
#
# Cache: ${FLARE_DEPLOY_TOOLS:-~/.cache/flare-deploy-tools}/images/
#   base-<key>.tar              the debootstrapped root fs; key = hash of the suite, the
#                               packages, the architecture and the code that builds it
#   nvflare-<version>-<key>.tar the root fs of one image; key = hash of this script's text,
#                               the version, the suite and the base key
# A tarball is rebuilt only when its key changes (older keys of the same kind are removed);
# a warm run only imports the tarball, and skips even that when the daemon already has the
# image with the same key (label flare-deploy.cache-key).
#
# --no-import builds or refreshes the cached tarballs only (no daemon needed).
# Environment: DOCKER_HOST (required unless --no-import), FLARE_DEPLOY_TOOLS,
# FLARE_DEPLOY_DEBIAN_MIRROR (default: the mirror apt uses), http_proxy/https_proxy/no_proxy
# and PIP_* (passed to debootstrap and pip; apt's Acquire::http::Proxy is honoured too).
# Needs root, debootstrap, unshare, chroot, tar and the docker CLI.
set -euo pipefail

SUITE=bookworm
DEBOOTSTRAP_INCLUDE=python3,python3-venv
IMAGE_REPO=flare-deploy-test/nvflare
VENV=/opt/nvflare
# Pinned beside nvflare so that a rebuild gives the same image (these are what the host's
# NVFlare venvs resolved to); nvflare's other dependencies are resolved by pip.
NUMPY_VERSION=2.4.6
DOCKER_SDK_VERSION=7.2.0
DEFAULT_VERSIONS=(2.8.1 2.9.0)

SELF="$(readlink -f "${BASH_SOURCE[0]}")"
TOOLS="${FLARE_DEPLOY_TOOLS:-$HOME/.cache/flare-deploy-tools}"
CACHE="$TOOLS/images"

log() { printf '[build-images] %s\n' "$*" >&2; }
die() { printf '[build-images] ERROR: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
sha() { sha256sum | cut -c1-16; }

IMPORT=true
VERSIONS=()
for arg in "$@"; do
    case "$arg" in
        --no-import) IMPORT=false ;;
        -h | --help) sed -n '2,/^set -euo/p' "$SELF" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) die "unknown option: $arg" ;;
        *) VERSIONS+=("$arg") ;;
    esac
done
[ "${#VERSIONS[@]}" -gt 0 ] || VERSIONS=("${DEFAULT_VERSIONS[@]}")

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap and chroot)"
for tool in debootstrap unshare chroot tar sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found (apt-get install debootstrap util-linux; .ci/install-tools.sh installs them)"
done
if [ "$IMPORT" = true ]; then
    command -v docker >/dev/null 2>&1 || die "docker CLI not found (apt-get install docker.io)"
    [ -n "${DOCKER_HOST:-}" ] || die "DOCKER_HOST is not set: start the private daemon first, e.g. eval \"\$(scripts/docker-test/dockerd.sh start)\", or use scripts/docker-test/dockerd.sh run -- $0"
    docker version --format '{{.Server.Version}}' >/dev/null 2>&1 || die "no Docker daemon answers at DOCKER_HOST=$DOCKER_HOST"
fi

# The Debian mirror apt uses for the suite (deb822 .sources first, then sources.list).
debian_mirror() {
    if [ -n "${FLARE_DEPLOY_DEBIAN_MIRROR:-}" ]; then
        echo "$FLARE_DEPLOY_DEBIAN_MIRROR"
        return
    fi
    local f uri=""
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        uri="$(awk -v suite="$SUITE" '
            function flush() { if (types ~ /(^| )deb( |$)/ && suites ~ ("(^| )" suite "( |$)") && uris != "" && !found) { split(uris, u, " "); print u[1]; found = 1 } types = suites = uris = "" }
            /^[ \t]*$/ { flush(); next }
            /^Types:/ { sub(/^Types:[ \t]*/, ""); types = $0 }
            /^Suites:/ { sub(/^Suites:[ \t]*/, ""); suites = $0 }
            /^URIs:/ { sub(/^URIs:[ \t]*/, ""); uris = $0 }
            END { flush() }' "$f")"
        [ -n "$uri" ] && break
    done
    if [ -z "$uri" ]; then
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
            [ -f "$f" ] || continue
            uri="$(awk -v suite="$SUITE" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } if ($(i + 1) == suite) { print $i; exit } }' "$f")"
            [ -n "$uri" ] && break
        done
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

# apt's proxy, when set there and not in the environment, is used by debootstrap (wget) too.
if [ -z "${http_proxy:-}" ]; then
    apt_proxy="$(apt-config dump Acquire::http::Proxy 2>/dev/null | sed -n 's/^Acquire::http::Proxy "\(.*\)";$/\1/p')"
    if [ -n "$apt_proxy" ] && [ "$apt_proxy" != DIRECT ]; then
        export http_proxy="$apt_proxy"
    fi
fi

ARCH="$(dpkg --print-architecture)"
MIRROR="$(debian_mirror)"

# Runs "$@" in a private mount namespace: whatever it mounts (debootstrap's /proc, the
# chroot's /dev) disappears with it, also when the build is killed.
in_private_ns() { unshare --mount --propagation private -- "$@"; }

# Removes what an image does not need: package caches and lists, docs, logs, device nodes.
slim_rootfs() {
    local root="${1:?}"
    [ -x "$root/usr/bin/python3" ] || die "not a root fs: $root"
    rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/var/cache/debconf/*-old \
        "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
        "$root"/usr/share/locale/* "$root"/usr/share/lintian "$root"/var/log/* \
        "$root"/tmp/* "$root"/var/tmp/* "$root"/root/.cache "${root:?}"/dev/*
    : >"$root/etc/hostname"
    rm -f "$root/etc/resolv.conf"
}

build_base() {
    local out="$1" root="$2"
    log "debootstrap --variant=minbase --include=$DEBOOTSTRAP_INCLUDE $SUITE from $MIRROR"
    in_private_ns debootstrap --variant=minbase --include="$DEBOOTSTRAP_INCLUDE" --arch="$ARCH" \
        "$SUITE" "$root" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 ||
        { tail -n 30 "$CACHE/debootstrap.log" >&2; die "debootstrap failed (log above, full log: $CACHE/debootstrap.log)"; }
    rm -f "$CACHE/debootstrap.log"
    slim_rootfs "$root"
    tar -C "$root" --numeric-owner -cf "$out.partial" .
    mv "$out.partial" "$out"
}

# Host files that pip inside the chroot needs to reach PyPI as on the host: resolv.conf, pip's
# configuration files and the CA bundles named by it or by the environment. Printed one per line.
pip_host_files() {
    local f
    echo /etc/resolv.conf
    for f in /etc/pip.conf /etc/xdg/pip/pip.conf "$HOME/.config/pip/pip.conf" "$HOME/.pip/pip.conf" \
        "${PIP_CONFIG_FILE:-}" "${PIP_CERT:-}" "${REQUESTS_CA_BUNDLE:-}" "${SSL_CERT_FILE:-}" \
        "${CURL_CA_BUNDLE:-}" /etc/ssl/certs/ca-certificates.crt; do
        [ -n "$f" ] && [ -f "$f" ] && echo "$f"
    done
    for f in /etc/pip.conf /etc/xdg/pip/pip.conf "$HOME/.config/pip/pip.conf" "$HOME/.pip/pip.conf" "${PIP_CONFIG_FILE:-}"; do
        if [ -z "$f" ] || [ ! -f "$f" ]; then continue; fi
        sed -n 's/^[[:space:]]*\(cert\|client-cert\)[[:space:]]*=[[:space:]]*\(.*[^[:space:]]\)[[:space:]]*$/\2/p' "$f" |
            while read -r c; do [ -f "$c" ] && echo "$c"; done
    done
    return 0
}

# Local directories of the host's PIP_FIND_LINKS: mounted at the same paths in the chroot.
find_links_dirs() {
    local -a links=()
    local d
    read -r -a links <<<"${PIP_FIND_LINKS:-}"
    for d in "${links[@]}"; do
        d="${d#file://}"
        case "$d" in /*) [ -d "$d" ] && echo "$d" ;; esac
    done
    return 0
}

# Runs a command in the chroot, in a private mount namespace (so the mounts vanish with it) with
# /dev, /proc and the find-links directories mounted, and a clean environment that keeps only
# the proxy and pip variables. pip keeps no cache (none would be reused: its HTTP cache stayed
# empty here).
in_chroot() {
    local root="$1"
    shift
    local -a envs=(PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
        PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1)
    local v
    while IFS= read -r v; do
        case "$v" in
            PIP_CACHE_DIR=* | PIP_NO_CACHE_DIR=* | PIP_TARGET=* | PIP_PREFIX=* | PIP_USER=* | PIP_REQUIRE_VIRTUALENV=*) ;;
            PIP_* | http_proxy=* | https_proxy=* | no_proxy=* | HTTP_PROXY=* | HTTPS_PROXY=* | NO_PROXY=* | ALL_PROXY=* | all_proxy=*) envs+=("$v") ;;
            SSL_CERT_FILE=* | REQUESTS_CA_BUNDLE=* | CURL_CA_BUNDLE=*) envs+=("$v") ;;
        esac
    done < <(env)
    local -a binds=()
    while IFS= read -r v; do
        mkdir -p "$root$v"
        binds+=("$v")
    done < <(find_links_dirs)
    # shellcheck disable=SC2016 # expanded by the inner shell
    in_private_ns bash -c '
        set -euo pipefail
        root="$1"; n="$2"; shift 2
        mount --rbind /dev "$root/dev"
        mount -t proc proc "$root/proc"
        for ((i = 0; i < n; i++)); do mount --bind -o ro "$1" "$root$1"; shift; done
        exec chroot "$root" "$@"' bash "$root" "${#binds[@]}" "${binds[@]}" env -i "${envs[@]}" "$@"
}

build_version() {
    local version="$1" base="$2" out="$3" root="$4"
    local buildlog="$CACHE/nvflare-$version.log"
    mkdir -p "$root"
    tar -C "$root" -xf "$base"
    # Host files pip needs (the host's CA bundle may hold a proxy's CA that the root fs's own
    # bundle lacks), copied in for the build; afterwards the root fs's own files are restored.
    local -a created=() saved=()
    local f
    while IFS= read -r f; do
        if [ -e "$root$f" ] || [ -L "$root$f" ]; then
            mv "$root$f" "$root$f.flare-deploy-saved"
            saved+=("$f")
        else
            created+=("$f")
        fi
        mkdir -p "$root$(dirname "$f")"
        cp -L "$f" "$root$f"
    done < <(pip_host_files | sort -u)
    log "nvflare $version: venv $VENV and pip install in a chroot"
    if ! in_chroot "$root" /usr/bin/python3 -m venv "$VENV" >"$buildlog" 2>&1 ||
        ! in_chroot "$root" "$VENV/bin/pip" install --progress-bar off \
            "nvflare==$version" "numpy==$NUMPY_VERSION" "docker==$DOCKER_SDK_VERSION" >>"$buildlog" 2>&1; then
        tail -n 30 "$buildlog" >&2
        die "pip install of nvflare $version failed (log above, full log: $buildlog)"
    fi
    rm -f "$buildlog"
    for f in "${created[@]}"; do rm -f "$root$f"; done
    for f in "${saved[@]}"; do mv -f "$root$f.flare-deploy-saved" "$root$f"; done
    # /usr/local/bin/python3 and python run the venv's python (a symlink would not: python
    # finds its venv from the path it was started by).
    local name
    for name in python3 python; do
        printf '#!/bin/sh\nexec %s/bin/python3 "$@"\n' "$VENV" >"$root/usr/local/bin/$name"
        chmod 755 "$root/usr/local/bin/$name"
    done
    slim_rootfs "$root"
    in_chroot "$root" /usr/local/bin/python3 -c "import nvflare, numpy, docker, sys; sys.exit(nvflare.__version__ != '$version')" ||
        die "the built root fs does not import nvflare $version, numpy and docker"
    find_links_dirs | while IFS= read -r f; do rmdir "$root$f" 2>/dev/null || true; done
    rm -rf "${root:?}"/dev/*
    tar -C "$root" --numeric-owner -cf "$out.partial" .
    mv "$out.partial" "$out"
}

T_START="$(now)"
mkdir -p "$CACHE"
# One build at a time per cache (imports run after the lock is released).
exec 9>"$CACHE/.lock"
flock 9
# Leftovers of a build that was killed (the lock says none runs now).
rm -rf "$CACHE"/work.* "$CACHE"/*.partial
WORK="$(mktemp -d "$CACHE/work.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

BASE_KEY="$( { echo "$SUITE $DEBOOTSTRAP_INCLUDE $ARCH"; declare -f build_base slim_rootfs in_private_ns; } | sha)"
BASE="$CACHE/base-$BASE_KEY.tar"
if [ -f "$BASE" ]; then
    log "base root fs: cached $(basename "$BASE")"
else
    t0="$(now)"
    find "$CACHE" -maxdepth 1 -name 'base-*.tar' -delete
    build_base "$BASE" "$WORK/base"
    rm -rf "$WORK/base"
    log "base root fs: built in $(since "$t0") s ($(du -h "$BASE" | cut -f1))"
fi

declare -A KEYS=()
for version in "${VERSIONS[@]}"; do
    case "$version" in
        [0-9]*.[0-9]*.[0-9]*) ;;
        *) die "not an NVFlare release version: $version (e.g. 2.9.0)" ;;
    esac
    key="$( { cat "$SELF"; echo "$version $SUITE $BASE_KEY"; } | sha)"
    KEYS[$version]="$key"
    tarball="$CACHE/nvflare-$version-$key.tar"
    if [ -f "$tarball" ]; then
        log "$IMAGE_REPO:$version: cached $(basename "$tarball")"
    else
        t0="$(now)"
        find "$CACHE" -maxdepth 1 -name "nvflare-$version-*.tar" -delete
        build_version "$version" "$BASE" "$tarball" "$WORK/$version"
        rm -rf "${WORK:?}/$version"
        log "$IMAGE_REPO:$version: root fs built in $(since "$t0") s ($(du -h "$tarball" | cut -f1))"
    fi
done
flock -u 9

if [ "$IMPORT" = true ]; then
    for version in "${VERSIONS[@]}"; do
        key="${KEYS[$version]}"
        tarball="$CACHE/nvflare-$version-$key.tar"
        tag="$IMAGE_REPO:$version"
        if [ "$(docker image inspect --format '{{index .Config.Labels "flare-deploy.cache-key"}}' "$tag" 2>/dev/null || true)" = "$key" ]; then
            log "$tag: already in the daemon"
            continue
        fi
        t0="$(now)"
        docker import \
            --change "ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
            --change "ENV LANG=C.UTF-8" \
            --change "WORKDIR /" \
            --change "LABEL flare-deploy.cache-key=$key" \
            --change 'CMD ["/bin/bash"]' \
            "$tarball" "$tag" >/dev/null
        t_import="$(since "$t0")"
        t0="$(now)"
        # (dockerd.sh runs the daemon with --ip-forward=false: its warning about that is noise.)
        got="$(docker run --rm --network none "$tag" /usr/local/bin/python3 -c 'import nvflare, numpy, docker; print(nvflare.__version__)' 2>"$WORK/check.err")" ||
            { grep -v 'IPv4 forwarding is disabled' "$WORK/check.err" >&2; die "$tag: the check run failed"; }
        [ "$got" = "$version" ] || die "$tag: nvflare reports version '$got'"
        log "$tag: imported in $t_import s, checked in $(since "$t0") s ($(docker image inspect --format '{{.Size}}' "$tag" | awk '{ printf "%d MB", $1 / 1000000 }'))"
    done
fi
log "done in $(since "$T_START") s"
