//! Which proxy carries the requests to the API server, chosen as kubectl
//! chooses it: the kubeconfig cluster's `proxy-url` for every request when
//! it has one; else `HTTPS_PROXY` (`HTTP_PROXY` for an `http://` server),
//! unless the server is loopback or `NO_PROXY` names it, as Go's
//! `ProxyFromEnvironment` decides.

use std::net::IpAddr;

/// The proxy settings of the environment kubesh started in: each the
/// first of its two spellings that is set and not empty, with the name it
/// was found under.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyEnv {
    pub https: Option<(&'static str, String)>,
    pub http: Option<(&'static str, String)>,
    pub no_proxy: Option<(&'static str, String)>,
}

impl ProxyEnv {
    /// Reads `HTTPS_PROXY`/`https_proxy`, `HTTP_PROXY`/`http_proxy` and
    /// `NO_PROXY`/`no_proxy`, upper case first, as Go does.
    pub fn from_process() -> ProxyEnv {
        ProxyEnv::from_lookup(|name| std::env::var(name).ok())
    }

    /// The settings as `lookup` gives the variables.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> ProxyEnv {
        let first = |names: [&'static str; 2]| {
            names.into_iter().find_map(|name| {
                lookup(name)
                    .filter(|value| !value.is_empty())
                    .map(|value| (name, value))
            })
        };
        ProxyEnv {
            https: first(["HTTPS_PROXY", "https_proxy"]),
            http: first(["HTTP_PROXY", "http_proxy"]),
            no_proxy: first(["NO_PROXY", "no_proxy"]),
        }
    }
}

/// A proxy setting that cannot be used, named by where it was set. The
/// value is shown without the credentials it may hold.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("{origin} is not a usable proxy URL ({}): {reason}", redacted(.value))]
    Unusable {
        /// `HTTPS_PROXY`, `http_proxy`, or the kubeconfig's `proxy-url`.
        origin: String,
        value: String,
        reason: String,
    },
    /// `NO_PROXY` as kube-rs reads it, which refuses some lists Go reads.
    #[error("{variable} cannot be used ({value:?}): {reason}")]
    NoProxy {
        variable: &'static str,
        value: String,
        reason: String,
    },
}

/// A proxy setting with the user and password it may hold replaced.
pub fn redacted(value: &str) -> String {
    let (scheme, rest) = value.split_once("://").unwrap_or(("", value));
    let end = rest.find('/').unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => {
            let scheme = if scheme.is_empty() {
                String::new()
            } else {
                format!("{scheme}://")
            };
            format!("{scheme}…@{}", &rest[at + 1..])
        }
        None => value.to_string(),
    }
}

/// The proxy for requests to `server`: the kubeconfig cluster's
/// `proxy-url` when it has one (used for every request, loopback too, as
/// client-go does), else the environment's proxy for the server's scheme
/// unless the server is exempt (see [`exempt`]). A proxy that would be
/// consulted but cannot be used is an error naming where it was set.
pub fn choose(
    server: &http::Uri,
    kubeconfig_proxy: Option<&str>,
    env: &ProxyEnv,
) -> Result<Option<http::Uri>, ProxyError> {
    if let Some(value) = kubeconfig_proxy.filter(|v| !v.is_empty()) {
        return parse(value, false)
            .map(Some)
            .map_err(|reason| ProxyError::Unusable {
                origin: "the kubeconfig's proxy-url".to_string(),
                value: value.to_string(),
                reason,
            });
    }
    let variable = match server.scheme_str() {
        Some("http") => &env.http,
        _ => &env.https,
    };
    let Some((name, value)) = variable else {
        return Ok(None);
    };
    let proxy = parse(value, true).map_err(|reason| ProxyError::Unusable {
        origin: (*name).to_string(),
        value: value.clone(),
        reason,
    })?;
    let no_proxy = env
        .no_proxy
        .as_ref()
        .map_or("", |(_, value)| value.as_str());
    if exempt(server, no_proxy) {
        return Ok(None);
    }
    Ok(Some(proxy))
}

/// A proxy URL: `http`, `https` or `socks5`, with a host. From the
/// environment, one without a scheme is taken as `http://` (Go's rule);
/// a kubeconfig's must say its scheme, as client-go requires. A SOCKS
/// proxy without a port is on 1080.
fn parse(value: &str, scheme_optional: bool) -> Result<http::Uri, String> {
    let value = value.trim();
    let text = if scheme_optional && !value.contains("://") {
        format!("http://{value}")
    } else {
        value.to_string()
    };
    let uri: http::Uri = text.parse().map_err(|e: http::uri::InvalidUri| {
        if value.contains("://") {
            e.to_string()
        } else {
            format!("{e}; a proxy URL looks like http://proxy.example:3128")
        }
    })?;
    let scheme = match uri.scheme_str() {
        Some(scheme @ ("http" | "https" | "socks5")) => scheme.to_string(),
        Some(other) => {
            return Err(format!(
                "the scheme {other:?} is not supported; use http, https or socks5"
            ));
        }
        None => return Err("it names no scheme; use http://, https:// or socks5://".to_string()),
    };
    let Some(authority) = uri.authority() else {
        return Err("it names no host".to_string());
    };
    if authority.host().is_empty() {
        return Err("it names no host".to_string());
    }
    if scheme == "socks5" && authority.port().is_none() {
        let with_port = format!("socks5://{authority}:1080");
        return with_port
            .parse()
            .map_err(|e: http::uri::InvalidUri| e.to_string());
    }
    Ok(uri)
}

/// The proxy without its credentials, for messages.
pub fn shown(proxy: &http::Uri) -> String {
    let scheme = proxy.scheme_str().unwrap_or("http");
    let host_port = proxy.authority().map_or("", |a| {
        let text = a.as_str();
        text.rsplit_once('@').map_or(text, |(_, rest)| rest)
    });
    format!("{scheme}://{host_port}")
}

/// Whether requests to `server` go direct though a proxy is set: loopback
/// (`localhost`, 127.0.0.0/8, ::1) never goes through the environment's
/// proxy, nor does a server that `no_proxy` names. `no_proxy` is a comma-
/// separated list, read as Go reads it: `*` (everything); an IP address or
/// a CIDR range; a domain, which matches itself and its subdomains
/// (`example.com`), or only its subdomains with a leading `.` or `*.`
/// (`.example.com`); any of them with `:PORT` to match that port only.
/// Case and spaces do not count; empty or unreadable entries are skipped.
pub fn exempt(server: &http::Uri, no_proxy: &str) -> bool {
    let Some(host) = server.host() else {
        return true;
    };
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let port = server
        .port_u16()
        .unwrap_or(if server.scheme_str() == Some("http") {
            80
        } else {
            443
        })
        .to_string();
    let ip = host.parse::<IpAddr>().ok().map(canonical);
    if host == "localhost" || ip.is_some_and(|ip| ip.is_loopback()) {
        return true;
    }
    no_proxy
        .split(',')
        .filter_map(Entry::parse)
        .any(|entry| entry.matches(&host, &port, ip))
}

/// One entry of `NO_PROXY`.
#[derive(Debug, PartialEq, Eq)]
enum Entry {
    All,
    Cidr {
        network: IpAddr,
        prefix: u8,
    },
    Ip {
        ip: IpAddr,
        port: Option<String>,
    },
    /// `suffix` starts with `.`; `itself`: the domain without the dot
    /// matches too.
    Domain {
        suffix: String,
        itself: bool,
        port: Option<String>,
    },
}

impl Entry {
    fn parse(text: &str) -> Option<Entry> {
        let text = text.trim().to_ascii_lowercase();
        if text.is_empty() {
            return None;
        }
        if text == "*" {
            return Some(Entry::All);
        }
        if let Some((address, prefix)) = text.split_once('/') {
            let network = canonical(address.parse().ok()?);
            let prefix: u8 = prefix.parse().ok()?;
            let bits = if network.is_ipv4() { 32 } else { 128 };
            return (prefix <= bits).then_some(Entry::Cidr { network, prefix });
        }
        let (host, port) = match split_host_port(&text) {
            Some((host, port)) => (host, (!port.is_empty()).then(|| port.to_string())),
            None => (text.as_str(), None),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return None;
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Some(Entry::Ip {
                ip: canonical(ip),
                port,
            });
        }
        let host = host.strip_prefix('*').unwrap_or(host);
        let (suffix, itself) = match host.strip_prefix('.') {
            Some(_) => (host.to_string(), false),
            None => (format!(".{host}"), true),
        };
        if suffix == "." {
            return None;
        }
        Some(Entry::Domain {
            suffix,
            itself,
            port,
        })
    }

    fn matches(&self, host: &str, port: &str, ip: Option<IpAddr>) -> bool {
        let port_matches = |wanted: &Option<String>| wanted.as_deref().is_none_or(|p| p == port);
        match self {
            Entry::All => true,
            Entry::Cidr { network, prefix } => {
                ip.is_some_and(|ip| in_network(ip, *network, *prefix))
            }
            Entry::Ip {
                ip: wanted,
                port: p,
            } => ip == Some(*wanted) && port_matches(p),
            Entry::Domain {
                suffix,
                itself,
                port: p,
            } => {
                (host.ends_with(suffix.as_str())
                    || (*itself && suffix.strip_prefix('.') == Some(host)))
                    && port_matches(p)
            }
        }
    }
}

/// `host:port` or `[v6]:port` split as Go's `net.SplitHostPort` does;
/// `None` when there is no port or too many colons (a bare IPv6 address).
fn split_host_port(text: &str) -> Option<(&str, &str)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':')?;
        return Some((host, port));
    }
    let (host, port) = text.rsplit_once(':')?;
    if host.contains(':') {
        return None;
    }
    Some((host, port))
}

/// An IPv4 address written as IPv6 (`::ffff:10.0.0.1`) as IPv4, as Go
/// compares them.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether `ip` is in `network/prefix`.
fn in_network(ip: IpAddr, network: IpAddr, prefix: u8) -> bool {
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(network)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(network) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(network)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(network) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(text: &str) -> http::Uri {
        text.parse().unwrap()
    }

    fn exempt_from(server: &str, no_proxy: &str) -> bool {
        exempt(&uri(server), no_proxy)
    }

    fn env(vars: &[(&str, &str)]) -> ProxyEnv {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ProxyEnv::from_lookup(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn loopback_is_never_proxied() {
        for server in [
            "https://127.0.0.1:6443",
            "https://127.1.2.3:6443",
            "https://localhost:6443",
            "https://LocalHost:6443",
            "https://[::1]:6443",
            "https://[::ffff:127.0.0.1]:6443",
        ] {
            assert!(exempt_from(server, ""), "{server}");
        }
        assert!(!exempt_from("https://10.0.0.1:6443", ""));
        assert!(!exempt_from("https://localhost.example.com", ""));
    }

    #[test]
    fn no_proxy_domains_match_themselves_and_their_subdomains() {
        let list = "example.com, .corp.internal,*.svc.test";
        assert!(exempt_from("https://example.com:6443", list));
        assert!(exempt_from("https://api.example.com:6443", list));
        assert!(exempt_from("https://API.Example.COM", list));
        assert!(!exempt_from("https://notexample.com", list));
        // A leading `.` or `*.`: subdomains only.
        assert!(exempt_from("https://k8s.corp.internal", list));
        assert!(!exempt_from("https://corp.internal", list));
        assert!(exempt_from("https://a.b.svc.test", list));
        assert!(!exempt_from("https://svc.test", list));
    }

    #[test]
    fn no_proxy_addresses_ranges_and_ports() {
        let list = "10.0.0.0/8,192.168.1.7,fd00::/8,[2001:db8::1]:6443,k8s.example:443";
        assert!(exempt_from("https://10.20.30.40:6443", list));
        assert!(!exempt_from("https://11.0.0.1:6443", list));
        assert!(exempt_from("https://192.168.1.7", list));
        assert!(!exempt_from("https://192.168.1.8", list));
        assert!(exempt_from("https://[fd12::5]:6443", list));
        assert!(exempt_from("https://[2001:db8::1]:6443", list));
        assert!(!exempt_from("https://[2001:db8::1]:443", list));
        // The port of a URL without one is its scheme's.
        assert!(exempt_from("https://k8s.example", list));
        assert!(!exempt_from("https://k8s.example:6443", list));
        // An IPv4 address written as IPv6 is the same address.
        assert!(exempt_from("https://[::ffff:10.1.1.1]", list));
        // Addresses do not match as names, nor names as addresses.
        assert!(!exempt_from("https://k8s.internal", "10.0.0.0/8"));
    }

    #[test]
    fn no_proxy_star_matches_everything_and_junk_is_skipped() {
        assert!(exempt_from("https://anything.example", "*"));
        assert!(exempt_from("https://10.1.2.3", " a.example , * "));
        // Empty entries, a trailing comma, a lone port, a bad range.
        let list = ",, ,:443,10.0.0.0/99,example.org,";
        assert!(exempt_from("https://example.org", list));
        assert!(!exempt_from("https://10.0.0.1", list));
        assert!(!exempt_from("https://example.net", list));
    }

    #[test]
    fn the_kubeconfig_proxy_url_wins_and_applies_to_loopback() {
        let env = env(&[("HTTPS_PROXY", "http://env-proxy:3128"), ("NO_PROXY", "*")]);
        let chosen = choose(
            &uri("https://127.0.0.1:6443"),
            Some("http://config-proxy:8080"),
            &env,
        )
        .unwrap();
        assert_eq!(chosen, Some(uri("http://config-proxy:8080")));
    }

    #[test]
    fn the_environment_s_proxy_follows_the_server_s_scheme() {
        let env = env(&[
            ("https_proxy", "http://secure:3128"),
            ("HTTP_PROXY", "plain:3128"),
        ]);
        assert_eq!(
            choose(&uri("https://k8s.example:6443"), None, &env).unwrap(),
            Some(uri("http://secure:3128"))
        );
        // Without a scheme, http:// (as Go reads it).
        assert_eq!(
            choose(&uri("http://k8s.example:8080"), None, &env).unwrap(),
            Some(uri("http://plain:3128"))
        );
        // Upper case first; an empty value does not count.
        let both = self::env(&[("HTTPS_PROXY", ""), ("https_proxy", "http://lower:1")]);
        assert_eq!(
            choose(&uri("https://k8s.example"), None, &both).unwrap(),
            Some(uri("http://lower:1"))
        );
        assert_eq!(
            choose(&uri("https://k8s.example"), None, &ProxyEnv::default()).unwrap(),
            None
        );
    }

    #[test]
    fn exempt_servers_go_direct() {
        let env = env(&[
            ("HTTPS_PROXY", "http://127.0.0.1:9"),
            ("NO_PROXY", ".internal"),
        ]);
        assert_eq!(
            choose(&uri("https://127.0.0.1:6443"), None, &env).unwrap(),
            None
        );
        assert_eq!(
            choose(&uri("https://localhost:6443"), None, &env).unwrap(),
            None
        );
        assert_eq!(
            choose(&uri("https://k8s.internal"), None, &env).unwrap(),
            None
        );
        assert!(
            choose(&uri("https://k8s.example"), None, &env)
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn an_unusable_proxy_is_named_by_its_variable() {
        let error = choose(
            &uri("https://127.0.0.1:6443"),
            None,
            &env(&[("https_proxy", "ftp://proxy.example")]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with("https_proxy is not a usable proxy URL"),
            "{error}"
        );
        assert!(error.contains("\"ftp\""), "{error}");
        let error = choose(
            &uri("https://k8s.example"),
            None,
            &env(&[("HTTPS_PROXY", "http://proxy example:3128")]),
        )
        .unwrap_err()
        .to_string();
        assert!(error.starts_with("HTTPS_PROXY is not"), "{error}");
        let error = choose(
            &uri("https://k8s.example"),
            Some("proxy:3128"),
            &ProxyEnv::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with("the kubeconfig's proxy-url is not a usable proxy URL"),
            "{error}"
        );
    }

    #[test]
    fn socks_proxies_get_their_default_port_and_credentials_are_not_shown() {
        let env = env(&[("HTTPS_PROXY", "socks5://proxy.example")]);
        assert_eq!(
            choose(&uri("https://k8s.example"), None, &env).unwrap(),
            Some(uri("socks5://proxy.example:1080"))
        );
        assert_eq!(
            shown(&uri("http://user:secret@proxy.example:3128/")),
            "http://proxy.example:3128"
        );
        let error = choose(
            &uri("https://k8s.example"),
            None,
            &self::env(&[("HTTPS_PROXY", "gopher://user:secret@proxy.example:70/x")]),
        )
        .unwrap_err()
        .to_string();
        assert!(!error.contains("secret"), "{error}");
        assert!(error.contains("gopher://…@proxy.example:70/x"), "{error}");
    }
}
