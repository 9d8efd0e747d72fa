//! Service names for pods run directly on this machine. Such a pod has no
//! `/etc/hosts` of its own, so a name like `stock-gen` cannot resolve in
//! it; instead, where a container's environment or command names a
//! Service as a host, the name is replaced by the Service's address when
//! the container starts: `http://stock-gen:9999` becomes
//! `http://127.10.0.3:9999`.
//!
//! A name counts as a host in a URL (`//NAME`, `@NAME`, followed by `:`,
//! `/`, `?`, `#` or the end), as `NAME:PORT`, and, in an environment
//! variable, as the whole value (`DB_HOST=postgres`). The forms are those
//! of a pod's DNS: `NAME` for the pod's own namespace, `NAME.NS`,
//! `NAME.NS.svc` and `NAME.NS.svc.cluster.local` for any.

use serde_json::Value;

use crate::resources;
use crate::store::Store;

/// The name forms of every Service with an address, longest first, each
/// with that address.
pub struct ServiceNames {
    forms: Vec<(String, String)>,
}

impl ServiceNames {
    /// The Services in the store as a pod in `namespace` names them.
    pub fn of(store: &Store, namespace: &str) -> ServiceNames {
        let (services, _) = store.list(resources::services(), None);
        ServiceNames::from_services(&services, namespace)
    }

    fn from_services(services: &[Value], namespace: &str) -> ServiceNames {
        let mut forms = Vec::new();
        for service in services {
            let (Some(name), Some(ns), Some(ip)) = (
                service["metadata"]["name"].as_str(),
                service["metadata"]["namespace"].as_str(),
                service["spec"]["clusterIP"]
                    .as_str()
                    .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok()),
            ) else {
                continue;
            };
            for form in [
                format!("{name}.{ns}.svc.cluster.local"),
                format!("{name}.{ns}.svc"),
                format!("{name}.{ns}"),
            ] {
                forms.push((form, ip.to_string()));
            }
            if ns == namespace {
                forms.push((name.to_string(), ip.to_string()));
            }
        }
        // Longest first, so `web.default` is not read as `web` + `.default`.
        forms.sort_by_key(|(form, _)| std::cmp::Reverse(form.len()));
        ServiceNames { forms }
    }

    /// An environment variable's value, with the Services it names as a
    /// host (or as the whole value) replaced by their addresses.
    pub fn in_value(&self, value: &str) -> String {
        if let Some((_, ip)) = self.forms.iter().find(|(form, _)| form == value) {
            return ip.clone();
        }
        self.in_text(value)
    }

    /// A word of a command, with the Services it names as a host in a URL
    /// or as `NAME:PORT` replaced by their addresses.
    pub fn in_text(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        'scan: while at < text.len() {
            let rest = &text[at..];
            if starts_host(text, at) {
                for (form, ip) in &self.forms {
                    if rest.starts_with(form.as_str()) && ends_host(&rest[form.len()..], at) {
                        out.push_str(ip);
                        at += form.len();
                        continue 'scan;
                    }
                }
            }
            let Some(character) = rest.chars().next() else {
                break;
            };
            out.push(character);
            at += character.len_utf8();
        }
        out
    }
}

/// Whether a host name may begin at byte `at` of `text`: after `//` or `@`,
/// or at the start (where `NAME:PORT` may stand).
fn starts_host(text: &str, at: usize) -> bool {
    let before = &text[..at];
    at == 0 || before.ends_with("//") || before.ends_with('@')
}

/// Whether what follows a name (`after`) ends it as a host: in a URL (the
/// name began after `//` or `@`), a port, a path, a query, a fragment or
/// the end; at the start of a word, only a port (`NAME:PORT`).
fn ends_host(after: &str, at: usize) -> bool {
    let port_follows = after
        .strip_prefix(':')
        .is_some_and(|port| port.starts_with(|c: char| c.is_ascii_digit()));
    if at == 0 {
        return port_follows;
    }
    port_follows || after.is_empty() || after.starts_with(['/', '?', '#'])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn names() -> ServiceNames {
        ServiceNames::from_services(
            &[
                json!({"metadata": {"name": "stock-gen", "namespace": "default"},
                       "spec": {"clusterIP": "127.10.0.3"}}),
                json!({"metadata": {"name": "db", "namespace": "data"},
                       "spec": {"clusterIP": "127.10.0.4"}}),
                json!({"metadata": {"name": "headless", "namespace": "default"},
                       "spec": {"clusterIP": "None"}}),
            ],
            "default",
        )
    }

    #[test]
    fn a_service_named_as_a_host_becomes_its_address() {
        let names = names();
        assert_eq!(
            names.in_value("http://stock-gen:9999"),
            "http://127.10.0.3:9999"
        );
        assert_eq!(
            names.in_value("http://stock-gen/stockdata?x=1"),
            "http://127.10.0.3/stockdata?x=1"
        );
        assert_eq!(names.in_value("stock-gen:9999"), "127.10.0.3:9999");
        assert_eq!(names.in_value("stock-gen"), "127.10.0.3");
        assert_eq!(
            names.in_value("postgres://me:secret@db.data.svc.cluster.local:5432/app"),
            "postgres://me:secret@127.10.0.4:5432/app"
        );
        assert_eq!(
            names.in_value("a=http://db.data:1,b=http://stock-gen.default.svc:2"),
            "a=http://127.10.0.4:1,b=http://127.10.0.3:2"
        );
    }

    #[test]
    fn other_words_are_left_as_they_are() {
        let names = names();
        for text in [
            "http://stock-gen-2:80",
            "http://my-stock-gen:80",
            "stock-gen.py",
            "run stock-gen now",
            "http://db:5432",
            "http://headless:80",
            "stock-gen:abc",
        ] {
            assert_eq!(names.in_value(text), text);
        }
        assert_eq!(names.in_text("stock-gen"), "stock-gen");
    }
}
