//! Names kubesh gives to the objects of a dproc: the service name from the
//! file stem (an RFC 1035 label, as Services require, shortened when the
//! stem is long), the names of a foreground dproc's pod and of a bundle's
//! ConfigMaps, the dproc id, and what is wrong with a name the user gave.

use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

/// The longest RFC 1035 label: a Service's name, and a label's value.
pub const MAX_LABEL: usize = 63;

/// The most Kubernetes adds to a Deployment's name in the names of its
/// pods: `-`, the pod template's hash (up to 10 characters), `-` and five
/// random characters. A foreground dproc's pod adds less (`-` and six).
const POD_SUFFIX: usize = 17;

/// The longest name made from a file stem: short enough that every name
/// derived from it (a foreground pod `NAME-xxxxxx`, a background dproc's
/// ReplicaSet and pods `NAME-HASH-XXXXX`, its ConfigMaps
/// `NAME-bundle-N`) is a label too, whole, on any cluster; and the same in
/// the foreground and the background.
pub const MAX_DERIVED: usize = MAX_LABEL - POD_SUFFIX;

/// How many bytes of a hash, as hex, end a shortened name.
const HASH_BYTES: usize = 3;

/// Turns a file stem into an RFC 1035 label: lower-case letters, digits
/// and `-`, starting with a letter, at most [`MAX_DERIVED`] characters (a
/// longer one keeps its beginning and ends with a hash of the whole, see
/// [`shorten`]). `None` when nothing usable is left (then the user must
/// set `SERVICE_NAME`).
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
    Some(shorten(&name, MAX_DERIVED))
}

/// `name` (a label) when it has at most `max` characters; else as much of
/// its beginning as fits, `-`, and six hex characters of a hash of the
/// whole name: still a label, still readable, and two long names that
/// begin alike stay apart.
pub fn shorten(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_string();
    }
    let digest = Sha256::digest(name.as_bytes());
    let hash: String = digest
        .iter()
        .take(HASH_BYTES)
        .map(|b| format!("{b:02x}"))
        .collect();
    let keep = max.saturating_sub(hash.len() + 1);
    let prefix: String = name.chars().take(keep).collect();
    format!("{}-{hash}", prefix.trim_end_matches('-'))
}

/// The name of a foreground dproc's pod: the dproc's name and the six
/// characters of its id, shortened (see [`shorten`]) to stay a label when
/// the name is a long one set with `SERVICE_NAME`.
pub fn pod_name(name: &str, dproc_id: &str) -> String {
    let id = dproc_id.strip_prefix("dp-").unwrap_or(dproc_id);
    let room = MAX_LABEL.saturating_sub(id.len() + 1);
    format!("{}-{id}", shorten(name, room))
}

/// The name of the `index`th ConfigMap of a dproc's bundle:
/// `NAME-bundle-INDEX`, with the dproc's name shortened (see [`shorten`])
/// so that it stays a label like every other name kubesh makes.
pub fn config_map_name(name: &str, index: usize) -> String {
    let suffix = format!("-bundle-{index}");
    let room = MAX_LABEL.saturating_sub(suffix.len());
    format!("{}{suffix}", shorten(name, room))
}

/// Why a name is not an RFC 1035 label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelProblem {
    /// Something other than lower-case letters, digits and `-`, or a first
    /// character that is not a letter, a last that is `-`, or nothing.
    BadCharacters,
    /// Made of the right characters, but longer than [`MAX_LABEL`]: how
    /// many characters it has.
    TooLong(usize),
}

/// What is wrong with `name` as an RFC 1035 label, if anything: its
/// characters first, then its length.
pub fn label_problem(name: &str) -> Option<LabelProblem> {
    let characters_ok = name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !characters_ok {
        Some(LabelProblem::BadCharacters)
    } else if name.len() > MAX_LABEL {
        Some(LabelProblem::TooLong(name.len()))
    } else {
        None
    }
}

/// Whether `name` is a valid RFC 1035 label.
pub fn is_rfc1035_label(name: &str) -> bool {
    label_problem(name).is_none()
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
    fn a_long_stem_keeps_its_beginning_and_ends_with_a_hash() {
        let stem = format!("report_{}", "x".repeat(93));
        assert_eq!(stem.len(), 100);
        let name = service_name(&stem).unwrap();
        assert_eq!(name.len(), MAX_DERIVED, "{name}");
        assert!(is_rfc1035_label(&name), "{name}");
        assert!(name.starts_with("report-xxxx"), "{name}");
        // The same stem, the same name: a relaunch finds its dproc.
        assert_eq!(service_name(&stem).unwrap(), name);
        // A stem of exactly the longest length is kept whole.
        let fits = "y".repeat(MAX_DERIVED);
        assert_eq!(service_name(&fits).unwrap(), fits);
    }

    #[test]
    fn long_stems_that_begin_alike_get_different_names() {
        let common = "a".repeat(80);
        let one = service_name(&format!("{common}_one")).unwrap();
        let two = service_name(&format!("{common}_two")).unwrap();
        assert_ne!(one, two);
        assert_eq!(one[..30], two[..30]);
    }

    #[test]
    fn a_shortened_name_never_has_a_double_dash() {
        // The cut falls right after a `-`.
        let name = shorten(&format!("{}-{}", "b".repeat(48), "c".repeat(40)), 56);
        assert!(is_rfc1035_label(&name), "{name}");
        assert!(!name.contains("--"), "{name}");
        assert!(name.len() <= 56, "{name}");
    }

    #[test]
    fn pod_names_stay_labels() {
        assert_eq!(pod_name("job", "dp-1a2b3c"), "job-1a2b3c");
        let derived = service_name(&"z".repeat(100)).unwrap();
        let pod = pod_name(&derived, "dp-1a2b3c");
        assert_eq!(pod, format!("{derived}-1a2b3c"));
        assert!(is_rfc1035_label(&pod), "{pod}");
        // A SERVICE_NAME of the longest length, in the foreground.
        let given = format!("w{}", "-w".repeat(31));
        assert_eq!(given.len(), MAX_LABEL);
        let pod = pod_name(&given, "dp-1a2b3c");
        assert!(is_rfc1035_label(&pod), "{pod}");
        assert!(pod.ends_with("-1a2b3c"), "{pod}");
    }

    #[test]
    fn config_map_names_stay_labels() {
        assert_eq!(config_map_name("web", 0), "web-bundle-0");
        let derived = service_name(&"q".repeat(100)).unwrap();
        for index in [0, 9, 10, 123] {
            let name = config_map_name(&derived, index);
            assert!(is_rfc1035_label(&name), "{name}");
            assert!(name.ends_with(&format!("-bundle-{index}")), "{name}");
        }
        // Each dproc's ConfigMaps keep their own names.
        let other = service_name(&format!("{}r", "q".repeat(99))).unwrap();
        assert_ne!(config_map_name(&derived, 0), config_map_name(&other, 0));
    }

    #[test]
    fn labels() {
        assert!(is_rfc1035_label("a1-b"));
        assert!(!is_rfc1035_label("1a"));
        assert!(!is_rfc1035_label("a_b"));
        assert!(!is_rfc1035_label("a-"));
        assert!(!is_rfc1035_label(""));
        assert!(is_rfc1035_label(&"a".repeat(63)));
        assert_eq!(
            label_problem(&"a".repeat(64)),
            Some(LabelProblem::TooLong(64))
        );
        assert_eq!(
            label_problem(&format!("A{}", "a".repeat(70))),
            Some(LabelProblem::BadCharacters)
        );
    }

    #[test]
    fn ids_look_alike_and_differ() {
        let a = new_dproc_id("x");
        assert!(a.starts_with("dp-") && a.len() == 9, "{a}");
    }
}
