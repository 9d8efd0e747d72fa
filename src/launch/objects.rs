//! The Kubernetes objects of a dproc, built as pure functions: a Deployment
//! and a Service for a background program, a Pod for a foreground one, and
//! the ConfigMaps holding its bundle. All carry kubesh's labels, so that
//! the cluster — not kubesh — is the record of what runs.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapEnvSource, ConfigMapProjection, Container, ContainerPort,
    EmptyDirVolumeSource, EnvFromSource, EnvVar, KeyToPath, Pod, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, ProjectedVolumeSource, ResourceRequirements, SeccompProfile,
    SecretEnvSource, SecurityContext, Service, ServicePort, ServiceSpec, TCPSocketAction, Volume,
    VolumeMount, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::names;
use super::program::Program;
use crate::labels::{
    ANNOTATION_BUNDLE, ANNOTATION_CHUNK, ANNOTATION_COMMAND, ANNOTATION_SOURCE, LABEL_DPROC,
    LABEL_ENVIRONMENT, LABEL_KIND, LABEL_MANAGED_BY, LABEL_NAME, LABEL_RUNTIME, MANAGED_BY_KUBESH,
};

/// Where the bundle is unpacked and the program runs.
pub const APP_DIR: &str = "/app";
/// Where the supervisor and the live updates meet (a FIFO and a state file).
pub const RUN_DIR: &str = "/kubesh/run";
/// The supervisor, `sh -c`'s script: the program is its arguments.
const SUPERVISOR: &str = include_str!("supervise.sh");
const BUNDLE_DIR: &str = "/kubesh/bundle";
/// The key of a bundle piece in its ConfigMap.
const BUNDLE_KEY: &str = "bundle.tgz";
/// The home directory of a program under the restricted profile: an
/// empty directory it may write to, where an image's own home is not its
/// user's (npm's cache, bundler's settings).
pub const HOME_DIR: &str = "/kubesh/home";
/// The user and group a program runs as under the restricted profile:
/// the first user of most distributions (`node` in the Node.js images),
/// numeric so that the kubelet can tell it is not root.
pub const RESTRICTED_USER: i64 = 1000;
/// What the unpack step asks for: a `tar` of a few MiB.
const UNPACK_REQUESTS: (&str, &str) = ("10m", "16Mi");

/// How the program's containers may act on their node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// As the image says: its user (often root), a container runtime's
    /// default capabilities.
    Default,
    /// What a namespace enforcing Pod Security `restricted` admits: a
    /// non-root user, no privilege escalation, no capabilities, the
    /// runtime's default seccomp profile, and a writable `HOME`.
    Restricted,
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::Default => "default",
            Profile::Restricted => "restricted",
        }
    }
}

/// What each container asks the scheduler for, as Kubernetes quantities;
/// `None`: nothing asked for that resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requests {
    pub cpu: Option<String>,
    pub memory: Option<String>,
}

impl Requests {
    /// `cpu 100m, memory 128Mi`, or `none`.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = [("cpu", &self.cpu), ("memory", &self.memory)]
            .into_iter()
            .filter_map(|(name, value)| value.as_ref().map(|v| format!("{name} {v}")))
            .collect();
        if parts.is_empty() {
            "none".to_string()
        } else {
            parts.join(", ")
        }
    }
}

/// A ConfigMap or Secret exported with `export --from-configmap/--from-secret`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvSource {
    ConfigMap(String),
    Secret(String),
}

/// Everything decided about one launch.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The Service / Deployment / Pod name.
    pub name: String,
    pub dproc_id: String,
    pub namespace: String,
    pub environment: String,
    /// `&`: a Deployment behind a Service; otherwise a Pod.
    pub background: bool,
    pub replicas: i32,
    /// The Service's port, and the program's `PORT`.
    pub port: u16,
    /// The port the program listens on in its container: `port`, unless
    /// the program was found listening on another (a hard-coded port).
    pub listen_port: u16,
    pub program: Program,
    /// Variables for the program, in order (exported, then prefixes).
    pub env: Vec<(String, String)>,
    /// ConfigMaps and Secrets whose keys all become variables, by reference.
    pub env_from: Vec<EnvSource>,
    pub bundle_hash: String,
    /// How many ConfigMaps the bundle takes.
    pub chunks: usize,
    /// The dependency file that triggers the dependency step, if present.
    pub dependency_file: Option<String>,
    /// The command line as typed, for `ps` and annotations.
    pub command_line: String,
    /// A foreground program reads kubesh's stdin through `pods/attach`;
    /// otherwise its stdin is empty.
    pub stdin: bool,
    /// A foreground program's pod stays once it ended, for a look at it
    /// (`KEEP_POD`); otherwise it goes once its output and status are read.
    pub keep_pod: bool,
    /// How the containers may act on their node.
    pub profile: Profile,
    /// What the program's containers ask the scheduler for.
    pub requests: Requests,
    /// The image of the init container that unpacks the bundle: the
    /// program's own (every runtime's has `sh`, `tar` and `gzip`), so a
    /// node pulls one image per program, unless `UNPACK_IMAGE` names one.
    pub unpack_image: String,
    /// How the image the program runs in was built from its Dockerfile
    /// and delivered, if it brings one: done again when a save needs it.
    pub build: Option<super::image::Rebuild>,
}

impl Spec {
    pub fn kind(&self) -> &'static str {
        if self.background { "deployment" } else { "pod" }
    }

    /// The labels every object of this dproc carries.
    pub fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (LABEL_MANAGED_BY.to_string(), MANAGED_BY_KUBESH.to_string()),
            (LABEL_NAME.to_string(), self.name.clone()),
            (LABEL_DPROC.to_string(), self.dproc_id.clone()),
            (LABEL_ENVIRONMENT.to_string(), self.environment.clone()),
            (LABEL_RUNTIME.to_string(), self.program.runtime.name.clone()),
            (LABEL_KIND.to_string(), self.kind().to_string()),
        ])
    }

    fn annotations(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (ANNOTATION_SOURCE.to_string(), self.program.source.clone()),
            (ANNOTATION_COMMAND.to_string(), self.command_line.clone()),
        ])
    }

    /// The annotations, with the bundle's hash when there is a bundle: a
    /// new hash in a pod template rolls the pods out.
    fn annotations_with_bundle(&self) -> BTreeMap<String, String> {
        let mut annotations = self.annotations();
        if self.has_bundle() {
            annotations.insert(ANNOTATION_BUNDLE.to_string(), self.bundle_hash.clone());
        }
        annotations
    }

    fn meta(&self, name: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(self.namespace.clone()),
            labels: Some(self.labels()),
            annotations: Some(self.annotations()),
            ..ObjectMeta::default()
        }
    }

    /// Whether files are shipped: ConfigMaps hold them and an init
    /// container unpacks them. A program typed on the command line has
    /// none.
    pub fn has_bundle(&self) -> bool {
        self.chunks > 0
    }

    /// The name of the bundle's `index`th ConfigMap (see
    /// [`names::config_map_name`]).
    pub fn config_map_name(&self, index: usize) -> String {
        names::config_map_name(&self.name, index)
    }

    fn selector(&self) -> BTreeMap<String, String> {
        BTreeMap::from([(LABEL_DPROC.to_string(), self.dproc_id.clone())])
    }
}

/// The Deployment of a background dproc.
pub fn deployment(spec: &Spec) -> Deployment {
    let template_meta = ObjectMeta {
        labels: Some(spec.labels()),
        annotations: Some(spec.annotations_with_bundle()),
        ..ObjectMeta::default()
    };
    Deployment {
        metadata: spec.meta(&spec.name),
        spec: DeploymentSpec {
            replicas: Some(spec.replicas),
            revision_history_limit: Some(2),
            // A rollout starts each new pod before an old one stops: no
            // outage while new code rolls out.
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".to_string()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::Int(1)),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            selector: LabelSelector {
                match_labels: Some(spec.selector()),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(template_meta),
                spec: Some(pod_spec(spec, "Always")),
            },
            ..DeploymentSpec::default()
        },
        status: None,
    }
}

/// The Service in front of a background dproc's pods.
pub fn service(spec: &Spec, owner: Option<OwnerReference>) -> Service {
    let mut meta = spec.meta(&spec.name);
    meta.owner_references = owner.map(|o| vec![o]);
    Service {
        metadata: meta,
        spec: Some(ServiceSpec {
            selector: Some(spec.selector()),
            // Unnamed: the API server's service proxy picks an unnamed
            // port when none is given (`curl web/path`).
            ports: Some(vec![ServicePort {
                name: None,
                port: i32::from(spec.port),
                target_port: Some(IntOrString::Int(i32::from(spec.listen_port))),
                protocol: Some("TCP".to_string()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// The Pod of a foreground dproc.
pub fn pod(spec: &Spec) -> Pod {
    let mut meta = spec.meta(&spec.name);
    meta.annotations = Some(spec.annotations_with_bundle());
    Pod {
        metadata: meta,
        spec: Some(pod_spec(spec, "Never")),
        status: None,
    }
}

/// The ConfigMaps holding the bundle, in order, owned by `owner` (the
/// Deployment or Pod) so that Kubernetes deletes them with it.
pub fn config_maps(spec: &Spec, chunks: &[&[u8]], owner: Option<OwnerReference>) -> Vec<ConfigMap> {
    chunks
        .iter()
        .enumerate()
        .map(|(index, chunk)| {
            let mut meta = spec.meta(&spec.config_map_name(index));
            meta.owner_references = owner.clone().map(|o| vec![o]);
            meta.annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(ANNOTATION_CHUNK.to_string(), chunk_hash(chunk));
            ConfigMap {
                metadata: meta,
                binary_data: Some(BTreeMap::from([(
                    BUNDLE_KEY.to_string(),
                    ByteString(chunk.to_vec()),
                )])),
                ..ConfigMap::default()
            }
        })
        .collect()
}

/// The hash of a bundle piece, as its ConfigMap's annotation holds it:
/// 16 hex digits of its SHA-256.
pub fn chunk_hash(chunk: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(chunk)
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A reference making an object owned by the dproc's Deployment or Pod.
pub fn owner_reference(api_version: &str, kind: &str, name: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        name: name.to_string(),
        uid: uid.to_string(),
        controller: Some(false),
        block_owner_deletion: Some(false),
    }
}

fn pod_spec(spec: &Spec, restart_policy: &str) -> PodSpec {
    let app_mount = VolumeMount {
        name: "app".to_string(),
        mount_path: APP_DIR.to_string(),
        ..VolumeMount::default()
    };
    let bundle_mount = VolumeMount {
        name: "bundle".to_string(),
        mount_path: BUNDLE_DIR.to_string(),
        read_only: Some(true),
        ..VolumeMount::default()
    };
    let mut runtime_env: Vec<EnvVar> = spec
        .program
        .runtime
        .env
        .iter()
        .map(|(name, value)| env_var(name, value))
        .collect();
    let restricted = spec.profile == Profile::Restricted;
    let home_mount = VolumeMount {
        name: "home".to_string(),
        mount_path: HOME_DIR.to_string(),
        ..VolumeMount::default()
    };
    if restricted {
        runtime_env.push(env_var("HOME", HOME_DIR));
    }
    let mut init_containers = Vec::new();
    if spec.has_bundle() {
        init_containers.push(Container {
            name: "unpack".to_string(),
            image: Some(spec.unpack_image.clone()),
            // A fixed script: no user text ever reaches this shell.
            command: Some(vec![
                "sh".to_string(),
                "-c".to_string(),
                // `-o`: files owned by whoever unpacks (a non-root user
                // cannot give them to root).
                format!("cat {BUNDLE_DIR}/part-* | tar -xozf - -C {APP_DIR}"),
            ]),
            volume_mounts: Some(vec![bundle_mount, app_mount.clone()]),
            resources: resources(&Requests {
                cpu: spec
                    .requests
                    .cpu
                    .as_ref()
                    .map(|_| UNPACK_REQUESTS.0.to_string()),
                memory: spec
                    .requests
                    .memory
                    .as_ref()
                    .map(|_| UNPACK_REQUESTS.1.to_string()),
            }),
            security_context: container_security(spec.profile),
            ..Container::default()
        });
    }
    if let (Some(_), Some(dependencies)) =
        (&spec.dependency_file, &spec.program.runtime.dependencies)
    {
        init_containers.push(Container {
            name: "dependencies".to_string(),
            image: Some(spec.program.image.clone()),
            command: Some(dependencies.install.clone()),
            working_dir: Some(APP_DIR.to_string()),
            env: Some(runtime_env.clone()),
            volume_mounts: Some(if restricted {
                vec![app_mount.clone(), home_mount.clone()]
            } else {
                vec![app_mount.clone()]
            }),
            resources: resources(&spec.requests),
            security_context: container_security(spec.profile),
            ..Container::default()
        });
    }
    let mut env = runtime_env;
    if let (Some(_), Some(dependencies)) =
        (&spec.dependency_file, &spec.program.runtime.dependencies)
    {
        env.extend(
            dependencies
                .env
                .iter()
                .map(|(name, value)| env_var(name, value)),
        );
    }
    if spec.background {
        env.push(env_var("PORT", &spec.port.to_string()));
    }
    env.extend(spec.env.iter().map(|(name, value)| env_var(name, value)));
    let main = Container {
        name: "main".to_string(),
        image: Some(spec.program.image.clone()),
        command: Some(main_command(spec).iter().map(|w| literal(w)).collect()),
        args: (!spec.program.args.is_empty())
            .then(|| spec.program.args.iter().map(|w| literal(w)).collect()),
        working_dir: Some(APP_DIR.to_string()),
        env: Some(env),
        env_from: (!spec.env_from.is_empty())
            .then(|| spec.env_from.iter().map(env_from_source).collect()),
        ports: spec.background.then(|| {
            vec![ContainerPort {
                container_port: i32::from(spec.listen_port),
                name: Some("main".to_string()),
                protocol: Some("TCP".to_string()),
                ..ContainerPort::default()
            }]
        }),
        readiness_probe: spec.background.then(|| Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::Int(i32::from(spec.listen_port)),
                host: None,
            }),
            period_seconds: Some(1),
            // A live reload restarts the program in place: a probe that
            // falls in that moment must not take the pod out of its Service.
            failure_threshold: Some(3),
            ..Probe::default()
        }),
        stdin: Some(spec.stdin),
        stdin_once: Some(spec.stdin),
        volume_mounts: Some({
            let mut mounts = vec![app_mount];
            if supervised(spec) {
                mounts.push(VolumeMount {
                    name: "run".to_string(),
                    mount_path: RUN_DIR.to_string(),
                    ..VolumeMount::default()
                });
            }
            if restricted {
                mounts.push(home_mount);
            }
            mounts
        }),
        resources: resources(&spec.requests),
        security_context: container_security(spec.profile),
        ..Container::default()
    };
    let sources = (0..spec.chunks)
        .map(|index| VolumeProjection {
            config_map: Some(ConfigMapProjection {
                name: spec.config_map_name(index),
                items: Some(vec![KeyToPath {
                    key: BUNDLE_KEY.to_string(),
                    path: format!("part-{index:04}"),
                    ..KeyToPath::default()
                }]),
                optional: Some(false),
            }),
            ..VolumeProjection::default()
        })
        .collect();
    let mut volumes = Vec::new();
    if spec.has_bundle() {
        volumes.push(Volume {
            name: "bundle".to_string(),
            projected: Some(ProjectedVolumeSource {
                sources: Some(sources),
                default_mode: Some(0o444),
                ..ProjectedVolumeSource::default()
            }),
            ..Volume::default()
        });
    }
    // The working directory, empty without a bundle.
    volumes.push(empty_dir("app"));
    if supervised(spec) {
        volumes.push(empty_dir("run"));
    }
    if restricted {
        volumes.push(empty_dir("home"));
    }
    PodSpec {
        security_context: restricted.then(|| PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(RESTRICTED_USER),
            run_as_group: Some(RESTRICTED_USER),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_string(),
                localhost_profile: None,
            }),
            ..PodSecurityContext::default()
        }),
        restart_policy: Some(restart_policy.to_string()),
        termination_grace_period_seconds: Some(5),
        init_containers: (!init_containers.is_empty()).then_some(init_containers),
        containers: vec![main],
        // A binary runs only on nodes of its architecture.
        node_selector: spec.program.node_arch.as_ref().map(|arch| {
            BTreeMap::from([(crate::cluster::nodes::ARCH_LABEL.to_string(), arch.clone())])
        }),
        volumes: Some(volumes),
        ..PodSpec::default()
    }
}

/// A container's requests, when it asks for anything.
fn resources(requests: &Requests) -> Option<ResourceRequirements> {
    let asked: BTreeMap<String, Quantity> = [("cpu", &requests.cpu), ("memory", &requests.memory)]
        .into_iter()
        .filter_map(|(name, value)| Some((name.to_string(), Quantity(value.clone()?))))
        .collect();
    (!asked.is_empty()).then(|| ResourceRequirements {
        requests: Some(asked),
        ..ResourceRequirements::default()
    })
}

/// A container's own part of the profile (the user and seccomp profile
/// are the pod's).
fn container_security(profile: Profile) -> Option<SecurityContext> {
    (profile == Profile::Restricted).then(|| SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_string()]),
            add: None,
        }),
        ..SecurityContext::default()
    })
}

/// Whether the program runs under kubesh's supervisor, which lets saved
/// files reach a running pod (a background dproc whose image has a shell).
pub fn supervised(spec: &Spec) -> bool {
    spec.background && spec.program.runtime.shell
}

/// The main container's command: the program, under the supervisor when
/// there is one. The program's words are the script's arguments, never
/// part of its text.
fn main_command(spec: &Spec) -> Vec<String> {
    let program = spec.program.command.iter().cloned();
    if !supervised(spec) {
        return program.collect();
    }
    ["sh", "-c", &script(SUPERVISOR), "kubesh-supervise", RUN_DIR]
        .into_iter()
        .map(String::from)
        .chain(program)
        .collect()
}

/// A shell script without its comments and indentation, as sent to the
/// cluster: shorter objects and requests, the same program.
pub fn script(text: &str) -> String {
    text.lines()
        .map(str::trim_start)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A word Kubernetes passes on unchanged: it expands `$(NAME)` in `command`,
/// `args` and variable values and turns `$$` into `$`, so every `$` is
/// doubled.
fn literal(word: &str) -> String {
    word.replace('$', "$$")
}

fn empty_dir(name: &str) -> Volume {
    Volume {
        name: name.to_string(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }
}

fn env_from_source(source: &EnvSource) -> EnvFromSource {
    match source {
        EnvSource::ConfigMap(name) => EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource {
                name: name.clone(),
                optional: Some(false),
            }),
            ..EnvFromSource::default()
        },
        EnvSource::Secret(name) => EnvFromSource {
            secret_ref: Some(SecretEnvSource {
                name: name.clone(),
                optional: Some(false),
            }),
            ..EnvFromSource::default()
        },
    }
}

/// A variable whose value reaches the program exactly: Kubernetes expands
/// `$(NAME)` in values too.
fn env_var(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: Some(literal(value)),
        value_from: None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::labels::GLOBAL_ENVIRONMENT;
    use crate::launch::program::Files;
    use crate::runtimes::Runtimes;

    pub fn spec(background: bool) -> Spec {
        let runtime = Runtimes::load(None).0.by_command("node").unwrap().clone();
        Spec {
            name: "stock-gen".into(),
            dproc_id: "dp-abc123".into(),
            namespace: "shop".into(),
            environment: GLOBAL_ENVIRONMENT.into(),
            background,
            replicas: 2,
            port: 9999,
            listen_port: 9999,
            program: Program {
                runtime,
                files: Some(Files {
                    file: "/src/stock-gen.js".into(),
                    root: "/src".into(),
                    relative: "stock-gen.js".into(),
                }),
                name: "stock-gen".into(),
                source: "/src/stock-gen.js".into(),
                args: vec!["a b".into(), "$HOME".into()],
                image: "node:22-slim".into(),
                command: vec!["node".into(), "stock-gen.js".into()],
                built_for: None,
                node_arch: None,
            },
            env: vec![
                ("GREETING".into(), "hi there".into()),
                ("PRICE".into(), "$(PORT) for $5".into()),
            ],
            env_from: vec![EnvSource::Secret("db".into())],
            bundle_hash: "0123456789abcdef".into(),
            chunks: 2,
            dependency_file: Some("package.json".into()),
            command_line: "node stock-gen.js 'a b' '$HOME' &".into(),
            stdin: !background,
            keep_pod: false,
            profile: Profile::Default,
            requests: Requests {
                cpu: Some("100m".into()),
                memory: Some("128Mi".into()),
            },
            unpack_image: "node:22-slim".into(),
            build: None,
        }
    }

    #[test]
    fn background_is_a_deployment_behind_a_service() {
        let spec = spec(true);
        let deployment = deployment(&spec);
        let deployment_spec = &deployment.spec;
        assert_eq!(deployment_spec.replicas, Some(2));
        let template = &deployment_spec.template;
        let labels = template.metadata.as_ref().unwrap().labels.as_ref().unwrap();
        for (key, value) in deployment_spec.selector.match_labels.as_ref().unwrap() {
            assert_eq!(
                labels.get(key),
                Some(value),
                "the selector matches the template"
            );
        }
        let pod = template.spec.as_ref().unwrap();
        assert_eq!(pod.restart_policy.as_deref(), Some("Always"));
        let main = &pod.containers[0];
        assert_eq!(
            main.args.as_ref().unwrap(),
            &["a b", "$$HOME"],
            "arguments exactly as typed: Kubernetes turns `$$` back into `$`"
        );
        let command = main.command.as_ref().unwrap();
        assert_eq!(&command[..2], ["sh", "-c"], "the supervisor runs it");
        assert_eq!(
            &command[3..],
            ["kubesh-supervise", RUN_DIR, "node", "stock-gen.js"],
            "the program's words are the supervisor's arguments"
        );
        let mounts = main.volume_mounts.as_ref().unwrap();
        assert!(mounts.iter().any(|m| m.mount_path == RUN_DIR));
        let env = main.env.as_ref().unwrap();
        assert!(
            env.iter()
                .any(|e| e.name == "PORT" && e.value.as_deref() == Some("9999"))
        );
        assert!(
            env.iter()
                .any(|e| e.name == "GREETING" && e.value.as_deref() == Some("hi there"))
        );
        assert!(
            env.iter()
                .any(|e| e.name == "PRICE" && e.value.as_deref() == Some("$$(PORT) for $$5")),
            "values reach the program exactly: Kubernetes turns `$$` back into `$`"
        );
        let env_from = main.env_from.as_ref().unwrap();
        assert_eq!(env_from[0].secret_ref.as_ref().unwrap().name, "db");
        let probe = main.readiness_probe.as_ref().unwrap();
        assert_eq!(
            probe.tcp_socket.as_ref().unwrap().port,
            IntOrString::Int(9999)
        );
        let inits: Vec<&str> = pod
            .init_containers
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(inits, ["unpack", "dependencies"]);
        let images: Vec<&str> = pod
            .init_containers
            .iter()
            .flatten()
            .chain(&pod.containers)
            .filter_map(|c| c.image.as_deref())
            .collect();
        assert_eq!(
            images, ["node:22-slim"; 3],
            "one image to pull: the program's unpacks its bundle too"
        );

        // Ruby's gems are loaded through Bundler by the program, not by
        // the step that installs them.
        let mut ruby = spec.clone();
        ruby.program.runtime = Runtimes::load(None).0.by_command("ruby").unwrap().clone();
        ruby.dependency_file = Some("Gemfile".into());
        let ruby_pod = super::pod(&ruby);
        let ruby_spec = ruby_pod.spec.as_ref().unwrap();
        let names = |container: &Container| -> Vec<String> {
            container
                .env
                .iter()
                .flatten()
                .map(|e| e.name.clone())
                .collect()
        };
        let main = names(&ruby_spec.containers[0]);
        assert!(main.contains(&"RUBYOPT".to_string()), "{main:?}");
        assert!(main.contains(&"BUNDLE_GEMFILE".to_string()), "{main:?}");
        let step = names(&ruby_spec.init_containers.as_ref().unwrap()[1]);
        assert!(!step.contains(&"RUBYOPT".to_string()), "{step:?}");
        assert!(step.contains(&"BUNDLE_PATH".to_string()), "{step:?}");
        let service = service(&spec, None);
        let port = &service.spec.as_ref().unwrap().ports.as_ref().unwrap()[0];
        assert_eq!(
            (port.port, port.target_port.clone()),
            (9999, Some(IntOrString::Int(9999)))
        );
        assert_eq!(
            service.spec.unwrap().selector,
            deployment_spec.selector.match_labels
        );
    }

    /// The supervisor's script as sent to the cluster.
    pub fn supervisor_script() -> String {
        script(SUPERVISOR)
    }

    /// Polls `started` until it gives a value, for up to 10 s.
    fn until_started<T>(mut started: impl FnMut() -> Option<T>) -> T {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Some(value) = started() {
                return value;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the program never started"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Runs the supervisor (as sent to the cluster) on this machine's `sh`.
    fn supervise(run: &std::path::Path, program: &[&str]) -> std::process::Child {
        std::process::Command::new("sh")
            .args(["-c", &script(SUPERVISOR), "kubesh-supervise"])
            .arg(run)
            .args(program)
            .spawn()
            .expect("sh runs")
    }

    #[test]
    fn the_supervisor_keeps_the_program_s_status_and_passes_signals_on() {
        let dir = tempfile::tempdir().unwrap();
        let status = supervise(dir.path(), &["sh", "-c", "exit 7", "$(not run)"])
            .wait()
            .unwrap();
        assert_eq!(status.code(), Some(7));

        let mut child = supervise(dir.path(), &["sleep", "30"]);
        let state = dir.path().join("state");
        until_started(|| (std::fs::read_to_string(&state).ok()? == "running 1\n").then_some(()));
        std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(128 + 15), "sleep ended by TERM");
    }

    #[test]
    fn the_supervisor_stops_what_the_program_started_too() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("grandchild");
        let program = format!("sleep 30 & echo $! > '{}'; wait", pid_file.display());
        let mut child = supervise(&dir.path().join("run"), &["sh", "-c", &program]);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let grandchild = until_started(|| {
            std::fs::read_to_string(&pid_file)
                .ok()?
                .trim()
                .parse::<u32>()
                .ok()
        });
        std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        child.wait().unwrap();
        // Gone, or a zombie waiting for this machine's init to reap it.
        let alive = || {
            std::fs::read_to_string(format!("/proc/{grandchild}/stat")).is_ok_and(|stat| {
                !stat
                    .rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
        };
        while alive() {
            assert!(
                std::time::Instant::now() < deadline,
                "the program's own child outlived it"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    #[test]
    fn foreground_is_a_pod_that_is_not_restarted() {
        let pod = pod(&spec(false));
        let pod_spec = pod.spec.unwrap();
        assert_eq!(pod_spec.restart_policy.as_deref(), Some("Never"));
        let main = &pod_spec.containers[0];
        assert!(main.readiness_probe.is_none());
        assert_eq!(main.stdin, Some(true));
        assert_eq!(
            main.command.as_ref().unwrap(),
            &["node", "stock-gen.js"],
            "a foreground program is the container's process itself"
        );
        assert_eq!(
            main.stdin_once,
            Some(true),
            "end of input reaches the program"
        );
        let mut without = spec(false);
        without.stdin = false;
        let main = &super::pod(&without).spec.unwrap().containers[0];
        assert_eq!(
            main.stdin,
            Some(false),
            "no stdin: the program reads nothing"
        );
        assert!(!main.env.as_ref().unwrap().iter().any(|e| e.name == "PORT"));
        assert_eq!(pod.metadata.labels.unwrap()[LABEL_KIND], "pod");
    }

    #[test]
    fn bundle_config_maps_are_owned_and_projected_in_order() {
        let spec = spec(true);
        let owner = owner_reference("apps/v1", "Deployment", "stock-gen", "uid-1");
        let maps = config_maps(&spec, &[b"one", b"two"], Some(owner));
        assert_eq!(maps.len(), 2);
        assert_eq!(maps[1].metadata.name.as_deref(), Some("stock-gen-bundle-1"));
        assert_eq!(
            maps[0].metadata.owner_references.as_ref().unwrap()[0].uid,
            "uid-1"
        );
        let pod = deployment(&spec).spec.template.spec.unwrap();
        let projected = pod.volumes.unwrap()[0].projected.clone().unwrap();
        let paths: Vec<String> = projected
            .sources
            .unwrap()
            .iter()
            .map(|s| {
                s.config_map.as_ref().unwrap().items.as_ref().unwrap()[0]
                    .path
                    .clone()
            })
            .collect();
        assert_eq!(paths, ["part-0000", "part-0001"]);
    }

    /// A spec for `node -e CODE`, which ships no files.
    fn without_files(background: bool) -> Spec {
        let mut spec = spec(background);
        spec.program.files = None;
        spec.program.source = "node -e 'console.log(1)'".into();
        spec.program.command = vec!["node".into(), "-e".into(), "console.log(1)".into()];
        spec.program.args = Vec::new();
        spec.chunks = 0;
        spec.dependency_file = None;
        spec
    }

    #[test]
    fn a_program_without_files_has_no_config_maps_and_nothing_to_unpack() {
        for background in [false, true] {
            let spec = without_files(background);
            assert!(config_maps(&spec, &[], None).is_empty());
            let (pod_spec, annotations) = if background {
                let template = deployment(&spec).spec.template;
                (
                    template.spec.unwrap(),
                    template.metadata.unwrap().annotations,
                )
            } else {
                let pod = pod(&spec);
                (pod.spec.unwrap(), pod.metadata.annotations)
            };
            assert_eq!(pod_spec.init_containers, None, "nothing to unpack");
            let volumes: Vec<&str> = pod_spec
                .volumes
                .as_ref()
                .unwrap()
                .iter()
                .map(|v| v.name.as_str())
                .collect();
            let expected: &[&str] = if background {
                &["app", "run"]
            } else {
                &["app"]
            };
            assert_eq!(volumes, expected, "no bundle volume");
            let main = &pod_spec.containers[0];
            assert_eq!(main.working_dir.as_deref(), Some(APP_DIR));
            assert!(main.command.as_ref().unwrap().ends_with(&[
                "node".to_string(),
                "-e".to_string(),
                "console.log(1)".to_string()
            ]));
            let annotations = annotations.unwrap();
            assert!(!annotations.contains_key(ANNOTATION_BUNDLE));
            assert_eq!(annotations[ANNOTATION_SOURCE], "node -e 'console.log(1)'");
        }
    }

    #[test]
    fn the_restricted_profile_runs_every_container_as_pod_security_restricted_asks() {
        let mut spec = spec(true);
        spec.profile = Profile::Restricted;
        let pod = deployment(&spec).spec.template.spec.unwrap();
        let context = pod.security_context.as_ref().unwrap();
        assert_eq!(context.run_as_non_root, Some(true));
        assert_eq!(context.run_as_user, Some(RESTRICTED_USER));
        assert_eq!(
            context.seccomp_profile.as_ref().unwrap().type_,
            "RuntimeDefault"
        );
        let containers = pod.init_containers.iter().flatten().chain(&pod.containers);
        for container in containers {
            let own = container.security_context.as_ref().unwrap();
            assert_eq!(
                own.allow_privilege_escalation,
                Some(false),
                "{}",
                container.name
            );
            assert_eq!(
                own.capabilities.as_ref().unwrap().drop.as_deref(),
                Some(&["ALL".to_string()][..])
            );
            let requests = container
                .resources
                .as_ref()
                .unwrap()
                .requests
                .as_ref()
                .unwrap();
            assert!(requests.contains_key("cpu") && requests.contains_key("memory"));
        }
        let main = &pod.containers[0];
        assert!(
            main.env
                .iter()
                .flatten()
                .any(|e| e.name == "HOME" && e.value.as_deref() == Some(HOME_DIR)),
            "a writable HOME"
        );
        assert!(
            main.volume_mounts
                .iter()
                .flatten()
                .any(|m| m.mount_path == HOME_DIR)
        );
        assert!(
            pod.volumes
                .iter()
                .flatten()
                .any(|v| v.name == "home" && v.empty_dir.is_some())
        );
        // The default profile leaves the image's user alone; requests stay.
        let pod = deployment(&super::tests::spec(true))
            .spec
            .template
            .spec
            .unwrap();
        assert!(pod.security_context.is_none());
        assert!(pod.containers[0].security_context.is_none());
        let requests = pod.containers[0]
            .resources
            .clone()
            .unwrap()
            .requests
            .unwrap();
        assert_eq!(requests["cpu"], Quantity("100m".into()));
        // Asking for nothing leaves `resources` out.
        let mut none = super::tests::spec(false);
        none.requests = Requests::default();
        assert!(
            super::pod(&none).spec.unwrap().containers[0]
                .resources
                .is_none()
        );
    }

    #[test]
    fn every_object_is_labelled_as_kubesh_s() {
        let spec = spec(true);
        let labels = deployment(&spec).metadata.labels.unwrap();
        assert_eq!(labels[LABEL_MANAGED_BY], MANAGED_BY_KUBESH);
        assert_eq!(labels[LABEL_DPROC], "dp-abc123");
        assert_eq!(labels[LABEL_ENVIRONMENT], "global");
        assert_eq!(labels[LABEL_RUNTIME], "node");
        let annotations = service(&spec, None).metadata.annotations.unwrap();
        assert_eq!(annotations[ANNOTATION_SOURCE], "/src/stock-gen.js");
    }
}
