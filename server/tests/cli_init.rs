//! `cobra init` and `cobra secret`, run as the real binary.

use std::path::Path;
use std::process::{Command, Output};

use cobra_server::config::{AppsConfig, Permissions};

fn cobra(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cobra"))
        .args(args)
        .env("HOME", home)
        .env_remove("COBRA_APPS_CONFIG")
        .env_remove("COBRA_APPS_CONFIG_PATH")
        .env_remove("COBRA_APPS_CONFIG_CONTENT")
        .output()
        .expect("run cobra")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn init_writes_the_default_config_in_home() {
    let home = tempfile::tempdir().unwrap();
    let out = cobra(home.path(), &["init"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let path = home.path().join(".cobra.yaml");
    let stdout = text(&out.stdout);
    assert!(stdout.contains(&path.display().to_string()), "{stdout}");
    for line in [
        "app _health: role health",
        "app _stats: role stats",
        "app _admin: role admin",
        "app _pubsub: role pubsub",
    ] {
        assert!(stdout.contains(line), "{line} missing in {stdout}");
    }
    let config = AppsConfig::from_yaml(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(config.apps.len(), 4);
    let role = config.app("_pubsub").unwrap().role("pubsub").unwrap();
    assert_eq!(role.permissions, Permissions::all());
    assert!(!stdout.contains(&role.secret), "secrets stay in the file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

#[test]
fn init_refuses_to_overwrite_without_force() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("conf/apps.yaml");
    let path_arg = path.to_str().unwrap();
    assert_eq!(
        cobra(home.path(), &["init", "--apps-config", path_arg])
            .status
            .code(),
        Some(0)
    );
    let first = std::fs::read_to_string(&path).unwrap();

    let out = cobra(home.path(), &["init", "--apps-config", path_arg]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("already exists (use --force to overwrite)"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        first,
        "left untouched"
    );

    // The Python spelling of the option, and --force.
    let out = cobra(
        home.path(),
        &["init", "--apps_config_path", path_arg, "--force"],
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let second = std::fs::read_to_string(&path).unwrap();
    assert_ne!(second, first, "fresh secrets");
    AppsConfig::from_yaml(&second).unwrap();
    assert!(!home.path().join(".cobra.yaml").exists());
}

#[test]
fn secret_prints_fresh_hex() {
    let home = tempfile::tempdir().unwrap();
    let secrets: Vec<String> = (0..2)
        .map(|_| {
            let out = cobra(home.path(), &["secret"]);
            assert_eq!(out.status.code(), Some(0));
            text(&out.stdout).trim_end().to_owned()
        })
        .collect();
    for s in &secrets {
        assert_eq!(s.len(), 32, "{s}");
        assert!(s.bytes().all(|b| b.is_ascii_hexdigit()), "{s}");
    }
    assert_ne!(secrets[0], secrets[1]);
}
