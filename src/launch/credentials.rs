//! Credentials among a program's files: which files are left out of its
//! bundle, and what each looks like, to name it to the user.
//!
//! This module owns the rules. A file is a credential by its name (`.env`,
//! `*.pem`, `id_*`, `.netrc`, `.aws/credentials`…, see [`by_name`]) or by
//! what it starts with ([`by_content`]): any kubeconfig whatever its name,
//! PEM and OpenSSH private keys, AWS and Google Cloud credentials, npm,
//! Docker registry and PyPI logins, `.netrc`, `.pgpass`, `.git-credentials`
//! and htpasswd lines, Terraform state and Java keystores, and the tokens
//! of well-known services (GitHub, Slack, Stripe…). Content rules
//! look at the first [`WINDOW`] bytes only (the bundle is packed again on
//! every save) and ask for the shape of the whole file or a value that is
//! a secret, not a word: source code that mentions `password`, or a README
//! describing a kubeconfig, is not a credential. The bundle decides what to
//! do with a credential (ship it when it is the program file).

use std::fmt;
use std::path::Path;

/// How much of a file the content rules read.
pub const WINDOW: usize = 8 * 1024;

/// How far a file that starts as a kubeconfig is followed: clusters'
/// certificates come before `users:`, and a few of them fill [`WINDOW`].
const KUBECONFIG_WINDOW: usize = 256 * 1024;

/// What a credential looks like, as told to the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    EnvironmentFile,
    KeyOrCertificate,
    PrivateKey,
    SshKey,
    Keystore,
    Kubeconfig,
    Aws,
    GoogleCloud,
    NpmToken,
    RegistryLogin,
    PypiPassword,
    Netrc,
    GitCredentials,
    Pgpass,
    TerraformState,
    PasswordHashes,
    ApiToken,
    KubernetesSecret,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::EnvironmentFile => "environment file",
            Kind::KeyOrCertificate => "key or certificate",
            Kind::PrivateKey => "private key",
            Kind::SshKey => "SSH key",
            Kind::Keystore => "keystore",
            Kind::Kubeconfig => "kubeconfig",
            Kind::Aws => "AWS credentials",
            Kind::GoogleCloud => "Google Cloud credentials",
            Kind::NpmToken => "npm token",
            Kind::RegistryLogin => "registry login",
            Kind::PypiPassword => "PyPI password",
            Kind::Netrc => "netrc login",
            Kind::GitCredentials => "Git credentials",
            Kind::Pgpass => "PostgreSQL passwords",
            Kind::TerraformState => "Terraform state",
            Kind::PasswordHashes => "password hashes",
            Kind::ApiToken => "API token",
            Kind::KubernetesSecret => "Kubernetes Secret with its data",
        })
    }
}

/// A file left out of a bundle: its path in the bundle and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftOut {
    pub path: String,
    pub kind: Kind,
}

impl fmt::Display for LeftOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.path, self.kind)
    }
}

/// A credential by its name alone: `.env`, `.env.*`, `.envrc`, `*.pem`,
/// `*.key`, `*.p12`, `*.pfx`, `*.jks`, `*.jceks`, `*.keystore`, SSH keys
/// (`id_rsa`, `id_ed25519.pub`…), `kubeconfig`, `*.kubeconfig`, `.netrc`,
/// `_netrc`, `.git-credentials`, `.pgpass`, `.pypirc`, `htpasswd`,
/// `.htpasswd`, `*.tfstate`, `*.tfstate.backup`, `.aws/credentials` and
/// `.docker/config.json`.
pub fn by_name(path: &Path) -> Option<Kind> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    let parent = path
        .parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if name == ".env" || name.starts_with(".env.") || name == ".envrc" {
        Some(Kind::EnvironmentFile)
    } else if matches!(extension, "pem" | "key") {
        Some(Kind::KeyOrCertificate)
    } else if matches!(extension, "p12" | "pfx" | "jks" | "jceks" | "keystore") {
        Some(Kind::Keystore)
    } else if name.starts_with("id_") && (extension.is_empty() || extension == "pub") {
        Some(Kind::SshKey)
    } else if name == "kubeconfig" || extension == "kubeconfig" {
        Some(Kind::Kubeconfig)
    } else if matches!(name, ".netrc" | "_netrc") {
        Some(Kind::Netrc)
    } else if name == ".git-credentials" {
        Some(Kind::GitCredentials)
    } else if name == ".pgpass" {
        Some(Kind::Pgpass)
    } else if name == ".pypirc" {
        Some(Kind::PypiPassword)
    } else if matches!(name, "htpasswd" | ".htpasswd") {
        Some(Kind::PasswordHashes)
    } else if extension == "tfstate" || name.ends_with(".tfstate.backup") {
        Some(Kind::TerraformState)
    } else if parent == ".aws" && name == "credentials" {
        Some(Kind::Aws)
    } else if parent == ".docker" && name == "config.json" {
        Some(Kind::RegistryLogin)
    } else {
        None
    }
}

/// A credential by what the file starts with (`contents` may be the whole
/// file; only its first [`WINDOW`] bytes are read, more only for a file
/// that starts as a kubeconfig).
pub fn by_content(contents: &[u8]) -> Option<Kind> {
    if contents.starts_with(&[0xfe, 0xed, 0xfe, 0xed]) || contents.starts_with(&[0xce; 4]) {
        return Some(Kind::Keystore);
    }
    let text = head_text(contents, WINDOW)?;
    if private_key(text) {
        return Some(Kind::PrivateKey);
    }
    if text.trim_start().starts_with('{') {
        return json(text);
    }
    // Whole-text searches are cheap; going line by line is not, so each
    // line rule runs only where the words it needs are.
    let top_level = text
        .contains("clusters:")
        .then(|| yaml_top_level(text))
        .flatten();
    match top_level {
        Some(top) if top.kubeconfig() => return Some(Kind::Kubeconfig),
        Some(top) if top.clusters && contents.len() > WINDOW => {
            let longer = head_text(contents, KUBECONFIG_WINDOW);
            if longer
                .and_then(yaml_top_level)
                .is_some_and(|top| top.kubeconfig())
            {
                return Some(Kind::Kubeconfig);
            }
        }
        _ => {}
    }
    let secret_words = [
        "_access_key",
        "_ACCESS_KEY",
        "_auth",
        "_password",
        "npmAuthToken",
        "pypi]",
        "[distutils]",
    ];
    if let Some(kind) = secret_words
        .iter()
        .any(|word| text.contains(word))
        .then(|| secret_lines(text))
        .flatten()
    {
        Some(kind)
    } else if netrc(text) {
        Some(Kind::Netrc)
    } else if every_line(text, pgpass_line) {
        Some(Kind::Pgpass)
    } else if every_line(text, git_credentials_line) {
        Some(Kind::GitCredentials)
    } else if htpasswd(text) {
        Some(Kind::PasswordHashes)
    } else if text.contains("kind: Secret") && secret_manifest(text) {
        Some(Kind::KubernetesSecret)
    } else if TOKEN_PREFIXES.iter().any(|prefix| text.contains(prefix))
        && meaningful_lines(text).any(token_line)
    {
        Some(Kind::ApiToken)
    } else {
        None
    }
}

/// A Kubernetes Secret manifest that holds its values under `data:` or
/// `stringData:`, not one filled in from the environment (`${PASSWORD}`,
/// `{{ .Values.password }}`).
fn secret_manifest(text: &str) -> bool {
    if !text.lines().any(|line| line.trim_end() == "kind: Secret") {
        return false;
    }
    let mut in_data = false;
    for line in text.lines() {
        let trimmed = line.trim_end();
        if !trimmed.starts_with([' ', '\t']) {
            in_data = matches!(trimmed, "data:" | "stringData:");
            // `data: {password: czNjcmV0}`, in flow style.
            let flow = ["data:", "stringData:"]
                .iter()
                .find_map(|key| trimmed.strip_prefix(key))
                .map(str::trim)
                .and_then(|value| value.strip_prefix('{')?.strip_suffix('}'));
            if flow.is_some_and(|inside| {
                inside.contains(':') && !inside.contains("${") && !inside.contains("{{")
            }) {
                return true;
            }
            continue;
        }
        if in_data
            && assignment(trimmed.trim()).is_some_and(|(_, value)| {
                !value.is_empty() && !value.contains("${") && !value.contains("{{")
            })
        {
            return true;
        }
    }
    false
}

/// How the tokens of well-known services begin (GitHub, GitLab, Slack,
/// Stripe, npm, PyPI, Hugging Face, OpenAI, Anthropic, Google OAuth
/// client secrets).
const TOKEN_PREFIXES: [&str; 17] = [
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "glpat-",
    "xoxb-",
    "xoxp-",
    "xoxa-",
    "sk_live_",
    "rk_live_",
    "npm_",
    "pypi-",
    "hf_",
    "sk-",
    "GOCSPX-",
];

/// A line that is a token of a well-known service, alone or as a
/// variable's value (`GITHUB_TOKEN=ghp_…`, `token: xoxb-…`), not a
/// mention of one in code or prose.
fn token_line(line: &str) -> bool {
    let line = line.strip_prefix("export ").unwrap_or(line);
    let value = match assignment(line) {
        Some((key, value)) if !key.contains(char::is_whitespace) && !key.is_empty() => value,
        _ => line,
    };
    TOKEN_PREFIXES.iter().any(|prefix| {
        value
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.len() >= 20 && literal_secret(rest, 20))
    })
}

/// The first `limit` bytes of `contents` as text, without a line cut at the
/// limit; `None` for a binary file.
fn head_text(contents: &[u8], limit: usize) -> Option<&str> {
    let truncated = contents.len() > limit;
    let head = &contents[..contents.len().min(limit)];
    if head.contains(&0) {
        return None;
    }
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        Err(error) => std::str::from_utf8(&head[..error.valid_up_to()]).ok()?,
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if truncated {
        Some(text.rfind('\n').map_or("", |end| &text[..end]))
    } else {
        Some(text)
    }
}

/// Lines without surrounding blanks, leaving out empty ones and `#`
/// comments.
fn meaningful_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
}

/// True when there is at least one meaningful line and all are like `rule`.
fn every_line(text: &str, rule: fn(&str) -> bool) -> bool {
    let mut lines = meaningful_lines(text).peekable();
    lines.peek().is_some() && lines.all(rule)
}

/// `-----BEGIN … PRIVATE KEY-----` followed by key material (on the next
/// lines, or after `\n` escapes in a JSON string), or a PuTTY key; not a
/// mention of the header in code or prose.
fn private_key(text: &str) -> bool {
    if text.starts_with("PuTTY-User-Key-File-") {
        return true;
    }
    if !text.contains("-----BEGIN ") {
        return false;
    }
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        rest = &rest[start + "-----BEGIN ".len()..];
        let Some(end) = rest.find("-----") else {
            return false;
        };
        let label = &rest[..end];
        rest = &rest[end + "-----".len()..];
        if label.len() <= 40
            && !label.contains('\n')
            && (label.ends_with("PRIVATE KEY") || label.ends_with("PRIVATE KEY BLOCK"))
            && key_material_follows(rest)
        {
            return true;
        }
    }
    false
}

/// A run of at least 40 base64 characters soon after a PEM header, past
/// line breaks (real or escaped) and headers such as `Proc-Type:`.
fn key_material_follows(after_header: &str) -> bool {
    let soon = &after_header[..floor_char_boundary(after_header, 400)];
    let mut run = 0;
    for byte in soon.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'+' || byte == b'/' {
            run += 1;
            if run >= 40 {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

fn floor_char_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// The credentials that are JSON objects: Google Cloud keys, Docker
/// registry logins, Terraform state and kubeconfigs written as JSON.
fn json(text: &str) -> Option<Kind> {
    let kind = json_string(text, "type");
    if (kind == Some("service_account") && has_json_key(text, "private_key"))
        || (kind == Some("authorized_user") && has_json_key(text, "refresh_token"))
    {
        Some(Kind::GoogleCloud)
    } else if (has_json_key(text, "installed") || has_json_key(text, "web"))
        && json_string(text, "client_secret").is_some_and(|secret| !secret.is_empty())
    {
        // An OAuth client's `credentials.json`, as Google's console gives it.
        Some(Kind::GoogleCloud)
    } else if has_json_key(text, "auths")
        && [
            json_string(text, "auth"),
            json_string(text, "identitytoken"),
        ]
        .iter()
        .any(|value| value.is_some_and(|value| !value.is_empty()))
    {
        Some(Kind::RegistryLogin)
    } else if has_json_key(text, "terraform_version")
        && (has_json_key(text, "resources") || has_json_key(text, "lineage"))
    {
        Some(Kind::TerraformState)
    } else if has_json_key(text, "clusters")
        && has_json_key(text, "users")
        && (has_json_key(text, "contexts") || has_json_key(text, "current-context"))
    {
        Some(Kind::Kubeconfig)
    } else {
        None
    }
}

/// Where `"key":` is in `text`: the text after the colon.
fn json_key<'t>(text: &'t str, key: &str) -> Option<&'t str> {
    let quoted = format!("\"{key}\"");
    let mut rest = text;
    while let Some(at) = rest.find(&quoted) {
        rest = &rest[at + quoted.len()..];
        if let Some(value) = rest.trim_start().strip_prefix(':') {
            return Some(value.trim_start());
        }
    }
    None
}

fn has_json_key(text: &str, key: &str) -> bool {
    json_key(text, key).is_some()
}

/// The string value of the first `"key": "…"` (escapes left as they are).
fn json_string<'t>(text: &'t str, key: &str) -> Option<&'t str> {
    let value = json_key(text, key)?.strip_prefix('"')?;
    let mut escaped = false;
    for (at, c) in value.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return Some(&value[..at]),
            _ => escaped = false,
        }
    }
    None
}

/// The top-level keys of a YAML document, as far as a kubeconfig needs.
#[derive(Default)]
struct TopLevel {
    clusters: bool,
    users: bool,
    contexts: bool,
    kind_config: bool,
    /// A cluster's `server:`.
    server: bool,
    /// A key only a kubeconfig's user holds (`token:`, `client-key-data:`…).
    user_secret: bool,
}

impl TopLevel {
    /// Clusters (with a server) and users, and contexts or something only
    /// a kubeconfig holds: any kubeconfig kubectl writes, and hand-written
    /// ones.
    fn kubeconfig(&self) -> bool {
        self.clusters
            && self.users
            && (self.server || self.kind_config)
            && (self.contexts || self.kind_config || self.user_secret)
    }
}

/// The top-level keys of `text` when every line at the margin is YAML (a
/// key, a list item, a document marker): `None` for prose, as in a README.
fn yaml_top_level(text: &str) -> Option<TopLevel> {
    let mut top = TopLevel::default();
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with([' ', '\t']) || line.starts_with("- ") {
            let key = line.trim_start().trim_start_matches("- ");
            top.server |= key.starts_with("server:") || key.contains("{server:");
            top.user_secret |= [
                "token:",
                "client-key-data:",
                "client-certificate-data:",
                "password:",
                "auth-provider:",
            ]
            .iter()
            .any(|secret| key.starts_with(secret));
            continue;
        }
        if matches!(line, "---" | "...") || line.starts_with("%YAML") {
            continue;
        }
        let (key, value) = line.split_once(':')?;
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            || !(value.is_empty() || value.starts_with(' '))
        {
            return None;
        }
        match key {
            "clusters" => top.clusters = true,
            "users" => top.users = true,
            "contexts" => top.contexts = true,
            "kind" => top.kind_config |= value.trim() == "Config",
            _ => {}
        }
    }
    Some(top)
}

/// A line `key = value` (or `key: value`): the key and the value, without
/// quotes around it.
fn assignment(line: &str) -> Option<(&str, &str)> {
    let at = line.find(['=', ':'])?;
    let (key, value) = (line[..at].trim(), line[at + 1..].trim());
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
        .unwrap_or(value);
    Some((key, value))
}

/// A value that is a secret itself: no spaces, no code, no `${VARIABLE}`.
fn literal_secret(value: &str, min_len: usize) -> bool {
    value.len() >= min_len
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=_.-~".contains(&b))
}

/// `aws_secret_access_key = …` (or `export AWS_SECRET_ACCESS_KEY=…`)
/// with a key as its value, not an expression nor AWS's documentation
/// example.
fn aws_secret(line: &str) -> bool {
    let line = line.strip_prefix("export ").unwrap_or(line);
    assignment(line).is_some_and(|(key, value)| {
        key.eq_ignore_ascii_case("aws_secret_access_key")
            && literal_secret(value, 16)
            && !value.contains("EXAMPLE")
    })
}

/// An `.npmrc` token (`//registry.npmjs.org/:_authToken=…`, `_auth=…`,
/// `//host/:_password=…`) or Yarn's `npmAuthToken: …`, not one read from
/// the environment (`${NPM_TOKEN}`).
fn npm_token(line: &str) -> bool {
    if let Some(scoped) = line.strip_prefix("//") {
        // `//host/:_authToken=…`: the key follows the last `:` before `=`.
        scoped.split_once('=').is_some_and(|(scope, value)| {
            scope
                .rsplit_once(':')
                .is_some_and(|(_, key)| matches!(key.trim(), "_authToken" | "_auth" | "_password"))
                && literal_secret(value.trim().trim_matches(['"', '\'']), 8)
        })
    } else {
        assignment(line).is_some_and(|(key, value)| {
            matches!(key, "_authToken" | "_auth" | "npmAuthToken") && literal_secret(value, 8)
        })
    }
}

/// The rules a single line satisfies, in one pass: AWS keys, npm tokens,
/// and a `.pypirc` (a `[pypi]`, `[testpypi]` or `[distutils]` section and
/// a `password` with a value). A line's first byte tells which rule may
/// apply, so most lines cost nothing more.
fn secret_lines(text: &str) -> Option<Kind> {
    let mut pypi_section = false;
    let mut password = false;
    for line in meaningful_lines(text) {
        match line.as_bytes()[0] {
            b'a' | b'A' | b'e' if aws_secret(line) => return Some(Kind::Aws),
            b'/' | b'_' | b'n' if npm_token(line) => return Some(Kind::NpmToken),
            b'[' => pypi_section |= matches!(line, "[pypi]" | "[testpypi]" | "[distutils]"),
            b'p' => {
                password |= assignment(line)
                    .is_some_and(|(key, value)| key == "password" && !value.is_empty());
            }
            _ => {}
        }
    }
    (pypi_section && password).then_some(Kind::PypiPassword)
}

/// A `.netrc`: every line made of its keywords and their values
/// (`machine HOST login NAME password SECRET`), one at least with a
/// password.
fn netrc(text: &str) -> bool {
    let mut password = false;
    let mut in_macro = false;
    for line in text.lines() {
        let line = line.trim();
        if in_macro {
            in_macro = !line.is_empty();
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        while let Some(word) = words.next() {
            match word {
                "default" => {}
                "machine" | "login" | "account" | "port" | "password" => {
                    if words.next().is_none() {
                        return false;
                    }
                    password |= word == "password";
                }
                "macdef" => {
                    in_macro = true;
                    break;
                }
                _ => return false,
            }
        }
    }
    password
}

/// `hostname:port:database:username:password`, `\:` escaping a colon;
/// the host a name, an address or `*`, the port digits or `*`.
fn pgpass_line(line: &str) -> bool {
    let mut fields = Vec::with_capacity(5);
    let mut start = 0;
    let bytes = line.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'\\' => at += 1,
            b':' => {
                fields.push(&line[start..at]);
                start = at + 1;
            }
            _ => {}
        }
        at += 1;
    }
    fields.push(&line[start.min(line.len())..]);
    let [host, port, _, user, password] = fields[..] else {
        return false;
    };
    (host == "*" || host.bytes().any(|b| b.is_ascii_alphabetic() || b == b'.'))
        && !host.contains(' ')
        && (port == "*" || !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
        && !user.is_empty()
        && !password.is_empty()
}

/// `https://user:secret@host`, as `git credential-store` keeps them.
fn git_credentials_line(line: &str) -> bool {
    let Some(rest) = line
        .strip_prefix("https://")
        .or_else(|| line.strip_prefix("http://"))
    else {
        return false;
    };
    let Some((login, host)) = rest.split_once('@') else {
        return false;
    };
    let Some((user, secret)) = login.split_once(':') else {
        return false;
    };
    !user.is_empty()
        && !secret.is_empty()
        && !host.is_empty()
        && !line.contains(char::is_whitespace)
        && !login.contains('/')
}

/// htpasswd (or shadow) lines: `user:hash` on every line, one at least
/// with a hash scheme's mark (`$apr1$`, `$2y$`, `{SHA}`…).
fn htpasswd(text: &str) -> bool {
    const SCHEMES: [&str; 9] = [
        "$apr1$", "$2y$", "$2a$", "$2b$", "$1$", "$5$", "$6$", "{SHA}", "{SSHA}",
    ];
    every_line(text, |line| {
        line.split_once(':').is_some_and(|(user, hash)| {
            !user.is_empty() && !hash.is_empty() && !line.contains(char::is_whitespace)
        })
    }) && meaningful_lines(text).any(|line| {
        line.split_once(':')
            .is_some_and(|(_, hash)| SCHEMES.iter().any(|s| hash.starts_with(s)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(text: &str) -> Option<Kind> {
        by_content(text.as_bytes())
    }

    const KUBECONFIG: &str = "\
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTi
    server: https://10.0.0.1:6443
  name: prod
contexts:
- context:
    cluster: prod
    user: admin
  name: admin@prod
current-context: admin@prod
kind: Config
preferences: {}
users:
- name: admin
  user:
    token: eyJhbGciOiJSUzI1NiIsImtpZCI6IjEyMyJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJl
";

    #[test]
    fn names() {
        for (name, kind) in [
            (".env", Kind::EnvironmentFile),
            ("app/.env.production", Kind::EnvironmentFile),
            (".envrc", Kind::EnvironmentFile),
            ("tls/server.pem", Kind::KeyOrCertificate),
            ("deploy.key", Kind::KeyOrCertificate),
            ("store.p12", Kind::Keystore),
            ("release.jks", Kind::Keystore),
            ("id_ed25519", Kind::SshKey),
            ("id_rsa.pub", Kind::SshKey),
            ("kubeconfig", Kind::Kubeconfig),
            ("prod.kubeconfig", Kind::Kubeconfig),
            (".netrc", Kind::Netrc),
            (".git-credentials", Kind::GitCredentials),
            (".pgpass", Kind::Pgpass),
            (".pypirc", Kind::PypiPassword),
            ("htpasswd", Kind::PasswordHashes),
            ("infra/terraform.tfstate", Kind::TerraformState),
            ("terraform.tfstate.backup", Kind::TerraformState),
            ("home/.aws/credentials", Kind::Aws),
            (".docker/config.json", Kind::RegistryLogin),
        ] {
            assert_eq!(by_name(Path::new(name)), Some(kind), "{name}");
        }
        for name in [
            "app.py",
            "environment.js",
            "keys.py",
            "identity.go",
            "config.json",
            "credentials",
            "lib/credentials.py",
            "monkey.txt",
            ".npmrc",
        ] {
            assert_eq!(by_name(Path::new(name)), None, "{name}");
        }
    }

    #[test]
    fn kubeconfigs_by_any_name() {
        assert_eq!(content(KUBECONFIG), Some(Kind::Kubeconfig));
        // Hand-written, flow style, with only clusters, users and a password.
        let minimal = "clusters:\n- name: c\n  cluster: {server: 'https://k:6443'}\n\
                       users:\n- name: u\n  user:\n    password: hunter22\n";
        assert_eq!(content(minimal), Some(Kind::Kubeconfig));
        for secret in [
            "client-key-data: LS0tLS1CRUdJTiBSU0E=",
            "client-certificate-data: LS0tLS1CRUdJTg==",
            "auth-provider:",
        ] {
            let config = format!(
                "clusters:\n- name: c\n  cluster:\n    server: https://k\n\
                 users:\n- name: u\n  user:\n    {secret}\n"
            );
            assert_eq!(content(&config), Some(Kind::Kubeconfig), "{secret}");
        }
        let windows = format!("\u{feff}{}", KUBECONFIG.replace('\n', "\r\n"));
        assert_eq!(content(&windows), Some(Kind::Kubeconfig), "BOM and CRLF");
        let json = r#"{"apiVersion": "v1", "kind": "Config", "clusters": [], "contexts": [],
                       "users": [{"name": "u", "user": {"token": "abc"}}]}"#;
        assert_eq!(content(json), Some(Kind::Kubeconfig));
    }

    #[test]
    fn a_kubeconfig_whose_users_come_after_many_certificates() {
        let certificate = "A".repeat(3000);
        let mut config = String::from("apiVersion: v1\nclusters:\n");
        for i in 0..5 {
            config.push_str(&format!(
                "- cluster:\n    certificate-authority-data: {certificate}\n    server: https://c{i}\n  name: c{i}\n"
            ));
        }
        config.push_str("users:\n- name: u\n  user:\n    token: abcdefghijklmnop\n");
        assert!(config.find("users:").unwrap() > WINDOW);
        assert_eq!(content(&config), Some(Kind::Kubeconfig));
    }

    #[test]
    fn private_keys() {
        let body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\nabc\n";
        for label in [
            "PRIVATE KEY",
            "RSA PRIVATE KEY",
            "EC PRIVATE KEY",
            "ENCRYPTED PRIVATE KEY",
            "OPENSSH PRIVATE KEY",
        ] {
            let pem = format!("-----BEGIN {label}-----\n{body}-----END {label}-----\n");
            assert_eq!(content(&pem), Some(Kind::PrivateKey), "{label}");
        }
        let encrypted = format!(
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\
             DEK-Info: AES-128-CBC,9A3C\n\n{body}"
        );
        assert_eq!(content(&encrypted), Some(Kind::PrivateKey));
        let bundled =
            format!("# the service's key\nkey: |\n  -----BEGIN PRIVATE KEY-----\n  {body}");
        assert_eq!(content(&bundled), Some(Kind::PrivateKey));
        let putty = "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\n";
        assert_eq!(content(putty), Some(Kind::PrivateKey));
    }

    #[test]
    fn cloud_credentials() {
        let aws = "[default]\naws_access_key_id = AKIAIOSFODNN7QWERTYU\n\
                   aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQwErTyUiOp\n";
        assert_eq!(content(aws), Some(Kind::Aws));
        let exported =
            "#!/bin/sh\nexport AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQwErTyUiOp\n";
        assert_eq!(content(exported), Some(Kind::Aws));
        let service_account = r#"{
  "type": "service_account",
  "project_id": "shop-123",
  "private_key_id": "0123456789abcdef",
  "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n",
  "client_email": "ci@shop-123.iam.gserviceaccount.com"
}"#;
        // The PEM rule sees the key inside the JSON string first.
        assert_eq!(content(service_account), Some(Kind::PrivateKey));
        let without_key_material = r#"{"type": "service_account", "private_key": "REDACTED"}"#;
        assert_eq!(content(without_key_material), Some(Kind::GoogleCloud));
        let user = r#"{"client_id": "x.apps.googleusercontent.com", "client_secret": "d-FL95Q",
                      "refresh_token": "1//0gx", "type": "authorized_user"}"#;
        assert_eq!(content(user), Some(Kind::GoogleCloud));
    }

    #[test]
    fn registry_tokens() {
        let npmrc = "registry=https://registry.npmjs.org/\n\
                     //registry.npmjs.org/:_authToken=npm_a1B2c3D4e5F6g7H8i9J0\n";
        assert_eq!(content(npmrc), Some(Kind::NpmToken));
        assert_eq!(
            content("_auth = dXNlcjpwYXNzd29yZA==\n"),
            Some(Kind::NpmToken)
        );
        let yarn =
            "npmRegistryServer: \"https://npm.example.com\"\nnpmAuthToken: \"abc123def456ghi\"\n";
        assert_eq!(content(yarn), Some(Kind::NpmToken));
        let docker = r#"{
	"auths": {
		"ghcr.io": {
			"auth": "dXNlcjpnaHBfc2VjcmV0"
		}
	}
}"#;
        assert_eq!(content(docker), Some(Kind::RegistryLogin));
        let pypirc = "[distutils]\nindex-servers =\n    pypi\n\n[pypi]\nusername = __token__\n\
                      password = pypi-AgEIcHlwaS5vcmcCJGUx\n";
        assert_eq!(content(pypirc), Some(Kind::PypiPassword));
    }

    #[test]
    fn login_files() {
        let netrc = "machine api.heroku.com\n  login me@example.com\n  password 01234567-89ab\n\
                     default login anonymous password guest\n";
        assert_eq!(content(netrc), Some(Kind::Netrc));
        let netrc_macro = "machine ftp.example.com login me password s3cret\n\
                           macdef init\nbinary\nls -la\n\nmachine b login x password y\n";
        assert_eq!(content(netrc_macro), Some(Kind::Netrc));
        let pgpass = "# production\ndb.internal:5432:shop:app:s3cr\\:et\n*:*:*:postgres:postgres\n";
        assert_eq!(content(pgpass), Some(Kind::Pgpass));
        let git = "https://alice:ghp_16C7e42F292c6912E7710c838347Ae178B4a@github.com\n";
        assert_eq!(content(git), Some(Kind::GitCredentials));
        let htpasswd = "admin:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/\n\
                        bob:$2y$05$c4WoMPo3SXsafkva.HHa6uXQZWr7oboPiC2bT/r7q1BB8I2s0BRqC\n\
                        carol:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n";
        assert_eq!(content(htpasswd), Some(Kind::PasswordHashes));
    }

    #[test]
    fn terraform_state_and_keystores() {
        let state = r#"{
  "version": 4,
  "terraform_version": "1.9.5",
  "serial": 12,
  "lineage": "3f1c",
  "outputs": {},
  "resources": []
}"#;
        assert_eq!(content(state), Some(Kind::TerraformState));
        let mut jks = vec![0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2];
        jks.extend_from_slice(&[0; 64]);
        assert_eq!(by_content(&jks), Some(Kind::Keystore));
        assert_eq!(
            by_content(&[0xce, 0xce, 0xce, 0xce, 0, 0]),
            Some(Kind::Keystore)
        );
    }

    #[test]
    fn tokens_of_well_known_services() {
        for text in [
            "ghp_abcdefghijklmnopqrstuvwxyz0123456789\n",
            "GITHUB_TOKEN=ghp_abcdefghijklmnopqrstuvwxyz0123456789\n",
            "# bot\nexport SLACK_TOKEN=xoxb-123456789012-123456789012-abcdefghijklmnop\n",
            "token: glpat-abcdefghij0123456789\n",
            "STRIPE_KEY=\"sk_live_abcdefghijklmnopqrstuvwx\"\n",
        ] {
            assert_eq!(content(text), Some(Kind::ApiToken), "{text}");
        }
        let secret =
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ndata:\n  password: czNjcmV0\n";
        assert_eq!(content(secret), Some(Kind::KubernetesSecret));
        let flow =
            "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\ndata: {password: czNjcmV0}\n";
        assert_eq!(content(flow), Some(Kind::KubernetesSecret));
        let client = r#"{"installed": {"client_id": "x.apps.googleusercontent.com", "client_secret": "GOCSPX-abc"}}"#;
        assert_eq!(content(client), Some(Kind::GoogleCloud));
    }

    #[test]
    fn code_and_prose_that_mention_tokens_are_not_credentials() {
        for text in [
            "token = os.environ['GITHUB_TOKEN']  # a ghp_ token\n",
            "Tokens look like ghp_xxxx; set GITHUB_TOKEN.\n",
            "const prefix = \"ghp_\";\n",
            "GITHUB_TOKEN=ghp_short\n",
            "sk-learn is a library\n",
        ] {
            assert_eq!(content(text), None, "{text}");
        }
    }

    #[test]
    fn ordinary_files_are_not_credentials() {
        let cases = [
            (
                "python asking for a password",
                "import getpass\n\npassword = getpass.getpass('password: ')\n\
                 print(\"password accepted\")\nDB = {'user': 'app', 'password': os.environ['DB_PASSWORD']}\n",
            ),
            (
                "a README describing kubeconfigs",
                "# Deploying\n\nkubesh reads your kubeconfig. A kubeconfig has\n\
                 clusters: where the API servers are\nusers: who you are, with a token:\n\n\
                 ```yaml\napiVersion: v1\nkind: Config\nclusters:\n- name: c\nusers:\n- name: u\n  user:\n    token: REDACTED\ncontexts: []\n```\n",
            ),
            (
                "a Kubernetes manifest",
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: ${DB_PASSWORD}\n",
            ),
            (
                "code that parses PEM",
                "def is_key(line):\n    return line.strip() == \"-----BEGIN PRIVATE KEY-----\"\n",
            ),
            (
                "a certificate",
                "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJ\n-----END CERTIFICATE-----\n",
            ),
            (
                "boto3 reading keys from the environment",
                "s3 = boto3.client(\n    's3',\n    aws_secret_access_key=os.environ['AWS_SECRET_ACCESS_KEY'],\n)\n",
            ),
            (
                "AWS's documentation example",
                "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
            ),
            (
                "an .npmrc reading its token from the environment",
                "//registry.npmjs.org/:_authToken=${NPM_TOKEN}\nsave-exact=true\n",
            ),
            (
                "python with an _auth variable",
                "_auth = load_auth()\n_authToken = request.headers.get('x-token')\n",
            ),
            (
                "a package.json",
                "{\n  \"name\": \"shop\",\n  \"scripts\": {\"auth\": \"node auth.js\"},\n  \"dependencies\": {}\n}\n",
            ),
            (
                "a docker config with a credential helper only",
                "{\"auths\": {\"ghcr.io\": {}}, \"credsStore\": \"desktop\"}",
            ),
            (
                "an ini file with a password but not PyPI's",
                "[server]\nhost = 0.0.0.0\npassword = ${SERVER_PASSWORD}\n",
            ),
            (
                "prose about machines and passwords",
                "machine learning needs a password\n",
            ),
            ("times of day", "12:30:45:678:ok\n"),
            (
                "a requirements file with a private index",
                "--index-url https://user:token@pypi.example.com/simple\nflask==3.0\n",
            ),
            (
                "a YAML config with a password",
                "database:\n  host: db\n  user: app\n  password: changeme\n",
            ),
            (
                "a list of user:group pairs",
                "root:root\nwww-data:www-data\n",
            ),
            (
                "a JSON schema mentioning terraform_version",
                "{\"properties\": {\"terraform_version\": {\"type\": \"string\"}}}",
            ),
            ("an empty file", ""),
        ];
        for (what, text) in cases {
            assert_eq!(content(text), None, "{what}");
        }
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend_from_slice(b"-----BEGIN PRIVATE KEY-----\n");
        assert_eq!(by_content(&png), None, "a binary file");
    }

    #[test]
    fn only_the_window_is_read() {
        let mut late = "x = 1\n".repeat(WINDOW / 6 + 10);
        late.push_str(
            "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n",
        );
        assert_eq!(content(&late), None);
    }

    #[test]
    fn what_the_user_is_told() {
        let left_out = LeftOut {
            path: "admin.conf".to_string(),
            kind: Kind::Kubeconfig,
        };
        assert_eq!(left_out.to_string(), "admin.conf (kubeconfig)");
    }
}
