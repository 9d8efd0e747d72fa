//! Delivering the image built for a program to the cluster the context
//! points at, before any object is created. With `KUBESH_REGISTRY` set,
//! the image is pushed there (`push`, with the Docker config's
//! credentials: `auth`) and the pods name it there. Without it, what is
//! found decides ([`choose`], a pure function): nodes that are kind or
//! minikube containers on the same Docker engine get the image loaded
//! into them (`load`), as `kind load docker-image` and `minikube image
//! load` do; kubesh's local cluster runs pods in the engine's images, so
//! nothing is done; any other cluster cannot see the image, which is said
//! in one sentence, and nothing is pushed anywhere that was not
//! configured.

mod auth;
mod load;
mod push;

use std::collections::HashMap;
use std::time::Duration;

use crate::cluster::connection::ClusterError;
use crate::cluster::nodes::{self, NodeFacts};

/// The setting naming the registry built images are pushed to.
pub const REGISTRY: &str = "KUBESH_REGISTRY";

/// The label kind puts on its node containers (the cluster's name).
pub const KIND_LABEL: &str = "io.x-k8s.kind.cluster";

/// The label minikube puts on its node containers (the profile).
pub const MINIKUBE_LABEL: &str = "name.minikube.sigs.k8s.io";

/// How kubesh's local cluster names its container runtime.
const LOCAL_RUNTIME: &str = "kubesh-local://";

/// Why a built image cannot be delivered.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(
        "{REGISTRY}={value:?} is not a registry to push to: {reason}; give its host (and port) \
         and path as an image name has them, as in {REGISTRY}=registry.example.com:5000/team"
    )]
    BadRegistry { value: String, reason: String },
    #[error(
        "{cluster} cannot pull images built on this machine ({why}); set \
         {REGISTRY}=HOST[:PORT][/PATH] to a registry it can pull from (after `docker login` \
         to it, if it asks for credentials), or move the Dockerfile out of the program's \
         directory to run the program in its runtime's image"
    )]
    Unreachable { cluster: String, why: String },
    #[error(
        "kubesh cannot tell whether {cluster} can use images built on this machine, as it may \
         not list the cluster's nodes; set {REGISTRY}=HOST[:PORT][/PATH] to a registry the \
         cluster can pull from"
    )]
    NodesHidden { cluster: String },
    #[error("listing the nodes of {cluster}, to deliver {tag} to them: {source}")]
    Nodes {
        cluster: String,
        tag: String,
        #[source]
        source: ClusterError,
    },
    /// No engine answers (after the build, it went away).
    #[error(transparent)]
    Connect(#[from] kubesh_engine::ConnectError),
    #[error("the Docker engine at {address} refused to {doing}: {message}")]
    Engine {
        address: String,
        doing: String,
        message: String,
    },
    #[error("{0}")]
    LoadFailed(Box<LoadFailure>),
    #[error(
        "the Docker config {path} cannot be used: {reason}; fix it, or log in again with `docker login`"
    )]
    DockerConfig { path: String, reason: String },
    #[error(
        "the credential helper docker-credential-{helper} (named in {path}) gave no credentials \
         for {registry}: {message}"
    )]
    Helper {
        helper: String,
        path: String,
        registry: String,
        message: String,
    },
    #[error(
        "pushing {reference} failed: {message}; check {REGISTRY} and that `docker login {host}` \
         works"
    )]
    PushFailed {
        reference: String,
        host: String,
        message: String,
    },
    #[error("stopped delivering {0}; nothing was created")]
    Interrupted(String),
}

/// A node's import of an image that failed: its command, how it ended,
/// and its own output.
#[derive(Debug, thiserror::Error)]
#[error(
    "loading {tag} into the {flavour} node {node} failed: `{command}` there {status}{}",
    if .output.is_empty() { String::new() } else { format!(":\n{}", .output) }
)]
pub struct LoadFailure {
    pub tag: String,
    pub flavour: String,
    pub node: String,
    pub command: String,
    pub status: String,
    pub output: String,
}

/// A registry as `KUBESH_REGISTRY` names it: `host[:port][/path]`, or a
/// Docker Hub namespace as an image name has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    /// The setting, without a trailing `/`: what image names start with.
    pub prefix: String,
    /// The registry's host (and port), `docker.io` for Docker Hub.
    pub host: String,
}

impl Registry {
    /// The registry `value` names.
    ///
    /// # Errors
    /// It is not the start of an image name.
    pub fn parse(value: &str) -> Result<Registry, DeliveryError> {
        let bad = |reason: &str| DeliveryError::BadRegistry {
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let prefix = value.trim().trim_end_matches('/');
        if prefix.is_empty() {
            return Err(bad("it is empty"));
        }
        if prefix.contains("://") {
            return Err(bad("an image name has no scheme"));
        }
        let (first, rest) = match prefix.split_once('/') {
            Some((first, rest)) => (first, Some(rest)),
            None => (prefix, None),
        };
        // As in an image name: a first part with a dot or a port, or
        // `localhost`, is a host; otherwise it is a Docker Hub namespace.
        let is_host = first.contains('.') || first.contains(':') || first == "localhost";
        let (host, path) = if is_host {
            (first.to_string(), rest)
        } else {
            ("docker.io".to_string(), Some(prefix))
        };
        if is_host {
            let (name, port) = match first.rsplit_once(':') {
                Some((name, port)) => (name, Some(port)),
                None => (first, None),
            };
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            {
                return Err(bad("its host is not a host name or address"));
            }
            if port.is_some_and(|p| p.parse::<u16>().is_err()) {
                return Err(bad("its port is not a number"));
            }
        }
        for part in path.into_iter().flat_map(|p| p.split('/')) {
            let allowed =
                |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c);
            if part.is_empty() || !part.chars().all(allowed) {
                return Err(bad(
                    "the parts of its path must be lower-case letters, digits, `.`, `_` and `-`",
                ));
            }
        }
        // Docker Hub keeps names of two parts (ACCOUNT/REPOSITORY): the
        // three of ACCOUNT/kubesh-build/NAME would be refused at the push.
        if ["docker.io", "index.docker.io", "registry-1.docker.io"].contains(&host.as_str()) {
            return Err(bad(
                "it names Docker Hub, whose image names have two parts (ACCOUNT/REPOSITORY), \
                 too few for kubesh's ACCOUNT/kubesh-build/NAME; name a registry host instead, \
                 e.g. ghcr.io/ACCOUNT or registry.example.com:5000/team",
            ));
        }
        Ok(Registry {
            prefix: prefix.to_string(),
            host,
        })
    }

    /// The name the image `tag` has in this registry.
    pub fn reference(&self, tag: &str) -> String {
        format!("{}/{tag}", self.prefix)
    }
}

/// The image name a pod of the program uses: `tag` as built, or its name
/// in the registry `registry` (the value of `KUBESH_REGISTRY`) names.
///
/// # Errors
/// `registry` is not a registry to push to.
pub fn reference(tag: &str, registry: Option<&str>) -> Result<String, DeliveryError> {
    match registry {
        Some(value) => Ok(Registry::parse(value)?.reference(tag)),
        None => Ok(tag.to_string()),
    }
}

/// What `--dry-run` says of where the image `tag` would go.
pub fn dry_run_note(tag: &str, registry: Option<&str>) -> String {
    match registry.map(Registry::parse) {
        Some(Ok(registry)) => format!(
            "the image would be pushed to {} as {}",
            registry.prefix,
            registry.reference(tag)
        ),
        _ => format!(
            "without {REGISTRY}, the image would be loaded into the nodes of a kind or minikube \
             cluster that are containers on the same Docker engine, used as it is by kubesh's \
             local cluster, and refused by any other cluster"
        ),
    }
}

/// A container running on the engine, as the choice needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineContainer {
    pub id: String,
    /// Its name, without the leading `/`.
    pub name: String,
    pub labels: HashMap<String, String>,
}

/// The tool whose nodes are containers on the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flavour {
    /// kind, with the cluster's name.
    Kind(String),
    /// minikube with the Docker driver, with the profile.
    Minikube(String),
}

impl std::fmt::Display for Flavour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Flavour::Kind(_) => f.write_str("kind"),
            Flavour::Minikube(_) => f.write_str("minikube"),
        }
    }
}

/// How a node's runtime takes an image archive on its stdin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loader {
    /// `ctr --namespace=k8s.io images import --all-platforms --digests -`.
    Containerd,
    /// `docker load`, minikube's Docker runtime.
    Docker,
    /// `podman load`, minikube's CRI-O runtime.
    Podman,
}

/// A node the image is loaded into: the node's container on the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeTarget {
    /// The node's name, also its container's.
    pub node: String,
    /// The container's id on the engine.
    pub container: String,
    pub flavour: Flavour,
    pub loader: Loader,
}

/// Where the image goes, as chosen from what was found (no registry set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// kubesh's local cluster: its pods run in the engine's images.
    Engine,
    /// Into each of these nodes.
    Nodes(Vec<NodeTarget>),
}

/// The flavour of node a container is, by its labels.
fn flavour(container: &EngineContainer) -> Option<Flavour> {
    if let Some(cluster) = container.labels.get(KIND_LABEL) {
        return Some(Flavour::Kind(cluster.clone()));
    }
    container
        .labels
        .get(MINIKUBE_LABEL)
        .map(|profile| Flavour::Minikube(profile.clone()))
}

/// How a node of `flavour` whose runtime is `runtime` loads an image:
/// kind's nodes always run containerd; minikube's say which runtime.
fn loader(flavour: &Flavour, runtime: &str) -> Option<Loader> {
    match flavour {
        Flavour::Kind(_) => Some(Loader::Containerd),
        Flavour::Minikube(_) => match runtime.split("://").next() {
            Some("docker") => Some(Loader::Docker),
            Some("containerd") => Some(Loader::Containerd),
            Some("cri-o") => Some(Loader::Podman),
            _ => None,
        },
    }
}

/// Names for a sentence: `a, b and 3 more`.
fn some_names(names: &[&str]) -> String {
    const SHOWN: usize = 3;
    let mut text = names
        .iter()
        .take(SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text
}

/// Where the image goes when no registry is set, from the cluster's nodes
/// (`None`: they may not be listed) and the containers running on the
/// engine at `address`: into the nodes when every one is a kind or
/// minikube container there (matched by name), as it is for kubesh's
/// local cluster, else nowhere, and `cluster` ("the cluster of context
/// X") is named in the sentence that says so.
///
/// # Errors
/// The cluster cannot see images built here, or that cannot be known.
pub fn choose(
    cluster: &str,
    nodes: Option<&[NodeFacts]>,
    containers: &[EngineContainer],
    address: &str,
) -> Result<Target, DeliveryError> {
    let unreachable = |why: String| DeliveryError::Unreachable {
        cluster: cluster.to_string(),
        why,
    };
    let Some(nodes) = nodes else {
        return Err(DeliveryError::NodesHidden {
            cluster: cluster.to_string(),
        });
    };
    if nodes.is_empty() {
        return Err(unreachable("it lists no nodes".into()));
    }
    let mut targets = Vec::new();
    let mut unmatched = Vec::new();
    for node in nodes {
        let found = containers.iter().find_map(|container| {
            let flavour = flavour(container)?;
            (container.name == node.name).then_some((container, flavour))
        });
        match found {
            Some((container, flavour)) => {
                let Some(loader) = loader(&flavour, &node.runtime) else {
                    return Err(unreachable(format!(
                        "its {flavour} node {} runs {}, and kubesh loads images only into \
                         docker, containerd and cri-o",
                        node.name, node.runtime
                    )));
                };
                targets.push(NodeTarget {
                    node: node.name.clone(),
                    container: container.id.clone(),
                    flavour,
                    loader,
                });
            }
            None => unmatched.push(node),
        }
    }
    if unmatched.is_empty() {
        return Ok(Target::Nodes(targets));
    }
    if targets.is_empty() && nodes.iter().all(|n| n.runtime.starts_with(LOCAL_RUNTIME)) {
        return Ok(Target::Engine);
    }
    let names: Vec<&str> = unmatched.iter().map(|n| n.name.as_str()).collect();
    let (these, are) = match names.as_slice() {
        [one] => (
            format!("node {one}"),
            "is not a kind or minikube node container",
        ),
        _ => (
            format!("nodes {}", some_names(&names)),
            "are not kind or minikube node containers",
        ),
    };
    let why = if targets.is_empty() {
        format!("its {these} {are} on the Docker engine at {address}")
    } else {
        let found: Vec<&str> = targets.iter().map(|t| t.node.as_str()).collect();
        format!(
            "{} {} on the Docker engine at {address}, but its {these} {}",
            some_names(&found),
            if found.len() == 1 {
                "is a node container"
            } else {
                "are node containers"
            },
            if names.len() == 1 {
                "is not"
            } else {
                "are not"
            }
        )
    };
    Err(unreachable(why))
}

/// What a delivery came to, for the line that says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// Nothing to do: the cluster runs the engine's images.
    AsItIs,
    /// The nodes had it already.
    AlreadyLoaded,
    /// Loaded into these nodes, in this long.
    Loaded {
        flavour: Flavour,
        nodes: Vec<String>,
        took: Duration,
    },
    /// The registry had it already.
    AlreadyPushed,
    /// Pushed to the registry as `reference`, in this long.
    Pushed { reference: String, took: Duration },
}

impl Delivered {
    /// The line that says what was done, when something was.
    pub fn said(&self, tag: &str) -> Option<String> {
        match self {
            Delivered::Loaded {
                flavour,
                nodes,
                took,
            } => {
                let names: Vec<&str> = nodes.iter().map(String::as_str).collect();
                Some(format!(
                    "loaded {tag} into the {flavour} {} {} in {:.1} s",
                    if nodes.len() == 1 { "node" } else { "nodes" },
                    some_names(&names),
                    took.as_secs_f64()
                ))
            }
            Delivered::Pushed { reference, took } => {
                Some(format!("pushed {reference} in {:.1} s", took.as_secs_f64()))
            }
            Delivered::AsItIs | Delivered::AlreadyLoaded | Delivered::AlreadyPushed => None,
        }
    }
}

/// Delivers the image `tag` (built, on the engine) to the cluster
/// `client` talks to, named `cluster` in messages ("the cluster of
/// context X"): pushed to `registry` (the value of `KUBESH_REGISTRY`) when
/// it is set, else as [`choose`] decides. With `show_progress`, an
/// updating line on stderr says how far it has come (a launch, which holds
/// the terminal); without, nothing is drawn (a rebuild on a save).
///
/// # Errors
/// See [`DeliveryError`].
pub async fn deliver(
    client: &kube::Client,
    server: &str,
    cluster: &str,
    tag: &str,
    registry: Option<&str>,
    show_progress: bool,
) -> Result<Delivered, DeliveryError> {
    let address = kubesh_engine::engine_address();
    if let Some(value) = registry {
        let registry = Registry::parse(value)?;
        let docker = kubesh_engine::connect().await?;
        return push::push(&docker, &address, tag, &registry, show_progress).await;
    }
    let nodes = nodes::facts(client, server)
        .await
        .map_err(|source| DeliveryError::Nodes {
            cluster: cluster.to_string(),
            tag: tag.to_string(),
            source,
        })?;
    let docker = kubesh_engine::connect().await?;
    let containers = load::containers(&docker, &address).await?;
    match choose(cluster, nodes.as_deref(), &containers, &address)? {
        Target::Engine => Ok(Delivered::AsItIs),
        Target::Nodes(targets) => load::load(&docker, &address, tag, &targets, show_progress).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENGINE: &str = "unix:///var/run/docker.sock";

    fn node(name: &str, runtime: &str) -> NodeFacts {
        NodeFacts {
            name: name.into(),
            runtime: runtime.into(),
        }
    }

    fn container(name: &str, label: Option<(&str, &str)>) -> EngineContainer {
        EngineContainer {
            id: format!("id-{name}"),
            name: name.into(),
            labels: label
                .map(|(k, v)| [(k.to_string(), v.to_string())].into())
                .unwrap_or_default(),
        }
    }

    #[test]
    fn kind_nodes_on_this_engine_get_the_image_loaded_into_each() {
        let nodes = [
            node("dev-control-plane", "containerd://1.7.18"),
            node("dev-worker", "containerd://1.7.18"),
        ];
        let containers = [
            container("registry", None),
            container("dev-worker", Some((KIND_LABEL, "dev"))),
            container("dev-control-plane", Some((KIND_LABEL, "dev"))),
        ];
        let chosen = choose(
            "the cluster of context kind-dev",
            Some(&nodes),
            &containers,
            ENGINE,
        );
        let Ok(Target::Nodes(targets)) = chosen else {
            panic!("loaded into the nodes: {chosen:?}");
        };
        assert_eq!(
            targets
                .iter()
                .map(|t| (t.node.as_str(), t.container.as_str(), t.loader))
                .collect::<Vec<_>>(),
            [
                (
                    "dev-control-plane",
                    "id-dev-control-plane",
                    Loader::Containerd
                ),
                ("dev-worker", "id-dev-worker", Loader::Containerd),
            ]
        );
        assert_eq!(targets[0].flavour, Flavour::Kind("dev".into()));
    }

    #[test]
    fn minikube_nodes_load_as_their_runtime_does() {
        let containers = [container("minikube", Some((MINIKUBE_LABEL, "minikube")))];
        for (runtime, loader) in [
            ("docker://27.4.1", Loader::Docker),
            ("containerd://1.7.23", Loader::Containerd),
            ("cri-o://1.29.1", Loader::Podman),
        ] {
            let nodes = [node("minikube", runtime)];
            let chosen = choose(
                "the cluster of context minikube",
                Some(&nodes),
                &containers,
                ENGINE,
            );
            let Ok(Target::Nodes(targets)) = chosen else {
                panic!("loaded into the node: {chosen:?}");
            };
            assert_eq!(targets[0].loader, loader, "{runtime}");
            assert_eq!(targets[0].flavour, Flavour::Minikube("minikube".into()));
        }
    }

    #[test]
    fn kubesh_s_local_cluster_uses_the_engine_s_image_as_it_is() {
        let nodes = [node("kubesh-local", "kubesh-local://processes")];
        let chosen = choose(
            "the cluster of context kubesh-local",
            Some(&nodes),
            &[],
            ENGINE,
        );
        assert_eq!(chosen.ok(), Some(Target::Engine));
    }

    #[test]
    fn another_cluster_is_refused_in_one_sentence_that_names_the_context() {
        let nodes = [
            node("gke-pool-1-abc", "containerd://1.7.15"),
            node("gke-pool-1-def", "containerd://1.7.15"),
        ];
        // A container of the same name that is no node is not taken for one.
        let containers = [container("gke-pool-1-abc", None)];
        let error = choose(
            "the cluster of context prod",
            Some(&nodes),
            &containers,
            ENGINE,
        )
        .expect_err("refused");
        let said = error.to_string();
        assert_eq!(
            said,
            "the cluster of context prod cannot pull images built on this machine (its nodes \
             gke-pool-1-abc, gke-pool-1-def are not kind or minikube node containers on the \
             Docker engine at unix:///var/run/docker.sock); set KUBESH_REGISTRY=HOST[:PORT][/PATH] \
             to a registry it can pull from (after `docker login` to it, if it asks for \
             credentials), or move the Dockerfile out of the program's directory to run the \
             program in its runtime's image"
        );
        assert!(!said.contains('\n'));
    }

    #[test]
    fn a_cluster_whose_nodes_are_only_partly_here_or_hidden_is_refused() {
        let nodes = [
            node("dev-control-plane", "containerd://1.7.18"),
            node("far-away", "containerd://1.7.18"),
        ];
        let containers = [container("dev-control-plane", Some((KIND_LABEL, "dev")))];
        let said = choose(
            "the cluster of context x",
            Some(&nodes),
            &containers,
            ENGINE,
        )
        .expect_err("refused")
        .to_string();
        assert!(
            said.contains(
                "(dev-control-plane is a node container on the Docker engine at \
             unix:///var/run/docker.sock, but its node far-away is not)"
            ),
            "{said}"
        );
        // A local cluster's node beside another is not the local cluster.
        let mixed = [
            node("kubesh-local", "kubesh-local://processes"),
            node("worker-1", "containerd://1.7.18"),
        ];
        assert!(matches!(
            choose("c", Some(&mixed), &[], ENGINE),
            Err(DeliveryError::Unreachable { .. })
        ));
        assert!(matches!(
            choose("c", Some(&[]), &[], ENGINE),
            Err(DeliveryError::Unreachable { .. })
        ));
        let hidden = choose("the cluster of context team", None, &[], ENGINE).expect_err("refused");
        assert!(
            hidden.to_string().starts_with(
                "kubesh cannot tell whether the cluster of context team can use images built on \
                 this machine"
            ),
            "{hidden}"
        );
    }

    #[test]
    fn a_registry_is_the_start_of_an_image_name() {
        let registry = Registry::parse("registry.example.com:5000/team/").expect("a registry");
        assert_eq!(registry.host, "registry.example.com:5000");
        assert_eq!(
            registry.reference("kubesh-build/app:0123abcd"),
            "registry.example.com:5000/team/kubesh-build/app:0123abcd"
        );
        assert_eq!(
            Registry::parse("127.0.0.1:5000").expect("host").host,
            "127.0.0.1:5000"
        );
        assert_eq!(
            Registry::parse("localhost/x").expect("host").host,
            "localhost"
        );
        for hub in ["ada", "docker.io/ada", "ada/team"] {
            let said = Registry::parse(hub).expect_err(hub).to_string();
            assert!(said.contains("names Docker Hub"), "{said}");
        }
        for bad in [
            "",
            "https://reg.example",
            "reg.example/Team",
            "reg.example:port/x",
            "a b",
        ] {
            let said = Registry::parse(bad).expect_err(bad).to_string();
            assert!(said.starts_with("KUBESH_REGISTRY="), "{said}");
        }
        assert_eq!(
            reference("kubesh-build/app:1", None).expect("as built"),
            "kubesh-build/app:1"
        );
    }
}
