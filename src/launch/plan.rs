//! Deciding everything about a launch before anything is created: the
//! name, port, replicas and environment from the shell's variables, and the
//! bundle (none for a program without files: `python -c CODE`). Refusals
//! (bad name, bundle too large) happen here.

use super::bundle::{self, Bundle, Limits};
use super::names;
use super::objects::{Profile, Requests, Spec};
use super::program::Program;
use crate::labels::GLOBAL_ENVIRONMENT;

/// The shell's settings for one launch, read from its variables
/// (per-command prefixes first).
#[derive(Debug, Default, Clone)]
pub struct Settings {
    pub service_name: Option<String>,
    pub service_port: Option<String>,
    pub replicas: Option<String>,
    pub bundle_max_mb: Option<String>,
    pub bundle_max_files: Option<String>,
    pub namespace: String,
    pub environment: Option<String>,
    /// Variables the program gets: exported ones, then prefixes.
    pub env: Vec<(String, String)>,
    pub env_from: Vec<super::objects::EnvSource>,
    pub command_line: String,
    /// A foreground program reads kubesh's stdin (else its stdin is empty).
    pub stdin: bool,
    /// `KEEP_POD`: a foreground program's pod stays after it ended.
    pub keep_pod: bool,
    /// `POD_SECURITY`: `restricted` or `default`; unset, the namespace
    /// decides.
    pub pod_security: Option<String>,
    /// Whether the namespace enforces Pod Security `restricted`, when
    /// known (it is not in `--dry-run`, nor when the namespace cannot be
    /// read).
    pub namespace_restricted: Option<bool>,
    /// `CPU_REQUEST`, `MEMORY_REQUEST`: a quantity, or `none`.
    pub cpu_request: Option<String>,
    pub memory_request: Option<String>,
    /// `UNPACK_IMAGE`: the image that unpacks the bundle; unset (or
    /// empty), the program's.
    pub unpack_image: Option<String>,
}

impl Settings {
    /// The profile a launch uses: `POD_SECURITY`'s, else `restricted`
    /// where the namespace enforces it, else `default`.
    ///
    /// # Errors
    /// `POD_SECURITY` names no profile.
    pub fn profile(&self) -> Result<Profile, PlanError> {
        match self.pod_security.as_deref() {
            Some("restricted") => Ok(Profile::Restricted),
            Some("default") => Ok(Profile::Default),
            Some(other) => Err(PlanError::BadProfile(other.to_string())),
            None if self.namespace_restricted == Some(true) => Ok(Profile::Restricted),
            None => Ok(Profile::Default),
        }
    }

    /// Why the launch uses `profile`, for `--dry-run`.
    pub fn profile_reason(&self) -> &'static str {
        match (self.pod_security.is_some(), self.namespace_restricted) {
            (true, _) => "set by POD_SECURITY",
            (false, Some(true)) => "the namespace enforces Pod Security restricted",
            (false, Some(false)) => "the namespace does not enforce Pod Security restricted",
            (false, None) => {
                "POD_SECURITY is not set: a launch uses restricted where the namespace \
                 enforces Pod Security restricted"
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(
        "SERVICE_NAME={0:?} is not a valid name: use lower-case letters, digits and `-`, starting with a letter (at most 63)"
    )]
    BadName(String),
    #[error(
        "SERVICE_NAME={name:?} is too long ({length} characters; at most {})",
        names::MAX_LABEL
    )]
    NameTooLong { name: String, length: usize },
    #[error("{0}: no usable name can be made from its name; set one with SERVICE_NAME=NAME")]
    NoName(String),
    #[error("SERVICE_PORT={0:?} is not a port number (1–65535)")]
    BadPort(String),
    #[error("REPLICAS={0:?} is not a number of replicas (0–100)")]
    BadReplicas(String),
    #[error("{0}={1:?} is not a number")]
    BadLimit(&'static str, String),
    #[error("POD_SECURITY={0:?} is not a profile: use `restricted` or `default`")]
    BadProfile(String),
    #[error(
        "{0}={1:?} is not a quantity: use a Kubernetes quantity such as {2}, or `none` to ask for \
         nothing"
    )]
    BadQuantity(&'static str, String, &'static str),
    #[error(transparent)]
    Bundle(#[from] bundle::BundleError),
}

/// Builds the bundle and the launch spec.
pub fn plan(
    program: Program,
    background: bool,
    settings: &Settings,
) -> Result<(Spec, Bundle), PlanError> {
    let name = match &settings.service_name {
        Some(name) => match names::label_problem(name) {
            None => name.clone(),
            Some(names::LabelProblem::TooLong(length)) => {
                return Err(PlanError::NameTooLong {
                    name: name.clone(),
                    length,
                });
            }
            Some(names::LabelProblem::BadCharacters) => {
                return Err(PlanError::BadName(name.clone()));
            }
        },
        None => names::service_name(&program.name)
            .ok_or_else(|| PlanError::NoName(program.shown().to_string()))?,
    };
    let port = match &settings.service_port {
        None => program.runtime.port,
        Some(text) => text
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| PlanError::BadPort(text.clone()))?,
    };
    let replicas = match &settings.replicas {
        None => 1,
        Some(text) => text
            .parse::<i32>()
            .ok()
            .filter(|r| (0..=100).contains(r))
            .ok_or_else(|| PlanError::BadReplicas(text.clone()))?,
    };
    let profile = settings.profile()?;
    let defaults = &program.runtime.requests;
    let requests = Requests {
        cpu: quantity(
            "CPU_REQUEST",
            settings.cpu_request.as_deref(),
            &defaults.cpu,
            "`250m` or `1`",
        )?,
        memory: quantity(
            "MEMORY_REQUEST",
            settings.memory_request.as_deref(),
            &defaults.memory,
            "`128Mi` or `1Gi`",
        )?,
    };
    let mut limits = Limits::default();
    if let Some(text) = &settings.bundle_max_mb {
        let mb: u64 = text
            .parse()
            .map_err(|_| PlanError::BadLimit("BUNDLE_MAX_MB", text.clone()))?;
        limits.max_compressed = mb.saturating_mul(1024 * 1024);
    }
    if let Some(text) = &settings.bundle_max_files {
        limits.max_files = text
            .parse()
            .map_err(|_| PlanError::BadLimit("BUNDLE_MAX_FILES", text.clone()))?;
    }
    // A program typed on the command line, or a module of the image,
    // ships nothing.
    let bundle = match &program.files {
        Some(files) => bundle::build(&files.root, &files.file, limits)?,
        None => Bundle::nothing(),
    };
    let dependency_file = program.runtime.dependencies.as_ref().and_then(|d| {
        d.files
            .iter()
            .find(|f| bundle.files.contains_key(f.as_str()))
            .cloned()
    });
    let unpack_image = settings
        .unpack_image
        .clone()
        .filter(|image| !image.trim().is_empty())
        .unwrap_or_else(|| program.image.clone());
    let dproc_id = names::new_dproc_id(&name);
    let name = if background {
        name
    } else {
        names::pod_name(&name, &dproc_id)
    };
    let spec = Spec {
        name,
        dproc_id,
        namespace: settings.namespace.clone(),
        environment: settings
            .environment
            .clone()
            .unwrap_or_else(|| GLOBAL_ENVIRONMENT.to_string()),
        background,
        replicas,
        port,
        listen_port: port,
        program,
        env: settings.env.clone(),
        env_from: settings.env_from.clone(),
        bundle_hash: bundle.short_hash().to_string(),
        chunks: bundle.chunks().count(),
        dependency_file,
        command_line: settings.command_line.clone(),
        stdin: settings.stdin && !background,
        keep_pod: settings.keep_pod,
        profile,
        requests,
        unpack_image,
        build: None,
    };
    Ok((spec, bundle))
}

/// A request from its setting (`none`: nothing) or the runtime's default.
fn quantity(
    setting: &'static str,
    value: Option<&str>,
    default: &str,
    example: &'static str,
) -> Result<Option<String>, PlanError> {
    match value {
        Some("none") => Ok(None),
        Some(text) if is_quantity(text) => Ok(Some(text.to_string())),
        Some(text) => Err(PlanError::BadQuantity(setting, text.to_string(), example)),
        None => Ok(Some(default.to_string())),
    }
}

/// Whether `text` is a Kubernetes quantity the API server takes: a
/// decimal number and a suffix (`100m`, `0.5`, `128Mi`, `1G`, `1e3`).
pub fn is_quantity(text: &str) -> bool {
    const SUFFIXES: [&str; 14] = [
        "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P",
    ];
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(end);
    let digits = number.chars().filter(char::is_ascii_digit).count();
    let dots = number.matches('.').count();
    let exponent = suffix
        .strip_prefix(['e', 'E'])
        .map(|rest| rest.strip_prefix(['+', '-']).unwrap_or(rest))
        .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()));
    digits > 0 && dots <= 1 && (suffix.is_empty() || SUFFIXES.contains(&suffix) || exponent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launch::program::resolve;
    use crate::runtimes::Runtimes;

    fn program(dir: &std::path::Path, file: &str) -> Program {
        let path = dir.join(file);
        std::fs::write(&path, "print(1)").unwrap();
        let words = vec!["python".to_string(), path.display().to_string()];
        resolve(&words, &Runtimes::load(None).0, &|_| None)
            .unwrap()
            .unwrap()
    }

    #[test]
    fn names_ports_and_replicas_from_settings() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            namespace: "ns".into(),
            ..Settings::default()
        };
        let (spec, _) = plan(program(dir.path(), "Stock_Gen.py"), true, &settings).unwrap();
        assert_eq!(
            (spec.name.as_str(), spec.port, spec.replicas),
            ("stock-gen", 8080, 1)
        );
        let settings = Settings {
            service_name: Some("api".into()),
            service_port: Some("9999".into()),
            replicas: Some("3".into()),
            ..settings
        };
        let (spec, _) = plan(program(dir.path(), "x.py"), true, &settings).unwrap();
        assert_eq!(
            (spec.name.as_str(), spec.port, spec.replicas),
            ("api", 9999, 3)
        );
        let (job, _) = plan(program(dir.path(), "job.py"), false, &Settings::default()).unwrap();
        assert!(
            job.name.starts_with("job-") && job.name.len() == 10,
            "{}",
            job.name
        );
    }

    #[test]
    fn bad_settings_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let bad = |settings: Settings| {
            plan(program(dir.path(), "x.py"), true, &settings)
                .err()
                .unwrap()
                .to_string()
        };
        assert!(
            bad(Settings {
                service_name: Some("Bad_Name".into()),
                ..Settings::default()
            })
            .contains("SERVICE_NAME")
        );
        assert!(
            bad(Settings {
                service_port: Some("0".into()),
                ..Settings::default()
            })
            .contains("SERVICE_PORT")
        );
        assert!(
            bad(Settings {
                replicas: Some("many".into()),
                ..Settings::default()
            })
            .contains("REPLICAS")
        );
    }

    #[test]
    fn a_too_long_service_name_is_called_too_long() {
        let dir = tempfile::tempdir().unwrap();
        let long = "a".repeat(70);
        let error = plan(
            program(dir.path(), "x.py"),
            true,
            &Settings {
                service_name: Some(long.clone()),
                ..Settings::default()
            },
        )
        .err()
        .unwrap()
        .to_string();
        assert_eq!(
            error,
            format!("SERVICE_NAME={long:?} is too long (70 characters; at most 63)")
        );
        assert!(!error.contains("lower-case"), "{error}");
    }

    #[test]
    fn every_name_made_from_a_long_stem_fits() {
        let dir = tempfile::tempdir().unwrap();
        let file = format!("{}.py", "Long_Stem_".repeat(10));
        for background in [true, false] {
            let (spec, _) =
                plan(program(dir.path(), &file), background, &Settings::default()).unwrap();
            assert!(names::is_rfc1035_label(&spec.name), "{}", spec.name);
            assert!(
                spec.name.starts_with("long-stem-long-stem"),
                "{}",
                spec.name
            );
            for (key, value) in spec.labels() {
                assert!(value.len() <= names::MAX_LABEL, "{key}={value}");
            }
            assert!(names::is_rfc1035_label(&spec.config_map_name(99)));
        }
        // A SERVICE_NAME of the longest length runs in the foreground too.
        let given = "s".repeat(63);
        let (spec, _) = plan(
            program(dir.path(), "x.py"),
            false,
            &Settings {
                service_name: Some(given),
                ..Settings::default()
            },
        )
        .unwrap();
        assert!(names::is_rfc1035_label(&spec.name), "{}", spec.name);
    }

    #[test]
    fn requests_come_from_the_runtime_unless_set_and_the_profile_from_the_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let (spec, _) = plan(program(dir.path(), "a.py"), true, &Settings::default()).unwrap();
        assert_eq!(spec.requests.describe(), "cpu 100m, memory 128Mi");
        assert_eq!(spec.profile, Profile::Default);
        let settings = Settings {
            cpu_request: Some("none".into()),
            memory_request: Some("1Gi".into()),
            namespace_restricted: Some(true),
            ..Settings::default()
        };
        let (spec, _) = plan(program(dir.path(), "a.py"), true, &settings).unwrap();
        assert_eq!(spec.requests.describe(), "memory 1Gi");
        assert_eq!(
            spec.profile,
            Profile::Restricted,
            "the namespace enforces it"
        );
        let settings = Settings {
            pod_security: Some("default".into()),
            ..settings
        };
        let (spec, _) = plan(program(dir.path(), "a.py"), true, &settings).unwrap();
        assert_eq!(spec.profile, Profile::Default, "the setting wins");
        for (setting, wrong) in [
            (
                "POD_SECURITY",
                Settings {
                    pod_security: Some("tight".into()),
                    ..Settings::default()
                },
            ),
            (
                "CPU_REQUEST",
                Settings {
                    cpu_request: Some("lots".into()),
                    ..Settings::default()
                },
            ),
            (
                "MEMORY_REQUEST",
                Settings {
                    memory_request: Some("1 GB".into()),
                    ..Settings::default()
                },
            ),
        ] {
            let error = plan(program(dir.path(), "a.py"), true, &wrong)
                .err()
                .unwrap();
            assert!(error.to_string().starts_with(setting), "{error}");
        }
        for good in ["1", "0.5", "250m", "128Mi", "1G", "1e3", ".5"] {
            assert!(is_quantity(good), "{good}");
        }
        for bad in ["", "m", "1..2", "1MB", "-1", "1e", "Mi"] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }

    #[test]
    fn the_dependency_step_follows_the_dependency_file() {
        let dir = tempfile::tempdir().unwrap();
        let (spec, _) = plan(program(dir.path(), "app.py"), true, &Settings::default()).unwrap();
        assert_eq!(spec.dependency_file, None);
        std::fs::write(dir.path().join("requirements.txt"), "requests\n").unwrap();
        let (spec, _) = plan(program(dir.path(), "app.py"), true, &Settings::default()).unwrap();
        assert_eq!(spec.dependency_file.as_deref(), Some("requirements.txt"));
    }

    fn typed(line: &[&str]) -> Program {
        let words: Vec<String> = line.iter().map(|w| w.to_string()).collect();
        resolve(&words, &Runtimes::load(None).0, &|_| None)
            .unwrap()
            .unwrap()
    }

    #[test]
    fn a_program_typed_on_the_line_ships_nothing_and_is_named_after_its_interpreter() {
        let (spec, bundle) = plan(
            typed(&["python3", "-c", "print(6*7)"]),
            true,
            &Settings::default(),
        )
        .unwrap();
        assert_eq!(spec.name, "python3");
        assert_eq!((spec.chunks, bundle.chunks().count()), (0, 0));
        assert!(!spec.has_bundle() && bundle.files.is_empty());
        assert_eq!(spec.dependency_file, None);
        let (job, _) = plan(typed(&["node", "-e", "1"]), false, &Settings::default()).unwrap();
        assert!(job.name.starts_with("node-"), "{}", job.name);
        let (spec, _) = plan(
            typed(&["python", "-m", "http.server", "8080"]),
            true,
            &Settings::default(),
        )
        .unwrap();
        assert_eq!((spec.name.as_str(), spec.chunks), ("http-server", 0));
    }

    #[test]
    fn a_module_beside_the_user_ships_their_directory_with_its_dependencies() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mod.py"), "import helper").unwrap();
        std::fs::write(dir.path().join("helper.py"), "").unwrap();
        std::fs::create_dir(dir.path().join("pkg")).unwrap();
        std::fs::write(dir.path().join("pkg/__init__.py"), "").unwrap();
        std::fs::write(dir.path().join("requirements.txt"), "requests\n").unwrap();
        for (module, relative) in [("mod", "mod.py"), ("pkg", "pkg")] {
            let mut program = typed(&["python", "-m", "http.server"]);
            program.name = module.to_string();
            program.files = Some(crate::launch::program::Files {
                file: dir.path().join(relative),
                root: dir.path().to_path_buf(),
                relative: relative.to_string(),
            });
            let (spec, bundle) = plan(program, true, &Settings::default()).unwrap();
            assert_eq!(spec.name, module);
            let files: Vec<&str> = bundle.files.keys().map(String::as_str).collect();
            assert_eq!(
                files,
                ["helper.py", "mod.py", "pkg/__init__.py", "requirements.txt"]
            );
            assert!(spec.has_bundle());
            assert_eq!(spec.dependency_file.as_deref(), Some("requirements.txt"));
        }
    }
}
