//! The table of resource types the local cluster serves: names, kinds, scope,
//! verbs and subresources. Discovery, routing and the store all read it.

/// One served resource type.
#[derive(Debug)]
pub struct ResourceType {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    /// Subresources as (name, kind of the response, verbs).
    pub subresources: &'static [(&'static str, &'static str, &'static [&'static str])],
    /// Whether `status` is a subresource (the main endpoint ignores status changes).
    pub has_status: bool,
}

pub const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
pub const VERBS_NS: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];

const STATUS_VERBS: &[&str] = &["get", "patch", "update"];
const PROXY_VERBS: &[&str] = &["create", "delete", "get", "patch", "update"];

pub static RESOURCES: &[ResourceType] = &[
    ResourceType {
        group: "",
        version: "v1",
        plural: "namespaces",
        singular: "namespace",
        kind: "Namespace",
        namespaced: false,
        short_names: &["ns"],
        categories: &[],
        subresources: &[
            ("status", "Namespace", STATUS_VERBS),
            ("finalize", "Namespace", &["update"]),
        ],
        has_status: true,
    },
    ResourceType {
        group: "",
        version: "v1",
        plural: "pods",
        singular: "pod",
        kind: "Pod",
        namespaced: true,
        short_names: &["po"],
        categories: &["all"],
        subresources: &[
            ("status", "Pod", STATUS_VERBS),
            ("log", "Pod", &["get"]),
            ("exec", "PodExecOptions", &["create", "get"]),
            ("attach", "PodAttachOptions", &["create", "get"]),
            ("portforward", "PodPortForwardOptions", &["create", "get"]),
            ("proxy", "PodProxyOptions", PROXY_VERBS),
            ("binding", "Binding", &["create"]),
        ],
        has_status: true,
    },
    ResourceType {
        group: "",
        version: "v1",
        plural: "services",
        singular: "service",
        kind: "Service",
        namespaced: true,
        short_names: &["svc"],
        categories: &["all"],
        subresources: &[
            ("status", "Service", STATUS_VERBS),
            ("proxy", "ServiceProxyOptions", PROXY_VERBS),
        ],
        has_status: true,
    },
    ResourceType {
        group: "",
        version: "v1",
        plural: "endpoints",
        singular: "endpoints",
        kind: "Endpoints",
        namespaced: true,
        short_names: &["ep"],
        categories: &[],
        subresources: &[],
        has_status: false,
    },
    ResourceType {
        group: "",
        version: "v1",
        plural: "configmaps",
        singular: "configmap",
        kind: "ConfigMap",
        namespaced: true,
        short_names: &["cm"],
        categories: &[],
        subresources: &[],
        has_status: false,
    },
    ResourceType {
        group: "",
        version: "v1",
        plural: "secrets",
        singular: "secret",
        kind: "Secret",
        namespaced: true,
        short_names: &[],
        categories: &[],
        subresources: &[],
        has_status: false,
    },
    ResourceType {
        group: "",
        version: "v1",
        plural: "events",
        singular: "event",
        kind: "Event",
        namespaced: true,
        short_names: &["ev"],
        categories: &[],
        subresources: &[],
        has_status: false,
    },
    ResourceType {
        group: "apps",
        version: "v1",
        plural: "deployments",
        singular: "deployment",
        kind: "Deployment",
        namespaced: true,
        short_names: &["deploy"],
        categories: &["all"],
        subresources: &[
            ("status", "Deployment", STATUS_VERBS),
            ("scale", "Scale", STATUS_VERBS),
        ],
        has_status: true,
    },
    ResourceType {
        group: "apps",
        version: "v1",
        plural: "replicasets",
        singular: "replicaset",
        kind: "ReplicaSet",
        namespaced: true,
        short_names: &["rs"],
        categories: &["all"],
        subresources: &[
            ("status", "ReplicaSet", STATUS_VERBS),
            ("scale", "Scale", STATUS_VERBS),
        ],
        has_status: true,
    },
    ResourceType {
        group: "",
        version: "v1",
        plural: "resourcequotas",
        singular: "resourcequota",
        kind: "ResourceQuota",
        namespaced: true,
        short_names: &["quota"],
        categories: &[],
        subresources: &[("status", "ResourceQuota", STATUS_VERBS)],
        has_status: true,
    },
    ResourceType {
        group: "",
        version: "v1",
        plural: "nodes",
        singular: "node",
        kind: "Node",
        namespaced: false,
        short_names: &["no"],
        categories: &[],
        subresources: &[("status", "Node", STATUS_VERBS)],
        has_status: true,
    },
    ResourceType {
        group: "batch",
        version: "v1",
        plural: "jobs",
        singular: "job",
        kind: "Job",
        namespaced: true,
        short_names: &[],
        categories: &["all"],
        subresources: &[("status", "Job", STATUS_VERBS)],
        has_status: true,
    },
];

/// The self-reviews of `authorization.k8s.io` (`kubectl auth can-i`):
/// listed in discovery, answered by the API without being stored.
pub static REVIEWS: &[ResourceType] = &[
    ResourceType {
        group: "authorization.k8s.io",
        version: "v1",
        plural: "selfsubjectaccessreviews",
        singular: "selfsubjectaccessreview",
        kind: "SelfSubjectAccessReview",
        namespaced: false,
        short_names: &[],
        categories: &[],
        subresources: &[],
        has_status: true,
    },
    ResourceType {
        group: "authorization.k8s.io",
        version: "v1",
        plural: "selfsubjectrulesreviews",
        singular: "selfsubjectrulesreview",
        kind: "SelfSubjectRulesReview",
        namespaced: false,
        short_names: &[],
        categories: &[],
        subresources: &[],
        has_status: true,
    },
];

/// The API groups served besides the core group, in discovery's order.
pub const GROUPS: &[&str] = &["apps", "batch", "authorization.k8s.io"];

impl ResourceType {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The key used by the store and watch streams: `pods`, `deployments.apps`.
    pub fn key(&self) -> &'static str {
        match self.plural {
            "deployments" => "deployments.apps",
            "replicasets" => "replicasets.apps",
            "jobs" => "jobs.batch",
            p => p,
        }
    }

    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    pub fn verbs(&self) -> &'static [&'static str] {
        match self.plural {
            "namespaces" => VERBS_NS,
            "selfsubjectaccessreviews" | "selfsubjectrulesreviews" => &["create"],
            _ => VERBS,
        }
    }
}

/// Finds a resource type by group and plural name.
pub fn find(group: &str, plural: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.plural == plural)
}

/// Finds a resource type by group version kind (as ownerReferences name it).
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.kind == kind && r.api_version() == api_version)
}

pub fn pods() -> &'static ResourceType {
    &RESOURCES[1]
}
pub fn namespaces() -> &'static ResourceType {
    &RESOURCES[0]
}
pub fn services() -> &'static ResourceType {
    &RESOURCES[2]
}
pub fn endpoints() -> &'static ResourceType {
    &RESOURCES[3]
}
pub fn configmaps() -> &'static ResourceType {
    &RESOURCES[4]
}
pub fn secrets() -> &'static ResourceType {
    &RESOURCES[5]
}
pub fn events() -> &'static ResourceType {
    &RESOURCES[6]
}
pub fn deployments() -> &'static ResourceType {
    &RESOURCES[7]
}
pub fn replicasets() -> &'static ResourceType {
    &RESOURCES[8]
}
pub fn resourcequotas() -> &'static ResourceType {
    &RESOURCES[9]
}
pub fn nodes() -> &'static ResourceType {
    &RESOURCES[10]
}
pub fn jobs() -> &'static ResourceType {
    &RESOURCES[11]
}
