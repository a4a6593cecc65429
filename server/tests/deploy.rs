//! The packaging under `deploy/`, checked with what runs here (no Docker engine, no Kubernetes,
//! no helm binary):
//!
//! - the Helm chart rendered by a small renderer of the template subset the chart uses (values,
//!   `quote`, `indent N`, `if [not]`/`else`/`end`, trim markers, comments; anything else fails
//!   the test, so the chart stays inside it), every template parsed as YAML, and the probes,
//!   preStop drain, grace period, ports and `COBRA_*` variables checked against the server's
//!   options (`cobra run --help`);
//! - the systemd unit's stop signal and timeout against the drain window, its variables against
//!   the options (`systemd-analyze verify` runs in `scripts/test-ops.sh`);
//! - the Dockerfile's runtime stage: non-root, HEALTHCHECK through `cobra probe`, the port.
//!
//! Also the options table of `docs/operations.md` against `cobra run --help`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml_ng::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One option of `cobra run --help`: flag, env var, default.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HelpOption {
    flag: String,
    env: Option<String>,
    default: Option<String>,
}

/// The options `cobra run --help` prints (every one but --help).
fn run_help_options() -> Vec<HelpOption> {
    let out = Command::new(env!("CARGO_BIN_EXE_cobra"))
        .args(["run", "--help"])
        .env_clear()
        .output()
        .expect("cobra run --help");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    // clap prints each option as `  [-r, ]--flag[ <VALUE>]` then its help, which may run over
    // several lines and ends with `[env: NAME=]` and `[default: X]`.
    let mut options: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let t = line.trim_start();
        // `-r, --redis`, `-h, --help`: the short form first.
        let start = match t.as_bytes() {
            [b'-', c, b',', b' ', ..] if c.is_ascii_alphanumeric() => &t[4..],
            _ => t,
        };
        if line.starts_with("  ") && start.starts_with("--") && !line.starts_with("          ") {
            let flag = start.split_whitespace().next().unwrap().to_owned();
            options.push((flag, line.to_owned()));
        } else if let Some(last) = options.last_mut() {
            last.1.push(' ');
            last.1.push_str(t);
        }
    }
    let bracket = |text: &str, key: &str| {
        let start = text.find(&format!("[{key}: "))? + key.len() + 3;
        let end = start + text[start..].find(']')?;
        Some(text[start..end].to_owned())
    };
    options
        .into_iter()
        .filter(|(flag, _)| flag != "--help" && flag != "--version")
        .map(|(flag, text)| HelpOption {
            env: bracket(&text, "env").map(|e| e.trim_end_matches('=').to_owned()),
            default: bracket(&text, "default"),
            flag,
        })
        .collect()
}

fn option_envs() -> BTreeSet<String> {
    run_help_options()
        .into_iter()
        .filter_map(|o| o.env)
        .collect()
}

#[test]
fn options_table_matches_cobra_run_help() {
    let doc = std::fs::read_to_string(repo().join("docs/operations.md")).unwrap();
    let start = doc
        .find("<!-- options-table -->")
        .expect("docs/operations.md marks its options table");
    let mut rows = BTreeMap::new();
    for line in doc[start..].lines().skip(1) {
        let Some(row) = line.strip_prefix('|') else {
            if rows.is_empty() {
                continue;
            }
            break;
        };
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        if cells.len() < 4 || !cells[0].starts_with("`--") {
            continue;
        }
        let strip = |c: &str| c.trim_matches('`').to_owned();
        let default = match cells[2] {
            d if d.is_empty() || d.starts_with("none") => None,
            d => Some(strip(d)),
        };
        rows.insert(
            strip(cells[0]),
            (strip(cells[1]), default, cells[3].to_owned()),
        );
    }
    let help = run_help_options();
    assert!(
        help.len() >= 20,
        "parsed {} options from --help",
        help.len()
    );
    for o in &help {
        let (env, default, meaning) = rows
            .get(&o.flag)
            .unwrap_or_else(|| panic!("{} is missing from the table", o.flag));
        assert_eq!(Some(env), o.env.as_ref(), "{}: env var", o.flag);
        assert_eq!(default, &o.default, "{}: default", o.flag);
        assert!(!meaning.is_empty(), "{}: meaning", o.flag);
    }
    let flags: BTreeSet<&String> = help.iter().map(|o| &o.flag).collect();
    for flag in rows.keys() {
        assert!(
            flags.contains(flag),
            "{flag} is in the table but not an option"
        );
    }
}

// ---- A renderer for the chart's subset of Go templates ----

#[derive(Debug)]
enum Node {
    Text(String),
    Value {
        path: String,
        pipes: Vec<String>,
    },
    If {
        not: bool,
        path: String,
        then: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

/// Splits a template into text and actions, applying the `{{-` / `-}}` trim markers.
fn lex(src: &str) -> Vec<(bool, String)> {
    let mut out: Vec<(bool, String)> = Vec::new();
    let mut rest = src;
    let mut trim_next = false;
    while let Some(open) = rest.find("{{") {
        let mut text = &rest[..open];
        if trim_next {
            text = text.trim_start();
        }
        let after = &rest[open + 2..];
        let close = after.find("}}").expect("unclosed {{");
        let mut action = &after[..close];
        if let Some(a) = action.strip_prefix('-') {
            text = text.trim_end();
            action = a;
        }
        trim_next = false;
        if let Some(a) = action.strip_suffix('-') {
            trim_next = true;
            action = a;
        }
        out.push((false, text.to_owned()));
        out.push((true, action.trim().to_owned()));
        rest = &after[close + 2..];
    }
    out.push((
        false,
        if trim_next { rest.trim_start() } else { rest }.to_owned(),
    ));
    out
}

fn parse(tokens: &mut std::vec::IntoIter<(bool, String)>) -> (Vec<Node>, Option<String>) {
    let mut nodes = Vec::new();
    while let Some((is_action, s)) = tokens.next() {
        if !is_action {
            nodes.push(Node::Text(s));
            continue;
        }
        if s.starts_with("/*") {
            continue;
        }
        if s == "end" || s == "else" {
            return (nodes, Some(s));
        }
        if let Some(cond) = s.strip_prefix("if ") {
            let (not, path) = match cond.trim().strip_prefix("not ") {
                Some(p) => (true, p.trim().to_owned()),
                None => (false, cond.trim().to_owned()),
            };
            let (then, stop) = parse(tokens);
            let otherwise = if stop.as_deref() == Some("else") {
                let (o, stop) = parse(tokens);
                assert_eq!(stop.as_deref(), Some("end"), "`if` without `end`");
                o
            } else {
                assert_eq!(stop.as_deref(), Some("end"), "`if` without `end`");
                Vec::new()
            };
            nodes.push(Node::If {
                not,
                path,
                then,
                otherwise,
            });
            continue;
        }
        let mut parts = s.split('|').map(|p| p.trim().to_owned());
        let path = parts.next().unwrap();
        assert!(
            path.starts_with('.') && !path.contains(' '),
            "unsupported template action `{s}`: keep the chart to the renderer's subset"
        );
        let pipes: Vec<String> = parts.collect();
        for p in &pipes {
            assert!(
                p == "quote" || p.starts_with("indent "),
                "unsupported pipe `{p}` in `{s}`"
            );
        }
        nodes.push(Node::Value { path, pipes });
    }
    (nodes, None)
}

fn lookup<'a>(ctx: &'a Value, path: &str) -> &'a Value {
    let mut v = ctx;
    for key in path.trim_start_matches('.').split('.') {
        v = v
            .get(key)
            .unwrap_or_else(|| panic!("template refers to {path}, which is not defined"));
    }
    v
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::String(s) => !s.is_empty(),
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::Sequence(s) => !s.is_empty(),
        Value::Mapping(m) => !m.is_empty(),
        Value::Tagged(_) => true,
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        other => panic!("not a scalar: {other:?}"),
    }
}

fn render_nodes(nodes: &[Node], ctx: &Value, out: &mut String) {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Value { path, pipes } => {
                let mut s = scalar(lookup(ctx, path));
                for p in pipes {
                    if p == "quote" {
                        s = format!("{s:?}");
                    } else if let Some(n) = p.strip_prefix("indent ") {
                        let pad = " ".repeat(n.parse().unwrap());
                        s = s
                            .lines()
                            .map(|l| format!("{pad}{l}"))
                            .collect::<Vec<_>>()
                            .join("\n");
                    }
                }
                out.push_str(&s);
            }
            Node::If {
                not,
                path,
                then,
                otherwise,
            } => {
                let take = truthy(lookup(ctx, path)) != *not;
                render_nodes(if take { then } else { otherwise }, ctx, out);
            }
        }
    }
}

fn render(template: &str, ctx: &Value) -> String {
    let mut tokens = lex(template).into_iter();
    let (nodes, stop) = parse(&mut tokens);
    assert!(stop.is_none(), "stray {stop:?}");
    let mut out = String::new();
    render_nodes(&nodes, ctx, &mut out);
    out
}

fn chart_dir() -> PathBuf {
    repo().join("deploy/helm/cobra")
}

/// Renders every template with the chart's values plus `overrides` (`a.b` = YAML value);
/// returns each non-empty document by kind.
fn render_chart(overrides: &[(&str, &str)]) -> BTreeMap<String, Value> {
    let mut values: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(chart_dir().join("values.yaml")).unwrap())
            .unwrap();
    for (path, v) in overrides {
        let mut slot = &mut values;
        for key in path.split('.') {
            slot = slot
                .get_mut(key)
                .unwrap_or_else(|| panic!("no value {path}"));
        }
        *slot = serde_yaml_ng::from_str(v).unwrap();
    }
    let chart: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(chart_dir().join("Chart.yaml")).unwrap())
            .unwrap();
    let ctx: Value = serde_yaml_ng::from_str(&format!(
        "Values: {}\nRelease: {{Name: game, Namespace: default}}\nChart: {}\n",
        serde_json::to_string(&values).unwrap(),
        serde_json::to_string(&chart).unwrap()
    ))
    .unwrap();
    let mut docs = BTreeMap::new();
    for entry in std::fs::read_dir(chart_dir().join("templates")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let rendered = render(&text, &ctx);
        let doc: Value = serde_yaml_ng::from_str(&rendered).unwrap_or_else(|e| {
            panic!(
                "{} renders to invalid YAML: {e}\n{rendered}",
                path.display()
            )
        });
        if doc.is_null() {
            continue;
        }
        let kind = doc["kind"].as_str().expect("kind").to_owned();
        assert!(docs.insert(kind.clone(), doc).is_none(), "two {kind}s");
    }
    docs
}

fn env_of(container: &Value) -> BTreeMap<String, Value> {
    container["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_owned(), e.clone()))
        .collect()
}

#[test]
fn helm_chart_renders_and_matches_the_server() {
    let docs = render_chart(&[]);
    let kinds: Vec<&str> = docs.keys().map(String::as_str).collect();
    assert_eq!(
        kinds,
        ["Deployment", "PodDisruptionBudget", "Secret", "Service"],
        "HPA and ServiceMonitor are optional, off by default"
    );
    let deploy = &docs["Deployment"];
    let pod = &deploy["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    let env = env_of(c);
    let known = option_envs();
    for name in env.keys() {
        assert!(known.contains(name), "{name} is not an option of cobra run");
    }
    let port: u64 = env["COBRA_PORT"]["value"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(c["ports"][0]["containerPort"].as_u64(), Some(port));
    assert_eq!(c["ports"][0]["name"], "ws");
    assert_eq!(env["COBRA_HOST"]["value"], "0.0.0.0");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/health/live");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/health/ready");
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(
            c[probe]["httpGet"]["port"], "ws",
            "{probe} on the server's port"
        );
    }
    let pre_stop: Vec<&str> = c["lifecycle"]["preStop"]["exec"]["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(pre_stop, ["/usr/local/bin/cobra", "drain", "--pid", "1"]);
    let drain: u64 = env["COBRA_DRAIN_SECONDS"]["value"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    assert!(
        grace > drain,
        "grace {grace} s must exceed the drain {drain} s"
    );
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    // The apps config: a Secret mounted where COBRA_APPS_CONFIG points, valid for the server.
    let mount = c["volumeMounts"][0]["mountPath"].as_str().unwrap();
    assert_eq!(
        env["COBRA_APPS_CONFIG"]["value"].as_str().unwrap(),
        format!("{mount}/apps.yaml")
    );
    let secret = &docs["Secret"];
    assert_eq!(
        pod["volumes"][0]["secret"]["secretName"],
        secret["metadata"]["name"]
    );
    let apps = secret["stringData"]["apps.yaml"].as_str().unwrap();
    cobra_server::config::AppsConfig::from_yaml(apps).expect("the chart's apps config is valid");
    // The Service reaches the pods' port.
    let svc = &docs["Service"];
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "ws");
    assert_eq!(
        svc["spec"]["selector"],
        deploy["spec"]["selector"]["matchLabels"]
    );
    assert_eq!(
        docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
        deploy["spec"]["selector"]["matchLabels"]
    );
    assert_eq!(deploy["spec"]["replicas"].as_u64(), Some(3));

    // The optional parts, and Redis.
    let docs = render_chart(&[
        ("autoscaling.enabled", "true"),
        ("serviceMonitor.enabled", "true"),
        ("redis.urls", "redis://r1:6379;redis://r2:6379"),
        ("redis.passwordSecret", "redis-auth"),
        ("appsConfig.existingSecret", "my-apps"),
    ]);
    assert!(!docs.contains_key("Secret"), "an existing Secret is used");
    let deploy = &docs["Deployment"];
    assert!(
        deploy["spec"].get("replicas").is_none(),
        "the HPA owns replicas"
    );
    let pod = &deploy["spec"]["template"]["spec"];
    assert_eq!(pod["volumes"][0]["secret"]["secretName"], "my-apps");
    let env = env_of(&pod["containers"][0]);
    assert_eq!(
        env["COBRA_REDIS_URLS"]["value"],
        "redis://r1:6379;redis://r2:6379"
    );
    assert_eq!(
        env["COBRA_REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"],
        "redis-auth"
    );
    let hpa = &docs["HorizontalPodAutoscaler"];
    assert_eq!(
        hpa["spec"]["scaleTargetRef"]["name"],
        deploy["metadata"]["name"]
    );
    let sm = &docs["ServiceMonitor"];
    assert_eq!(sm["spec"]["endpoints"][0]["path"], "/metrics");
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "ws");
}

#[test]
fn systemd_unit_drains_within_its_stop_timeout() {
    let unit = std::fs::read_to_string(repo().join("deploy/systemd/cobra.service")).unwrap();
    let settings: Vec<(&str, &str)> = unit
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .collect();
    let get = |key: &str| {
        settings
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("no {key}="))
    };
    assert_eq!(get("KillSignal"), "SIGTERM", "SIGTERM drains");
    assert!(get("ExecReload").contains("-HUP"), "reload is SIGHUP");
    let known = option_envs();
    let mut drain = None;
    for (k, v) in &settings {
        if *k == "Environment" {
            let (name, value) = v.split_once('=').unwrap();
            assert!(known.contains(name), "{name} is not an option of cobra run");
            if name == "COBRA_DRAIN_SECONDS" {
                drain = Some(value.parse::<u64>().unwrap());
            }
        }
    }
    let drain = drain.expect("the unit sets COBRA_DRAIN_SECONDS");
    let stop: u64 = get("TimeoutStopSec").parse().unwrap();
    assert!(
        stop > drain,
        "TimeoutStopSec {stop} must exceed the drain {drain}"
    );
    assert!(get("LimitNOFILE").parse::<u64>().unwrap() >= 65536);
    for hardening in [
        "NoNewPrivileges",
        "ProtectSystem",
        "PrivateTmp",
        "ProtectHome",
    ] {
        assert!(settings.iter().any(|(k, _)| *k == hardening), "{hardening}");
    }
}

#[test]
fn dockerfile_runs_as_non_root_with_a_health_check() {
    let text = std::fs::read_to_string(repo().join("deploy/Dockerfile")).unwrap();
    let runtime = &text[text.rfind("\nFROM ").unwrap()..];
    assert!(runtime.contains("distroless"), "distroless runtime");
    let user = runtime
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("USER");
    assert!(
        !user.starts_with("0") && !user.starts_with("root"),
        "non-root: {user}"
    );
    assert!(runtime.contains("STOPSIGNAL SIGTERM"));
    assert!(runtime.contains(r#"CMD ["/usr/local/bin/cobra", "probe", "ready"]"#));
    let known = option_envs();
    let env_block: Vec<&str> = runtime
        .split("ENV ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .filter(|w| w.starts_with("COBRA_"))
        .collect();
    let mut port = None;
    for kv in env_block {
        let (name, value) = kv.split_once('=').unwrap();
        assert!(known.contains(name), "{name} is not an option of cobra run");
        if name == "COBRA_PORT" {
            port = Some(value.to_owned());
        }
    }
    assert!(runtime.contains(&format!("EXPOSE {}", port.expect("COBRA_PORT"))));
}
