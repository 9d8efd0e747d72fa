//! The credentials for a registry, from the user's Docker config as the
//! docker CLI reads them: `$DOCKER_CONFIG/config.json`, else
//! `~/.docker/config.json`; a credential helper for that registry
//! (`credHelpers`), else the config's store (`credsStore`), run as
//! `docker-credential-NAME get` with the registry on its stdin; else the
//! `auths` entry (`auth`, base64 of `user:password`, or an identity token).
//! No config, or nothing for the registry: no credentials.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use bollard::auth::DockerCredentials;
use serde::Deserialize;

use super::DeliveryError;

/// The server Docker Hub's credentials are stored under.
pub const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";

/// What a helper answers when it has nothing for the server.
const NOT_FOUND: &str = "credentials not found";

/// The parts of a Docker config that hold credentials.
#[derive(Debug, Default, Deserialize)]
pub struct DockerConfig {
    #[serde(default)]
    pub auths: HashMap<String, AuthEntry>,
    #[serde(rename = "credsStore", default)]
    pub creds_store: Option<String>,
    #[serde(rename = "credHelpers", default)]
    pub cred_helpers: HashMap<String, String>,
}

/// One registry's entry under `auths`.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct AuthEntry {
    #[serde(default)]
    pub auth: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub identitytoken: Option<String>,
    #[serde(default)]
    pub registrytoken: Option<String>,
}

/// Where a registry's credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A credential helper, `docker-credential-NAME`, with the config's
    /// own entry (if any) where it has nothing.
    Helper(String),
    /// The config's `auths` entry.
    Entry,
    /// Nothing: the registry is asked without credentials.
    None,
}

/// The key a registry's credentials are kept under: its host (and port),
/// Docker Hub's under its old address.
pub fn server_key(host: &str) -> String {
    match host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB_SERVER.to_string(),
        other => other.to_string(),
    }
}

/// A key of `auths` as the host it names (`https://host:5000/v1/` →
/// `host:5000`), as the docker CLI matches them.
fn host_of_key(key: &str) -> &str {
    if key == DOCKER_HUB_SERVER {
        return key;
    }
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

impl DockerConfig {
    /// Where the credentials for `server` come from (see the module).
    pub fn source(&self, server: &str) -> Source {
        if let Some(helper) = self.cred_helpers.get(server).filter(|h| !h.is_empty()) {
            return Source::Helper(helper.clone());
        }
        if let Some(store) = self.creds_store.as_ref().filter(|s| !s.is_empty()) {
            return Source::Helper(store.clone());
        }
        if self.entry(server).is_some() {
            Source::Entry
        } else {
            Source::None
        }
    }

    /// The `auths` entry for `server`, by exact key, else by host.
    pub fn entry(&self, server: &str) -> Option<&AuthEntry> {
        self.auths.get(server).or_else(|| {
            self.auths
                .iter()
                .find(|(key, _)| host_of_key(key) == server)
                .map(|(_, entry)| entry)
        })
    }
}

/// An `auths` entry as the engine takes credentials: `auth` decoded into
/// a user and password, or the tokens as they are. `None` when it holds
/// nothing.
///
/// # Errors
/// `auth` is not base64 of `user:password`; the sentence says why.
pub fn from_entry(server: &str, entry: &AuthEntry) -> Result<Option<DockerCredentials>, String> {
    let (mut username, mut password) = (entry.username.clone(), entry.password.clone());
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|e| format!("its auth for {server} is not base64 ({e})"))?;
        let decoded = String::from_utf8(decoded)
            .map_err(|_| format!("its auth for {server} is not text once decoded"))?;
        let (user, pass) = decoded
            .split_once(':')
            .ok_or_else(|| format!("its auth for {server} is not of the form user:password"))?;
        username = Some(user.to_string());
        password = Some(pass.to_string());
    }
    let identitytoken = entry.identitytoken.clone().filter(|t| !t.is_empty());
    let registrytoken = entry.registrytoken.clone().filter(|t| !t.is_empty());
    if username.is_none() && identitytoken.is_none() && registrytoken.is_none() {
        return Ok(None);
    }
    Ok(Some(DockerCredentials {
        username,
        password,
        identitytoken,
        registrytoken,
        serveraddress: Some(server.to_string()),
        ..DockerCredentials::default()
    }))
}

/// What a credential helper printed for `server` as credentials: a user
/// and secret, or an identity token where the user is `<token>`.
///
/// # Errors
/// The answer is not the helper protocol's JSON.
pub fn from_helper(server: &str, answer: &str) -> Result<DockerCredentials, String> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(rename = "Username", default)]
        username: String,
        #[serde(rename = "Secret", default)]
        secret: String,
    }
    let answer: Answer = serde_json::from_str(answer.trim())
        .map_err(|e| format!("its answer is not the credentials it should print ({e})"))?;
    let mut credentials = DockerCredentials {
        serveraddress: Some(server.to_string()),
        ..DockerCredentials::default()
    };
    if answer.username == "<token>" {
        credentials.identitytoken = Some(answer.secret);
    } else {
        credentials.username = Some(answer.username);
        credentials.password = Some(answer.secret);
    }
    Ok(credentials)
}

/// The user's Docker config file.
pub fn config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(Path::new(&dir).join("config.json"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|home| Path::new(&home).join(".docker/config.json"))
}

/// The credentials the user's Docker config holds for the registry at
/// `host`, if any.
///
/// # Errors
/// The config cannot be read or parsed, its entry is malformed, or its
/// credential helper fails.
pub fn credentials(host: &str) -> Result<Option<DockerCredentials>, DeliveryError> {
    let Some(path) = config_path() else {
        return Ok(None);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(DeliveryError::DockerConfig {
                path: path.display().to_string(),
                reason: error.to_string(),
            });
        }
    };
    let config: DockerConfig =
        serde_json::from_str(&text).map_err(|e| DeliveryError::DockerConfig {
            path: path.display().to_string(),
            reason: format!("it is not a Docker config ({e})"),
        })?;
    let server = server_key(host);
    let entry = || {
        config.entry(&server).map_or(Ok(None), |entry| {
            from_entry(&server, entry).map_err(|reason| DeliveryError::DockerConfig {
                path: path.display().to_string(),
                reason,
            })
        })
    };
    match config.source(&server) {
        Source::None => Ok(None),
        Source::Entry => entry(),
        Source::Helper(helper) => match ask_helper(&helper, &server) {
            Ok(Some(credentials)) => Ok(Some(credentials)),
            Ok(None) => entry(),
            Err(message) => Err(DeliveryError::Helper {
                helper,
                path: path.display().to_string(),
                registry: server,
                message,
            }),
        },
    }
}

/// How long a credential helper may take to answer.
const HELPER_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs `docker-credential-HELPER get` for `server`, as the docker CLI
/// does; `Ok(None)` when it has nothing for the server.
fn ask_helper(helper: &str, server: &str) -> Result<Option<DockerCredentials>, String> {
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{program} cannot be run ({e})"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that ends without reading is judged by its status.
        let _ = stdin.write_all(server.as_bytes());
    }
    // A helper waiting for a password or a keyring to unlock would hold
    // the launch for ever: it gets a while, then is stopped.
    let deadline = std::time::Instant::now() + HELPER_WAIT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{program} did not answer within {} s (waiting for a password or a \
                     keyring, perhaps); run `echo {server} | {program} get` to see what it asks",
                    HELPER_WAIT.as_secs()
                ));
            }
            Err(e) => return Err(format!("{program} did not end ({e})")),
        }
    }
    let output = child
        .wait_with_output()
        .map_err(|e| format!("{program} did not end ({e})"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if output.status.success() {
        return from_helper(server, &stdout).map(Some);
    }
    let said = format!(
        "{}{}",
        stdout.trim(),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    if said.to_lowercase().contains(NOT_FOUND) {
        return Ok(None);
    }
    Err(match output.status.code() {
        Some(code) => format!("it exited with status {code}: {said}"),
        None => format!("it was ended by a signal: {said}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> DockerConfig {
        serde_json::from_str(json).expect("a Docker config")
    }

    #[test]
    fn a_helper_for_the_registry_comes_before_the_store_and_the_store_before_the_file() {
        let both = config(
            r#"{"auths": {"reg.example:5000": {"auth": "dTpw"}},
                "credsStore": "desktop",
                "credHelpers": {"reg.example:5000": "ecr-login"}}"#,
        );
        assert_eq!(
            both.source("reg.example:5000"),
            Source::Helper("ecr-login".into())
        );
        assert_eq!(
            both.source("other.example"),
            Source::Helper("desktop".into())
        );
        let file = config(r#"{"auths": {"https://reg.example:5000/v1/": {"auth": "dTpw"}}}"#);
        assert_eq!(file.source("reg.example:5000"), Source::Entry);
        assert_eq!(file.source("other.example"), Source::None);
        assert_eq!(config("{}").source("reg.example"), Source::None);
    }

    #[test]
    fn an_auth_entry_is_decoded_into_a_user_and_password() {
        let entry = AuthEntry {
            auth: Some("YWRhOnMzY3I6ZXQ=".into()), // ada:s3cr:et
            ..AuthEntry::default()
        };
        let credentials = from_entry("reg.example", &entry)
            .expect("decoded")
            .expect("credentials");
        assert_eq!(credentials.username.as_deref(), Some("ada"));
        assert_eq!(credentials.password.as_deref(), Some("s3cr:et"));
        assert_eq!(credentials.serveraddress.as_deref(), Some("reg.example"));
        let empty = AuthEntry::default();
        assert!(
            from_entry("reg.example", &empty)
                .expect("nothing")
                .is_none()
        );
        let broken = AuthEntry {
            auth: Some("bm8tY29sb24=".into()), // no-colon
            ..AuthEntry::default()
        };
        let said = from_entry("reg.example", &broken).expect_err("refused");
        assert!(said.contains("user:password"), "{said}");
    }

    #[test]
    fn a_helper_s_token_is_an_identity_token() {
        let token = from_helper(
            "reg.example",
            r#"{"ServerURL":"reg.example","Username":"<token>","Secret":"t0k"}"#,
        )
        .expect("credentials");
        assert_eq!(token.identitytoken.as_deref(), Some("t0k"));
        assert_eq!(token.username, None);
        let basic =
            from_helper("reg.example", r#"{"Username":"ada","Secret":"pw"}"#).expect("credentials");
        assert_eq!(basic.username.as_deref(), Some("ada"));
        assert_eq!(basic.password.as_deref(), Some("pw"));
        assert!(from_helper("reg.example", "not json").is_err());
    }

    #[test]
    fn docker_hub_s_credentials_are_kept_under_its_old_address() {
        assert_eq!(server_key("docker.io"), DOCKER_HUB_SERVER);
        assert_eq!(server_key("reg.example:5000"), "reg.example:5000");
        assert_eq!(
            host_of_key("https://reg.example:5000/v2/"),
            "reg.example:5000"
        );
        assert_eq!(host_of_key("reg.example"), "reg.example");
    }
}
