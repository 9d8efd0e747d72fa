//! Names kubesh gives to the objects of a dproc: the service name from the
//! file stem (an RFC 1035 label, as Services require) and the dproc id.

use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

/// The longest RFC 1035 label.
const MAX_LABEL: usize = 63;

/// Turns a file stem into an RFC 1035 label: lower-case letters, digits
/// and `-`, starting with a letter, at most 63 characters. `None` when
/// nothing usable is left (then the user must set `SERVICE_NAME`).
pub fn service_name(stem: &str) -> Option<String> {
    let mut name = String::with_capacity(stem.len());
    for c in stem.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            name.push(c);
        } else if !name.ends_with('-') {
            name.push('-');
        }
    }
    let mut name = name.trim_matches('-').to_string();
    if name.is_empty() {
        return None;
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        name.insert_str(0, "p-");
    }
    name.truncate(MAX_LABEL);
    Some(name.trim_end_matches('-').to_string())
}

/// Whether `name` is a valid RFC 1035 label.
pub fn is_rfc1035_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_LABEL
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A short id for a new dproc, unique enough to tell launches apart.
pub fn new_dproc_id(name: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let digest = Sha256::digest(format!("{name}/{nanos}/{}", std::process::id()));
    let hex: String = digest.iter().take(3).map(|b| format!("{b:02x}")).collect();
    format!("dp-{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_become_rfc1035_labels() {
        assert_eq!(service_name("stock-gen").as_deref(), Some("stock-gen"));
        assert_eq!(
            service_name("Stock_Gen.v2").as_deref(),
            Some("stock-gen-v2")
        );
        assert_eq!(service_name("2fa").as_deref(), Some("p-2fa"));
        assert_eq!(service_name("__init__").as_deref(), Some("init"));
        assert_eq!(service_name("ünï").as_deref(), Some("n"));
        assert_eq!(service_name("___"), None);
        let long = service_name(&"a-".repeat(50)).unwrap();
        assert!(is_rfc1035_label(&long), "{long}");
    }

    #[test]
    fn labels() {
        assert!(is_rfc1035_label("a1-b"));
        assert!(!is_rfc1035_label("1a"));
        assert!(!is_rfc1035_label("a_b"));
        assert!(!is_rfc1035_label("a-"));
    }

    #[test]
    fn ids_look_alike_and_differ() {
        let a = new_dproc_id("x");
        assert!(a.starts_with("dp-") && a.len() == 9, "{a}");
    }
}
