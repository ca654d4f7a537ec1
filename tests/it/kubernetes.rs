//! `deploy/kubernetes/` and the Prometheus fleet examples: the core
//! manifests validate against Kubernetes' schemas (PyPI `kubernetes-validate`,
//! offline: it bundles them), the prometheus-operator resources (which no
//! offline schema covers) are checked for the references that break them
//! silently, the PrometheusRule is what `scripts/gen-prometheusrule.sh`
//! makes of `alerts/pgmaint.rules.yml`, and the examples pass `promtool`.
use crate::harness::{repo, run, text};
use std::path::Path;

use serde::Deserialize;
use serde_norway::Value;

/// Every YAML document of a file under deploy/kubernetes/.
fn docs(file: &str) -> Vec<Value> {
    let path = repo().join("deploy/kubernetes").join(file);
    let s = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_norway::Deserializer::from_str(&s)
        .map(|d| Value::deserialize(d).unwrap_or_else(|e| panic!("{file}: {e}")))
        .filter(|v| !v.is_null())
        .collect()
}

fn all_docs() -> Vec<(String, Value)> {
    let mut out = vec![];
    for entry in std::fs::read_dir(repo().join("deploy/kubernetes")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".yaml") {
            out.extend(docs(&name).into_iter().map(|d| (name.clone(), d)));
        }
    }
    out
}

fn kind<'a>(all: &'a [(String, Value)], kind: &str) -> Vec<&'a Value> {
    all.iter()
        .filter(|(_, d)| d["kind"].as_str() == Some(kind))
        .map(|(_, d)| d)
        .collect()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v:?}"))
}

/// Kubernetes' schemas: these files must validate strictly (no unknown fields).
const CORE: &[&str] = &[
    "sidecar.yaml",
    "multi-target.yaml",
    "networkpolicy.yaml",
    "secret-example.yaml",
];

#[test]
fn core_manifests_validate_against_kubernetes_schemas() {
    let files: Vec<String> = CORE.iter().map(|f| format!("deploy/kubernetes/{f}")).collect();
    let mut args = vec!["--strict"];
    args.extend(files.iter().map(String::as_str));
    let o = run("kubernetes-validate", &args, "pip install kubernetes-validate");
    let out = text(&o);
    assert!(o.status.success(), "kubernetes-validate:\n{out}");
    let core_docs: usize = CORE.iter().map(|f| docs(f).len()).sum();
    assert_eq!(out.matches(" passed for resource ").count(), core_docs, "{out}");

    // The validator really checks: a wrong type and an unknown field fail.
    let bad = std::env::temp_dir().join(format!("pgmaint-bad-{}.yaml", std::process::id()));
    std::fs::write(
        &bad,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replicas: two\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec: {containers: [{name: c, image: i, envv: []}]}\n",
    )
    .unwrap();
    let o = run(
        "kubernetes-validate",
        &["--strict", bad.to_str().unwrap()],
        "pip install kubernetes-validate",
    );
    let _ = std::fs::remove_file(&bad);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("spec.replicas"), "{}", text(&o));
}

#[test]
fn prometheusrule_is_generated_from_alerts() {
    let tmp = std::env::temp_dir().join(format!("pgmaint-rule-{}.yaml", std::process::id()));
    let o = run(
        "scripts/gen-prometheusrule.sh",
        &[tmp.to_str().unwrap()],
        "bash and awk",
    );
    assert!(o.status.success(), "{}", text(&o));
    let fresh = std::fs::read_to_string(&tmp).unwrap();
    let _ = std::fs::remove_file(&tmp);
    let committed = std::fs::read_to_string(repo().join("deploy/kubernetes/prometheusrule.yaml")).unwrap();
    assert!(
        fresh == committed,
        "deploy/kubernetes/prometheusrule.yaml is out of sync with alerts/pgmaint.rules.yml: run scripts/gen-prometheusrule.sh"
    );
    // The same rules, parsed: spec.groups is the rules file's groups.
    let rule = docs("prometheusrule.yaml").remove(0);
    assert_eq!(s(&rule["apiVersion"]), "monitoring.coreos.com/v1");
    assert_eq!(s(&rule["kind"]), "PrometheusRule");
    let alerts: Value =
        serde_norway::from_str(&std::fs::read_to_string(repo().join("alerts/pgmaint.rules.yml")).unwrap())
            .unwrap();
    assert_eq!(rule["spec"]["groups"], alerts["groups"]);
    assert!(rule["spec"]["groups"].as_sequence().unwrap().len() >= 2);
}

#[test]
fn operator_resources_point_at_what_exists() {
    let all = all_docs();
    let services = kind(&all, "Service");
    let deployments = kind(&all, "Deployment");
    assert_eq!(deployments.len(), 2, "a sidecar and a multi-target Deployment");

    // Each ServiceMonitor selects a Service that has its endpoint ports.
    let monitors = kind(&all, "ServiceMonitor");
    assert!(!monitors.is_empty());
    for m in monitors {
        assert_eq!(s(&m["apiVersion"]), "monitoring.coreos.com/v1");
        let want = m["spec"]["selector"]["matchLabels"].as_mapping().unwrap();
        let selected: Vec<&&Value> = services
            .iter()
            .filter(|svc| {
                want.iter()
                    .all(|(k, v)| svc["metadata"]["labels"].get(k) == Some(v))
            })
            .collect();
        assert_eq!(
            selected.len(),
            1,
            "ServiceMonitor {:?} selects one Service",
            m["metadata"]["name"]
        );
        for ep in m["spec"]["endpoints"].as_sequence().unwrap() {
            let port = s(&ep["port"]);
            let ports = selected[0]["spec"]["ports"].as_sequence().unwrap();
            assert!(ports.iter().any(|p| s(&p["name"]) == port), "no port {port}");
            assert_eq!(s(&ep["path"]), "/metrics");
        }
    }

    // Every Service selects a Deployment's pods and targets a named container port.
    for svc in &services {
        let want = svc["spec"]["selector"].as_mapping().unwrap();
        let pods: Vec<&&Value> = deployments
            .iter()
            .filter(|d| {
                want.iter()
                    .all(|(k, v)| d["spec"]["template"]["metadata"]["labels"].get(k) == Some(v))
            })
            .collect();
        assert_eq!(pods.len(), 1, "{:?}", svc["metadata"]["name"]);
        let container_ports: Vec<&str> = pods[0]["spec"]["template"]["spec"]["containers"]
            .as_sequence()
            .unwrap()
            .iter()
            .flat_map(|c| c["ports"].as_sequence().cloned().unwrap_or_default())
            .map(|p| s(&p["name"]).to_string().leak() as &str)
            .collect();
        for p in svc["spec"]["ports"].as_sequence().unwrap() {
            assert!(container_ports.contains(&s(&p["targetPort"])), "{p:?}");
        }
    }

    // The Probe goes through the multi-target exporter's Service, with an
    // auth module its config file defines.
    let probes = kind(&all, "Probe");
    assert_eq!(probes.len(), 1);
    let probe = probes[0];
    assert_eq!(s(&probe["spec"]["prober"]["path"]), "/probe");
    let url = s(&probe["spec"]["prober"]["url"]);
    let svc_name = url.split('.').next().unwrap();
    let svc = services
        .iter()
        .find(|svc| s(&svc["metadata"]["name"]) == svc_name)
        .unwrap_or_else(|| panic!("Probe URL {url} names no Service here"));
    let port = url.rsplit(':').next().unwrap();
    assert!(svc["spec"]["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .any(|p| p["port"].as_u64().map(|n| n.to_string()).as_deref() == Some(port)));
    let config_maps = kind(&all, "ConfigMap");
    let config: Value = serde_norway::from_str(s(&config_maps
        .iter()
        .find(|c| s(&c["metadata"]["name"]) == "pgmaint-exporter-config")
        .unwrap()["data"]["config.yml"]))
    .unwrap();
    let module = s(&probe["spec"]["module"]);
    assert!(
        config["auth_modules"].get(module).is_some(),
        "auth module {module}"
    );
    assert!(!probe["spec"]["targets"]["staticConfig"]["static"]
        .as_sequence()
        .unwrap()
        .is_empty());

    // Exporter containers: files named by PGMAINT_* variables and auth
    // modules lie in mounted volumes; Secret volumes name the example Secret
    // (or one the comments tell to create); every variable is documented.
    let documented = std::fs::read_to_string(repo().join("docs/configuration.md")).unwrap();
    let secrets: Vec<&str> = kind(&all, "Secret")
        .iter()
        .map(|x| s(&x["metadata"]["name"]))
        .collect();
    for d in &deployments {
        let pod = &d["spec"]["template"]["spec"];
        let volumes = pod["volumes"].as_sequence().unwrap();
        for c in pod["containers"].as_sequence().unwrap() {
            if s(&c["name"]) != "pgmaint-exporter" {
                continue;
            }
            let mounts: Vec<(&str, &str)> = c["volumeMounts"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|m| (s(&m["name"]), s(&m["mountPath"])))
                .collect();
            for (name, _) in &mounts {
                let v = volumes
                    .iter()
                    .find(|v| s(&v["name"]) == *name)
                    .expect("mount has a volume");
                if let Some(secret) = v["secret"]["secretName"].as_str() {
                    assert!(secrets.contains(&secret), "Secret {secret} has no example");
                }
            }
            let mut files = vec![];
            for e in c["env"].as_sequence().unwrap() {
                let name = s(&e["name"]);
                assert!(
                    documented.contains(&format!("`{name}`")),
                    "{name} not in docs/configuration.md"
                );
                if name.ends_with("_FILE") {
                    files.push(s(&e["value"]).to_string());
                }
            }
            let has_config = c["env"]
                .as_sequence()
                .unwrap()
                .iter()
                .any(|e| s(&e["name"]) == "PGMAINT_CONFIG_FILE");
            for m in config["auth_modules"].as_mapping().unwrap().values() {
                for k in ["password_file", "sslrootcert"] {
                    if let (true, Some(f)) = (has_config, m[k].as_str()) {
                        files.push(f.to_string());
                    }
                }
            }
            for f in files {
                assert!(
                    mounts.iter().any(|(_, p)| Path::new(&f).starts_with(p)),
                    "{f} is in no mounted volume of {:?}",
                    d["metadata"]["name"]
                );
            }
        }
    }
}

#[test]
fn yaml_is_lint_clean() {
    let o = run(
        "yamllint",
        &[
            "--strict",
            "-d",
            "{extends: relaxed, rules: {line-length: {max: 120}}}",
            "deploy/kubernetes/",
            "examples/prometheus-multi-target.yml",
            "examples/prometheus-file-sd.yml",
            "examples/prometheus-sharded.yml",
            "examples/fleet/",
        ],
        "apt-get install yamllint",
    );
    assert!(o.status.success(), "yamllint:\n{}", text(&o));
}

#[test]
fn prometheus_examples_are_valid_configs() {
    for f in [
        "examples/prometheus-multi-target.yml",
        "examples/prometheus-file-sd.yml",
        "examples/prometheus-sharded.yml",
    ] {
        let o = run("promtool", &["check", "config", f], "apt-get install prometheus");
        assert!(o.status.success(), "{f}:\n{}", text(&o));
        assert!(text(&o).contains("SUCCESS"), "{}", text(&o));
    }
}
