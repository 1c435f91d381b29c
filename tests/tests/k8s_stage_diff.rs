//! `k8s stage` / `unstage` against nvflare 2.9.0's `nvflare deploy k8s stage|unstage`
//! (the oracle), each with its own recording kubectl stub: kits prepared by flare-deploy
//! for NVFlare 2.9 are copied, one copy staged by each tool, and the results, the applied
//! manifests, the values.yaml records and every error's code, message and hint must
//! agree, except what docs/deviations.md lists in "NVFlare 2.9: k8s stage and unstage"
//! (each exception is named below with its id; KS1, our command's name, is applied to
//! every comparison by [`ours_as_theirs`]).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use flare_deploy_tests::fsutil::{tempdir, write_file};
use flare_deploy_tests::harness::{prepare_for_release, run_exact};
use flare_deploy_tests::stub_kubectl::{pairs, Call, StubKubectl};
use flare_deploy_tests::{tools, Project, Run};
use serde_json::{json, Value};

const CONFIG: &str = "runtime: k8s\nnamespace: nvflare\nparent:\n  docker_image: nvflare/nvflare:2.9.0\n";
/// KS2: our apply is server-side.
const OUR_APPLY: &str = "apply --server-side --force-conflicts --field-manager=flare-deploy -f -";

/// One prepared kit, copied for each tool, and a stub for each.
struct Pair {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    nvflare: PathBuf,
    ours: PathBuf,
    theirs: PathBuf,
    our_stub: StubKubectl,
    their_stub: StubKubectl,
}

fn copy_tree(from: &Path, to: &Path) {
    let status = Command::new("cp").arg("-a").arg(from).arg(to).status().expect("cp");
    assert!(status.success(), "cp -a {} {}", from.display(), to.display());
}

impl Pair {
    /// `None` (after a SKIPPED line) without the oracle outside CI.
    fn new(name: &str, server: bool) -> Option<Pair> {
        let nvflare = tools::nvflare_2_9()?;
        let (tmp, root) = tempdir();
        let project = Project::new("proj");
        let kit = if server {
            project.server(name)
        } else {
            project.client(name)
        }
        .build(&root.join("kits"));
        let config = write_file(&root.join("k8s.yaml"), CONFIG);
        let ours = root.join("ours").join(format!("{name}-k8s"));
        prepare_for_release(&kit.dir, &config, &ours, "2.9").assert_ok();
        let theirs = root.join("theirs").join(format!("{name}-k8s"));
        std::fs::create_dir_all(theirs.parent().expect("parent")).expect("mkdir");
        copy_tree(&ours, &theirs);
        Some(Pair {
            _tmp: tmp,
            root,
            nvflare,
            ours,
            theirs,
            our_stub: StubKubectl::new(),
            their_stub: StubKubectl::new(),
        })
    }

    /// Runs `<action> <kit> [args]` with both tools (`--format json` added) and `env`.
    fn both(&self, action: &str, args: &[&str], env: &[(&str, &str)]) -> (Run, Run) {
        let mut our_env = self.our_stub.env();
        let mut their_env = self.their_stub.env();
        for (k, v) in env {
            our_env.push((k.to_string(), v.to_string()));
            their_env.push((k.to_string(), v.to_string()));
        }
        let mut argv: Vec<&OsStr> = vec![OsStr::new("k8s"), OsStr::new(action), self.ours.as_os_str()];
        argv.extend(args.iter().map(OsStr::new));
        argv.extend([OsStr::new("--format"), OsStr::new("json")]);
        let ours = run_exact(None, &argv, &pairs(&our_env));
        let mut theirs = Command::new(&self.nvflare);
        theirs.args(["deploy", "k8s", action]).arg(&self.theirs).args(args);
        theirs.args(["--format", "json"]);
        for (k, v) in &their_env {
            theirs.env(k, v);
        }
        let out = theirs.output().expect("run nvflare");
        let theirs = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        (ours, theirs)
    }

    /// Both JSON documents with the kit paths made equal and KS1 applied.
    fn documents(&self, ours: &Run, theirs: &Run) -> (Value, Value) {
        let ours = ours_as_theirs(&ours.stdout.replace(&self.ours.display().to_string(), "<kit>"));
        let theirs = theirs.stdout.replace(&self.theirs.display().to_string(), "<kit>");
        let parse = |text: &str| -> Value {
            serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
        };
        (parse(&ours), parse(&theirs))
    }

    /// Both must fail (or succeed) alike.
    #[track_caller]
    fn assert_same(&self, action: &str, args: &[&str], env: &[(&str, &str)]) -> (Value, Value) {
        let (ours, theirs) = self.both(action, args, env);
        let (a, b) = self.documents(&ours, &theirs);
        assert_eq!(
            a, b,
            "{action} {args:?}\nours: {}\nnvflare 2.9.0: {}",
            ours.stderr, theirs.stderr
        );
        assert_eq!(ours.code, theirs.code);
        (a, b)
    }

    fn values(&self, kit: &Path) -> Value {
        let text = std::fs::read_to_string(kit.join("helm_chart/values.yaml")).expect("values.yaml");
        serde_yaml::from_str(&text).expect("values parse")
    }

    #[track_caller]
    fn assert_same_values(&self, what: &str) {
        assert_eq!(
            self.values(&self.ours),
            self.values(&self.theirs),
            "{what}: values.yaml"
        );
    }

    fn clear_stubs(&self) {
        self.our_stub.clear();
        self.their_stub.clear();
    }
}

/// KS1: our command is `flare-deploy k8s ...` (and `flare-deploy prepare`) where
/// nvflare's texts say `nvflare deploy k8 ...`, `nvflare deploy k8s ...` or
/// `nvflare deploy prepare`: our texts rewritten in nvflare's words.
fn ours_as_theirs(text: &str) -> String {
    text.replace("flare-deploy k8s unstage <kit>", "nvflare deploy k8s unstage <kit>")
        .replace("flare-deploy k8s ", "nvflare deploy k8 ")
        .replace("flare-deploy prepare", "nvflare deploy prepare")
}

fn manifests(calls: &[Call]) -> Vec<Value> {
    calls
        .iter()
        .map(|c| serde_yaml::from_str(&c.stdin).unwrap_or_else(|e| panic!("manifest ({e}): {}", c.stdin)))
        .collect()
}

#[test]
fn stage_and_unstage_agree_with_nvflare_2_9_0() {
    for (name, server) in [("site-1", false), ("server1", true)] {
        let Some(pair) = Pair::new(name, server) else { return };
        // Extra files with awkward names are bundled alike.
        for rel in [
            "local/sub dir/a b.json",
            "local/.hidden",
            "local/unicod\u{e9}.txt",
            "startup/extra/x.pem",
        ] {
            for kit in [&pair.ours, &pair.theirs] {
                write_file(&kit.join(rel), rel);
            }
        }
        pair.assert_same_values("prepared");
        let (ours, _) = pair.assert_same("stage", &[], &[]);
        assert_eq!(ours["data"]["local_files"], 9);
        pair.assert_same_values("staged");
        let (our_calls, their_calls) = (pair.our_stub.calls(), pair.their_stub.calls());
        assert_eq!(
            manifests(&our_calls),
            manifests(&their_calls),
            "the applied ConfigMap and Secret"
        );
        for (ours, theirs) in our_calls.iter().zip(&their_calls) {
            assert_eq!(ours.program, theirs.program);
            // KS2: server-side apply.
            assert_eq!(theirs.args.join(" "), "apply -f -");
            assert_eq!(ours.args.join(" "), OUR_APPLY);
        }

        // Restaging with the recorded names is accepted by both.
        pair.clear_stubs();
        pair.assert_same("stage", &["--namespace", "nvflare"], &[]);
        pair.assert_same_values("restaged");

        pair.clear_stubs();
        pair.assert_same("unstage", &[], &[]);
        assert_eq!(pair.our_stub.calls(), pair.their_stub.calls(), "the same delete");
        pair.assert_same_values("unstaged");
        pair.assert_same("unstage", &[], &[]);

        // Chosen names, oc from the environment.
        pair.clear_stubs();
        let chosen = [
            "--namespace",
            "fl",
            "--local-configmap",
            "cm.a",
            "--startup-secret",
            "sec-a",
        ];
        pair.assert_same("stage", &chosen, &[("KUBECTL", " oc ")]);
        assert_eq!(manifests(&pair.our_stub.calls()), manifests(&pair.their_stub.calls()));
        pair.assert_same_values("staged with chosen names");
        pair.clear_stubs();
        pair.assert_same("unstage", &["--kubectl", "oc"], &[]);
        assert_eq!(pair.our_stub.calls(), pair.their_stub.calls());
        pair.assert_same_values("unstaged with chosen names");
    }
}

#[test]
fn errors_agree_with_nvflare_2_9_0() {
    let Some(pair) = Pair::new("site-1", false) else { return };
    // Arguments and bindings.
    pair.assert_same("stage", &["--kit", "/elsewhere"], &[]);
    pair.assert_same("stage", &["--startup-secret", "Not_Valid"], &[]);
    pair.assert_same("stage", &["--local-configmap", "x_y"], &[]);
    pair.assert_same("stage", &[], &[("KUBECTL", "/usr/bin/kubectl")]);
    pair.assert_same("stage", &[], &[("KUBECTL", "  ")]);
    pair.assert_same("unstage", &["--namespace", "nvflare"], &[]);
    pair.assert_same("stage", &[], &[]);
    pair.assert_same("stage", &["--namespace", "other"], &[]);
    pair.assert_same("stage", &["--local-configmap", "other"], &[]);
    pair.assert_same("unstage", &["--startup-secret", "other"], &[]);

    // A failing delete: the masked Secret name, the record kept.
    pair.clear_stubs();
    let fail = [
        ("KUBECTL_STUB_FAIL_AT", "0"),
        ("KUBECTL_STUB_STDERR", "error: forbidden: nope"),
    ];
    pair.assert_same("unstage", &[], &fail);
    pair.assert_same_values("after a failed delete");
    pair.assert_same("unstage", &[], &[]);

    // A failing apply: the same detail; the record kept by both. KS2: the command shown
    // is our apply.
    pair.clear_stubs();
    let (ours, theirs) = pair.both("stage", &[], &fail);
    let (mut a, b) = pair.documents(&ours, &theirs);
    let message = a["message"]
        .as_str()
        .unwrap_or_default()
        .replace(OUR_APPLY, "apply -f -");
    a["message"] = json!(message);
    assert_eq!(a, b);
    assert_eq!(b["error_code"], "KUBECTL_FAILED");
    pair.assert_same_values("after a failed apply");
    pair.assert_same("unstage", &[], &[]);

    // KS3: without a kubectl on PATH both fail alike, but only nvflare 2.9.0 records.
    let our_env = pair.our_stub.env_without_cli();
    let (ours, theirs) = pair.both("stage", &[], &[("PATH", our_env[0].1.as_str())]);
    let (a, b) = pair.documents(&ours, &theirs);
    assert_eq!(a, b);
    assert_eq!(b["error_code"], "KUBECTL_NOT_FOUND");
    assert_eq!(
        pair.values(&pair.ours)["workspaceConfig"]["local"]["configMapName"],
        Value::Null
    );
    assert_eq!(
        pair.values(&pair.theirs)["workspaceConfig"]["local"]["configMapName"],
        "nvflare-local-site-1"
    );
    // So an unstage has something to do for nvflare 2.9.0 only.
    let (ours, theirs) = pair.both("unstage", &[], &[]);
    assert_eq!((ours.code, theirs.code), (4, 0));
    assert_eq!(
        ours.json()["message"],
        "The staged Kubernetes namespace is not recorded in the prepared kit."
    );
    pair.assert_same_values("after unstaging the record nvflare left");

    // KS4: the namespace's message names the action, its hint the option.
    let (ours, theirs) = pair.both("stage", &["--namespace", "Bad_NS"], &[]);
    let (a, b) = pair.documents(&ours, &theirs);
    assert_eq!(a["error_code"], b["error_code"]);
    assert_eq!(
        b["message"],
        "deploy k8 stage.namespace must be a valid Kubernetes namespace (DNS-1123 label): 'Bad_NS'."
    );
    assert_eq!(
        a["message"],
        "stage namespace must be a valid Kubernetes namespace (DNS-1123 label): 'Bad_NS'."
    );
    assert_eq!(
        a["hint"],
        json!(format!(
            "{} Use a valid --namespace value.",
            b["hint"].as_str().unwrap_or("?")
        ))
    );

    // The kit: a symlink, an empty folder, a missing values file, a kit of another runtime.
    for kit in [&pair.ours, &pair.theirs] {
        std::os::unix::fs::symlink("comm_config.json", kit.join("local/link.json")).expect("link");
    }
    pair.assert_same("stage", &[], &[]);
    for kit in [&pair.ours, &pair.theirs] {
        std::fs::remove_file(kit.join("local/link.json")).expect("rm");
        std::fs::rename(kit.join("startup"), kit.join("startup.bak")).expect("mv");
        std::fs::create_dir_all(kit.join("startup/empty")).expect("mkdir");
    }
    pair.assert_same("stage", &[], &[]);
    for kit in [&pair.ours, &pair.theirs] {
        std::fs::remove_dir_all(kit.join("startup")).expect("rm");
        std::fs::rename(kit.join("startup.bak"), kit.join("startup")).expect("mv");
        std::fs::rename(kit.join("helm_chart/values.yaml"), kit.join("values.bak")).expect("mv");
    }
    pair.assert_same("stage", &[], &[]);
    pair.assert_same(
        "unstage",
        &["--namespace", "n", "--local-configmap", "a", "--startup-secret", "b"],
        &[],
    );
    for kit in [&pair.ours, &pair.theirs] {
        std::fs::rename(kit.join("values.bak"), kit.join("helm_chart/values.yaml")).expect("mv");
        std::fs::write(kit.join("local/resources.json.default"), "{\"components\": []}").expect("write");
    }
    pair.assert_same("stage", &[], &[]);
}

#[test]
fn kit_arguments_agree_except_where_documented() {
    let Some(pair) = Pair::new("site-1", false) else { return };
    // No kit at all.
    let mut ours = Command::new(flare_deploy_tests::harness::binary());
    let ours = ours.args(["k8s", "stage", "--format", "json"]).output().expect("run");
    let theirs = Command::new(&pair.nvflare)
        .args(["deploy", "k8s", "stage", "--format", "json"])
        .output()
        .expect("run nvflare");
    let parse = |bytes: &[u8]| -> Value { serde_json::from_slice(bytes).expect("json") };
    let ours = parse(ours_as_theirs(&String::from_utf8_lossy(&ours.stdout)).as_bytes());
    assert_eq!(ours, parse(&theirs.stdout));

    // KS6: a kit that does not exist is reported first, with our hint.
    let missing = pair.root.join("missing");
    let out = Command::new(&pair.nvflare)
        .args(["deploy", "k8s", "unstage"])
        .arg(&missing)
        .args(["--format", "json"])
        .output()
        .expect("run nvflare");
    assert_eq!(
        parse(&out.stdout)["message"],
        "The staged Kubernetes namespace is not recorded in the prepared kit."
    );
    let run = run_exact(
        None,
        [
            OsStr::new("k8s"),
            OsStr::new("unstage"),
            missing.as_os_str(),
            OsStr::new("--format"),
            OsStr::new("json"),
        ],
        &[],
    );
    assert_eq!(
        run.json()["message"],
        json!(format!("Prepared kit directory does not exist: {}", missing.display()))
    );
    assert_eq!(
        run.json()["hint"],
        "Provide an existing prepared kit (an output of flare-deploy prepare)."
    );

    // KS5: an invalid --kubectl is the same tool error as an invalid KUBECTL, where
    // nvflare 2.9.0 gives a usage error.
    let (ours, theirs) = pair.both("stage", &["--kubectl", "kubectl-1.30"], &[]);
    assert_eq!((ours.code, theirs.code), (4, 4));
    let ours = ours.json();
    assert_eq!(ours["error_code"], "INVALID_ARGS");
    assert_eq!(
        ours["message"],
        "Kubernetes CLI command must be one of ['kubectl', 'oc']."
    );
    let their_text = format!("{}{}", theirs.stdout, theirs.stderr);
    assert!(
        their_text.contains("argument --kubectl: invalid choice: 'kubectl-1.30'"),
        "{their_text}"
    );

    // The schema: the same arguments, plus KS11's --manifests; KS1 names the command.
    let ours = run_exact(None, ["k8s", "stage", "--schema"], &[]);
    let theirs = Command::new(&pair.nvflare)
        .args(["deploy", "k8s", "stage", "--schema"])
        .output()
        .expect("run nvflare");
    let mut ours: Value = serde_json::from_str(&ours.stdout).expect("schema");
    let theirs: Value = serde_json::from_slice(&theirs.stdout).expect("schema");
    let args = ours["args"].as_array_mut().expect("args");
    let manifests = args
        .iter()
        .position(|a| a["name"] == "--manifests")
        .expect("--manifests");
    args.remove(manifests);
    assert_eq!(ours["args"], theirs["args"]);
    assert_eq!(ours["description"], theirs["description"]);
    assert_eq!(ours["command"], "flare-deploy k8s stage");
}
