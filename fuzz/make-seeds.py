#!/usr/bin/env python3
"""(Re)writes the seed corpora fuzz/corpus/<target>/seed-* from the example configs, the
config reference (docs/config.md), the example kits and a few hand-written edge cases.

Only files named seed-* are tracked; libFuzzer's own additions to the corpus are not.
Certificates beyond the example kits' are made with `openssl` (throwaway keys, not kept).
Run from anywhere: python3 fuzz/make-seeds.py
"""

import pathlib
import re
import shutil
import subprocess
import tempfile

FUZZ = pathlib.Path(__file__).resolve().parent
ROOT = FUZZ.parent
KITS = ROOT / "examples" / "kits"
CORPUS = FUZZ / "corpus"


def write(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / f"seed-{name}").write_bytes(data)


def clear(target):
    d = CORPUS / target
    if d.is_dir():
        for f in d.glob("seed-*"):
            f.unlink()


# --- configs -------------------------------------------------------------------------

def config_seeds():
    seeds = {}
    for path in sorted((ROOT / "examples").glob("*.yaml")) + sorted((ROOT / "examples" / "plugins").glob("*.yaml")):
        seeds[f"example-{path.stem}"] = path.read_text()
    doc = (ROOT / "docs" / "config.md").read_text()
    for i, block in enumerate(re.findall(r"```yaml\n(.*?)```", doc, re.S)):
        seeds[f"docs-config-md-{i}"] = block
    head_d = "runtime: docker\nparent:\n  docker_image: img:1\n"
    head_k = "runtime: k8s\nparent:\n  docker_image: img\n"
    seeds.update({
        "docker-minimal": "runtime: docker\nparent:\n  docker_image: nvflare/nvflare:2.8.1\n",
        "docker-nulls": head_d + "  network: ~\njob_launcher:\n  default_python_path: null\n"
                        "  default_job_env: null\n  default_job_container_kwargs: null\n",
        "docker-empty-launcher": head_d + "job_launcher:\n",
        "docker-flow": "runtime: docker\nparent: {docker_image: x, network: n}\njob_launcher: {default_job_env: {}}\n",
        "docker-yaml11-words": "runtime: docker\nparent:\n  docker_image: yes\n  network: on\n"
                               "job_launcher:\n  default_job_env:\n    FLAG: no\n",
        "docker-quoting": "runtime: docker\nparent:\n  docker_image: 'img\"$(x)`y`\\z'\n  network: 'net $HOME'\n",
        "docker-unicode-floats": "runtime: docker\nparent:\n  docker_image: img\njob_launcher:\n  default_job_env:\n"
                                 "    LANG_NAME: \"\u00e9\"\n    EMOJI: \"\U0001F600\"\n"
                                 "  default_job_container_kwargs:\n    cpu_ratio: 1.5\n    whole: 100.0\n"
                                 "    tiny: 1.0e-7\n    huge: 1.0e+20\n    nan: .nan\n    inf: -.inf\n",
        "docker-reserved-kwargs": head_d + "job_launcher:\n  default_job_container_kwargs:\n"
                                  "    volumes: {}\n    user: root\n    1: x\n    null: y\n",
        "docker-unknown-keys": "runtime: docker\nzzz: 1\nbogus: 2\n1: x\ntrue: y\n~: z\n" + head_d[16:],
        "docker-odd-keys": head_d + "job_launcher:\n  default_job_env:\n    ? [a, b]\n    : 1\n"
                           "    2.5: x\n    0x10: y\n    0o17: z\n    true: t\n    ~: n\n",
        "docker-anchors": "base: &b {docker_image: img, network: n}\nruntime: docker\nparent: *b\n",
        "docker-merge-key": "runtime: docker\nparent:\n  <<: {docker_image: img}\n  network: n\n",
        "docker-tags": "runtime: !!str docker\nparent: !custom\n  docker_image: !!str 1\n"
                       "job_launcher:\n  default_job_env: !env {A: !!binary aGVsbG8=}\n",
        "docker-multidoc": "runtime: docker\nparent: {docker_image: a}\n---\nruntime: k8s\n",
        "docker-big-ints": head_d + "job_launcher:\n  default_job_env:\n    A: 18446744073709551615\n"
                           "    B: -9223372036854775808\n    C: 18446744073709551616\n    D: 1e400\n",
        "docker-block-scalars": "runtime: docker\nparent:\n  docker_image: |\n    multi\n    line\n"
                                "  network: >-\n    folded\n    text\n",
        "not-a-mapping": "- runtime: docker\n",
        "runtime-mapping": "runtime: {docker: 1}\n",
        "unknown-runtime": "runtime: k9s\nparent:\n  docker_image: img\n",
        "k8s-minimal": head_k,
        "k8s-full": "runtime: k8s\nnamespace: nvflare\nserver_service_name: nvflare-server\nparent:\n"
                    "  docker_image: registry.example.com:5000/nvflare:2.8.1@sha256:abc\n  parent_port: 8102\n"
                    "  workspace_pvc: nvflws\n  workspace_mount_path: /var/tmp/nvflare/workspace\n"
                    "  python_path: /usr/local/bin/python3\n  resources: {requests: {cpu: \"2\", memory: 8Gi}}\n"
                    "  pod_security_context: {runAsUser: 1000, fsGroup: 1000}\n  image_pull_secrets: [regcred, a.b-c]\n"
                    "job_launcher:\n  config_file_path: /etc/kube/config\n  pending_timeout: 0\n"
                    "  default_python_path: /usr/bin/python3\n  job_pod_security_context: {runAsNonRoot: true}\n"
                    "  image_pull_secrets: []\n",
        "k8s-bad-names": "runtime: k8s\nnamespace: Bad_NS\nserver_service_name: 1svc\n" + head_k[13:],
        "k8s-ports": head_k + "  parent_port: 65536\njob_launcher:\n  pending_timeout: -1\n",
        "k8s-port-types": head_k + "  parent_port: 0o17\njob_launcher:\n  pending_timeout: null\n",
        "k8s-secrets": head_k + "  image_pull_secrets: [ok, 'Bad', 1, null]\njob_launcher:\n  image_pull_secrets: x\n",
        "k8s-empty-resources": head_k + "  resources: {}\n  pod_security_context: null\n",
        "alias-bomb": "a0: &a0 [lol, lol, lol, lol]\na1: &a1 [*a0, *a0, *a0, *a0]\na2: &a2 [*a1, *a1, *a1, *a1]\n"
                      "runtime: docker\nparent: {docker_image: x}\njob_launcher:\n  default_job_env:\n    x: *a2\n",
        "deep-flow": "runtime: docker\nparent: {docker_image: x}\njob_launcher:\n  default_job_env:\n    x: "
                     + "[" * 70 + "]" * 70 + "\n",
        "deep-block": "runtime: k8s\nparent:\n  docker_image: x\n  resources:\n"
                      + "".join(f"{' ' * (4 + d)}k{d}:\n" for d in range(100)),
    })
    return seeds


# --- kit files -----------------------------------------------------------------------

def kit_seeds():
    # selector byte: bits 0-1 file, bit 2 client kit (for local files), bit 3 resources.json
    # override present, bit 4 real launchers known, bit 5 comm edit as prepare does it.
    server_role = (KITS / "server1" / "startup" / "fed_server.json").read_bytes()
    client_role = (KITS / "site-1" / "startup" / "fed_client.json").read_bytes()
    admin_role = (KITS / "admin@nvidia.com" / "startup" / "fed_admin.json").read_bytes()
    server_res = (KITS / "server1" / "local" / "resources.json.default").read_bytes()
    client_res = (KITS / "site-1" / "local" / "resources.json.default").read_bytes()
    admin_res = (KITS / "admin@nvidia.com" / "local" / "resources.json.default").read_bytes()
    comm = (KITS / "site-1" / "local" / "comm_config.json").read_bytes()
    docker_res = (
        b'{"format_version": 2, "components": [{"id": "resource_manager", "path": "custom.RM", "args": {"a": 1}},'
        b' {"id": "resource_consumer", "path": "nvflare.app_common.resource_consumers.gpu_resource_consumer.'
        b'GPUResourceConsumer", "args": {}}, {"id": "k8s_launcher", "path": "nvflare.app_opt.job_launcher.'
        b'k8s_launcher.ClientK8sJobLauncher", "args": {"namespace": "x"}}, {"id": "docker_launcher", "path": "x.Y"},'
        b' {"id": "job_manager", "args": null}, {"id": "job_manager", "args": 3}, "not an object"]}'
    )
    seeds = {
        "server-fed_server.json": b"\x00" + server_role,
        "client-fed_client.json": b"\x01" + client_role,
        "server-resources": b"\x02" + server_res,
        "client-resources": b"\x06" + client_res,
        "server-resources-launchers-override": b"\x1a" + server_res,
        "client-resources-launchers": b"\x16" + client_res,
        "admin-resources": b"\x06" + admin_res,
        "client-comm_config": b"\x07" + comm,
        "client-comm_config-listen": b"\x27" + comm,
        "server-no-comm_config-listen": b"\x22" + server_res,
        "server-comm_config": b"\x03" + comm,
        "admin-role-as-fed_client": b"\x01" + admin_role,
        "server-role-variants": b"\x00" + b'{"servers": [{"identity": 1.5e16, "service": {"target": "h:+8_002"},'
                                          b' "admin_port": 70000}]}',
        "server-role-no-servers": b"\x00" + b'{"servers": [], "admin_server": true}',
        "client-role-fqsn-types": b"\x01" + b'{"client": {"fqsn": 0.0001}, "servers": "x"}',
        "resources-mixed-components": b"\x16" + docker_res,
        "resources-persistor-shapes": b"\x02" + b'{"snapshot_persistor": {"args": {"storage": {"args": []}}},'
                                               b' "components": {}}',
        "comm-shapes": b"\x07" + b'{"internal": {"resources": [1, 2]}}',
        "comm-internal-not-object": b"\x03" + b'{"internal": "tcp", "x": 1e-7, "y": "\\u00e9\\ud83d\\ude00"}',
        "json-not-object": b"\x02" + b"[1, 2, 3]",
    }
    return seeds


# --- certificates --------------------------------------------------------------------

def cert_seeds():
    seeds = {}
    for kit in ("server1", "site-1", "admin@nvidia.com"):
        for name in ("server.crt", "client.crt", "rootCA.pem"):
            path = KITS / kit / "startup" / name
            if path.is_file():
                seeds[f"{kit.split('@')[0]}-{name}"] = path.read_bytes()
    if shutil.which("openssl") is None:
        print("openssl not found: only the example kits' certificates are seeds")
        return seeds
    subjects = {
        "no-org": "/CN=site-1",
        "empty-org": "/CN=site-1/O=",
        "two-orgs": "/CN=site-1/O=first/O=second",
        "utf8-org": "/CN=site-1/O=H\u00f4pital \u00e9t\u00e9 \U0001F600",
        "long-org": "/CN=x/O=" + "o" * 64,
        # string_mask=default: T61String for Latin-1 text, BMPString beyond it.
        "t61-org": "/CN=a/O=H\u00f4pital",
        "bmp-org": "/CN=a/O=\u75c5\u9662",
    }
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        (tmp / "default-mask.cnf").write_text("[req]\ndistinguished_name=dn\nstring_mask=default\n[dn]\n")
        for name, subject in subjects.items():
            key_args = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"] if name == "two-orgs" else \
                ["-newkey", "rsa:2048"]
            cmd = ["openssl", "req", "-x509", "-nodes", *key_args, "-keyout", str(tmp / "k.pem"),
                   "-out", str(tmp / "c.pem"), "-days", "1", "-subj", subject, "-utf8", "-multivalue-rdn"]
            if name in ("t61-org", "bmp-org"):
                cmd += ["-config", str(tmp / "default-mask.cnf")]
            r = subprocess.run(cmd, capture_output=True)
            if r.returncode != 0:
                print(f"openssl failed for {name}: {r.stderr.decode(errors='replace')}")
                continue
            seeds[name] = (tmp / "c.pem").read_bytes()
    pem = seeds.get("site-1-client.crt", b"")
    if pem:
        seeds["leading-text-and-chain"] = b"Certificate:\n  junk\n" + pem + (KITS / "site-1" / "startup" / "rootCA.pem").read_bytes()
        seeds["wrong-label"] = pem.replace(b"CERTIFICATE", b"PUBLIC KEY")
        seeds["truncated"] = pem[: len(pem) // 2]
    return seeds


def main():
    configs = config_seeds()
    for target in ("config_docker", "config_k8s"):
        clear(target)
        for name, text in configs.items():
            write(target, name, text)
    clear("kit_files")
    for name, data in kit_seeds().items():
        write("kit_files", name, data)
    clear("certificate")
    for name, data in cert_seeds().items():
        write("certificate", name, data)
    for d in sorted(CORPUS.iterdir()):
        print(f"{d.name}: {len(list(d.glob('seed-*')))} seeds")


if __name__ == "__main__":
    main()
