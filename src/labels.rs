//! The labels and annotations kubesh puts on the objects it creates: how
//! the cluster, not kubesh, records which dprocs run, in which environment,
//! from which file and bundle.

pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY_KUBESH: &str = "kubesh";
pub const LABEL_NAME: &str = "app.kubernetes.io/name";
pub const LABEL_DPROC: &str = "kubesh.dev/dproc";
pub const LABEL_ENVIRONMENT: &str = "kubesh.dev/env";
pub const LABEL_RUNTIME: &str = "kubesh.dev/runtime";
pub const LABEL_KIND: &str = "kubesh.dev/kind";
pub const ANNOTATION_SOURCE: &str = "kubesh.dev/source";
pub const ANNOTATION_COMMAND: &str = "kubesh.dev/command";
pub const ANNOTATION_BUNDLE: &str = "kubesh.dev/bundle-hash";
/// On a bundle ConfigMap: the hash of the piece it holds, so that a save
/// writes only the pieces that changed.
pub const ANNOTATION_CHUNK: &str = "kubesh.dev/chunk-hash";
/// The label selector of the objects kubesh made for its dprocs: its
/// managed-by value and every label it always sets (a hand-made object
/// with only the managed-by label is not kubesh's).
pub fn owned_selector() -> String {
    format!("{LABEL_MANAGED_BY}={MANAGED_BY_KUBESH},{LABEL_DPROC},{LABEL_ENVIRONMENT},{LABEL_NAME}")
}

/// Whether an object with `labels` is one kubesh made for a dproc (see
/// [`owned_selector`]).
pub fn is_owned(labels: &std::collections::BTreeMap<String, String>) -> bool {
    labels
        .get(LABEL_MANAGED_BY)
        .is_some_and(|v| v == MANAGED_BY_KUBESH)
        && [LABEL_DPROC, LABEL_ENVIRONMENT, LABEL_NAME]
            .iter()
            .all(|key| labels.get(*key).is_some_and(|v| !v.is_empty()))
}

/// The environment of dprocs launched with no environment selected.
pub const GLOBAL_ENVIRONMENT: &str = "global";
