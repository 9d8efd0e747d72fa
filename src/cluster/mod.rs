//! Everything kubesh knows about the cluster it talks to: which context and
//! namespace the kubeconfig names (read from files only — no network call
//! happens before the first prompt), and the connection, opened on first
//! use.

pub mod cluster_env;
pub mod connection;
pub mod dprocs;
pub mod exec;
pub mod forward;
pub mod listening;
pub mod nodes;
pub mod proxy;
pub mod trace;

pub use connection::{ClusterError, Connection};

use std::path::{Path, PathBuf};

use kube::config::Kubeconfig;

/// The context, namespace and environment commands are aimed at.
#[derive(Debug, Clone, Default)]
pub struct ClusterTarget {
    /// The kubeconfig context, `None` when there is no kubeconfig.
    pub context: Option<String>,
    pub namespace: String,
    /// The selected environment (`env select`), if any.
    pub environment: Option<String>,
    /// Why no context could be read, to tell the user when they need one.
    pub problem: Option<String>,
    /// A kubeconfig file to use instead of kubectl's default lookup (the
    /// local cluster's).
    pub kubeconfig: Option<PathBuf>,
    /// No kubeconfig, but kubesh runs in a pod: the cluster is the pod's,
    /// reached with its service account.
    pub in_cluster: bool,
}

impl ClusterTarget {
    /// The names of the kubeconfig's contexts.
    pub fn contexts(&self) -> Result<Vec<String>, KubeconfigProblem> {
        let read = match &self.kubeconfig {
            Some(path) => Kubeconfig::read_from(path),
            None => Kubeconfig::read(),
        };
        let config = read.map_err(KubeconfigProblem)?;
        Ok(config.contexts.into_iter().map(|c| c.name).collect())
    }

    /// The prompt's plain text: `[env@context::namespace]$ `.
    pub fn prompt(&self) -> String {
        let context = match (&self.context, self.in_cluster) {
            (Some(context), _) => context.as_str(),
            (None, true) => "in-cluster",
            (None, false) => "no-context",
        };
        match &self.environment {
            Some(env) => format!("[{env}@{context}::{}]$ ", self.namespace),
            None => format!("[{context}::{}]$ ", self.namespace),
        }
    }

    /// The value of the environment label for this shell's launches.
    pub fn environment_label(&self) -> String {
        self.environment
            .clone()
            .unwrap_or_else(|| crate::labels::GLOBAL_ENVIRONMENT.to_string())
    }

    /// Reads the kubeconfig as kubectl does (`KUBECONFIG`, else
    /// `~/.kube/config`); flags override the current context and its
    /// namespace. Without a kubeconfig, inside a pod, the pod's service
    /// account and namespace (as kubectl and the client libraries do).
    pub fn from_kubeconfig(context: Option<&str>, namespace: Option<&str>) -> ClusterTarget {
        let read = Kubeconfig::read();
        if read.is_err()
            && context.is_none()
            && let Ok(config) = kube::Config::incluster()
        {
            return ClusterTarget {
                namespace: namespace.unwrap_or(&config.default_namespace).to_string(),
                in_cluster: true,
                ..ClusterTarget::default()
            };
        }
        Self::from_read(read, context, namespace)
    }

    /// Reads one kubeconfig file, which kubesh then uses for everything.
    pub fn from_kubeconfig_file(
        path: &Path,
        context: Option<&str>,
        namespace: Option<&str>,
    ) -> ClusterTarget {
        ClusterTarget {
            kubeconfig: Some(path.to_path_buf()),
            ..Self::from_read(Kubeconfig::read_from(path), context, namespace)
        }
    }

    fn from_read(
        read: Result<Kubeconfig, kube::config::KubeconfigError>,
        context: Option<&str>,
        namespace: Option<&str>,
    ) -> ClusterTarget {
        match read {
            Ok(config) => Self::from_config(&config, context, namespace),
            Err(error) => ClusterTarget {
                context: context.map(str::to_string),
                namespace: namespace.unwrap_or("default").to_string(),
                environment: None,
                problem: Some(kubeconfig_problem(&error)),
                kubeconfig: None,
                in_cluster: false,
            },
        }
    }

    fn from_config(
        config: &Kubeconfig,
        context: Option<&str>,
        namespace: Option<&str>,
    ) -> ClusterTarget {
        let context = context
            .map(str::to_string)
            .or_else(|| config.current_context.clone());
        let mut problem = None;
        let context_namespace = match &context {
            Some(name) => match config.contexts.iter().find(|c| &c.name == name) {
                Some(named) => named.context.as_ref().and_then(|c| c.namespace.clone()),
                None => {
                    problem = Some(format!("the kubeconfig has no context named {name}"));
                    None
                }
            },
            None => {
                problem = Some("the kubeconfig has no current context".to_string());
                None
            }
        };
        ClusterTarget {
            context,
            namespace: namespace
                .map(str::to_string)
                .or(context_namespace)
                .unwrap_or_else(|| "default".to_string()),
            environment: None,
            problem,
            kubeconfig: None,
            in_cluster: false,
        }
    }
}

/// Why the kubeconfig could not be used, said plainly.
/// The kubeconfig cannot be read: said as [`kubeconfig_problem`] says it.
#[derive(Debug, thiserror::Error)]
#[error("{}", kubeconfig_problem(.0))]
pub struct KubeconfigProblem(#[source] pub kube::config::KubeconfigError);

fn kubeconfig_problem(error: &kube::config::KubeconfigError) -> String {
    use std::error::Error as _;
    let mut cause = error.source();
    let mut missing = false;
    while let Some(current) = cause {
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            missing |= io.kind() == std::io::ErrorKind::NotFound;
        }
        cause = current.source();
    }
    if missing {
        missing_kubeconfig(std::env::var("KUBECONFIG").ok().as_deref())
    } else {
        format!("the kubeconfig cannot be used: {error}")
    }
}

/// No kubeconfig where `KUBECONFIG` (or, unset, kubectl's default) says:
/// one sentence, which says what runs a cluster here.
fn missing_kubeconfig(kubeconfig: Option<&str>) -> String {
    const LOCAL: &str = "`kubesh --local` runs a cluster on this machine";
    match kubeconfig.filter(|paths| !paths.is_empty()) {
        Some(paths) => format!("KUBECONFIG names {paths}, which does not exist; {LOCAL}"),
        None => format!(
            "no kubeconfig (KUBECONFIG is not set, ~/.kube/config does not exist) and no \
             pod's service account; {LOCAL}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "
apiVersion: v1
kind: Config
current-context: dev
contexts:
- name: dev
  context: {cluster: c, user: u, namespace: shop}
- name: prod
  context: {cluster: c, user: u}
clusters:
- name: c
  cluster: {server: 'https://127.0.0.1:1'}
users:
- name: u
  user: {}
";

    #[test]
    fn current_context_and_its_namespace() {
        let config = Kubeconfig::from_yaml(CONFIG).unwrap();
        let target = ClusterTarget::from_config(&config, None, None);
        assert_eq!(target.context.as_deref(), Some("dev"));
        assert_eq!(target.namespace, "shop");
        assert!(target.problem.is_none());
    }

    #[test]
    fn flags_override() {
        let config = Kubeconfig::from_yaml(CONFIG).unwrap();
        let target = ClusterTarget::from_config(&config, Some("prod"), None);
        assert_eq!(target.namespace, "default");
        let target = ClusterTarget::from_config(&config, Some("nope"), Some("x"));
        assert_eq!(target.namespace, "x");
        assert!(target.problem.unwrap().contains("nope"));
    }

    #[test]
    fn a_missing_kubeconfig_is_one_sentence_naming_the_local_cluster() {
        let unset = missing_kubeconfig(None);
        assert!(
            unset.contains("`kubesh --local` runs a cluster on this machine"),
            "{unset}"
        );
        assert_eq!(unset.matches(". ").count(), 0, "{unset}");
        let named = missing_kubeconfig(Some("/etc/kubernetes/admin.conf"));
        assert!(
            named.contains("KUBECONFIG names /etc/kubernetes/admin.conf, which does not exist"),
            "{named}"
        );
    }

    #[test]
    fn in_a_pod_without_a_kubeconfig_the_prompt_says_in_cluster() {
        let target = ClusterTarget {
            namespace: "team-a".into(),
            in_cluster: true,
            ..ClusterTarget::default()
        };
        assert_eq!(target.prompt(), "[in-cluster::team-a]$ ");
    }
}
