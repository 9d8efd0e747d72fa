//! What the integration tests share: a `kubesh` command with its own home,
//! data and config directories and a kubeconfig naming a known context.

#![allow(dead_code)] // each test file uses its own part of this module

use std::path::{Path, PathBuf};
use std::process::Command;

pub const KUBECONFIG: &str = "\
apiVersion: v1
kind: Config
current-context: test-ctx
contexts:
- name: test-ctx
  context: {cluster: c, user: u, namespace: shop}
clusters:
- name: c
  cluster: {server: 'https://127.0.0.1:9'}
users:
- name: u
  user: {token: not-a-real-token}
";

/// An isolated place to run kubesh in.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::tempdir().expect("temporary directory");
        for sub in ["home", "data", "config", "work"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("sandbox directory");
        }
        std::fs::write(dir.path().join("kubeconfig"), KUBECONFIG).expect("kubeconfig");
        Sandbox { dir }
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// The working directory kubesh starts in.
    pub fn work(&self) -> PathBuf {
        self.path("work")
    }

    pub fn write(&self, relative: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.work().join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("parent directory");
        }
        std::fs::write(&path, contents).expect("writing a test file");
        path
    }

    /// `kubesh` with this sandbox's environment and working directory.
    pub fn command(&self) -> Command {
        let mut command = Command::new(kubesh_binary());
        self.apply(&mut command);
        command
    }

    pub fn apply(&self, command: &mut Command) {
        command
            .current_dir(self.work())
            .env("HOME", self.path("home"))
            .env("XDG_DATA_HOME", self.path("data"))
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("KUBECONFIG", self.path("kubeconfig"))
            .env_remove("NO_COLOR");
    }

    pub fn history_file(&self) -> PathBuf {
        self.path("data/kubesh/history")
    }
}

pub fn kubesh_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_kubesh"))
}
