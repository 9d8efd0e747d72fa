//! Kubernetes `Status` errors: every failure the API returns is one of these,
//! with the HTTP code and reason a real API server would use.

use serde_json::{Value, json};

/// An API error, rendered as a `meta.k8s.io/v1 Status`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn not_found(res: &str, name: &str) -> Self {
        let (kind, group) = split_qualified(res);
        let mut error = Self::new(404, "NotFound", format!("{res} \"{name}\" not found"));
        error.details = Some(json!({"name": name, "group": group, "kind": kind}));
        error
    }

    pub fn path_not_found() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    pub fn method_not_allowed(what: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource: {what}"),
        )
    }

    pub fn already_exists(res: &str, name: &str) -> Self {
        let (kind, group) = split_qualified(res);
        let mut error = Self::new(
            409,
            "AlreadyExists",
            format!("{res} \"{name}\" already exists"),
        );
        error.details = Some(json!({"name": name, "group": group, "kind": kind}));
        error
    }

    pub fn conflict(res: &str, name: &str) -> Self {
        let (kind, group) = split_qualified(res);
        let mut error = Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {res} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
            ),
        );
        error.details = Some(json!({"name": name, "group": group, "kind": kind}));
        error
    }

    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn too_large() -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            "Request entity too large: limit is 3145728",
        )
    }

    pub fn unsupported_media(ct: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json; got {ct}"
            ),
        )
    }

    /// 422 Invalid with `details.causes`, one per (field, message).
    pub fn invalid(kind: &str, group: &str, name: &str, causes: Vec<(String, String)>) -> Self {
        let msgs: Vec<String> = causes.iter().map(|(f, m)| format!("{f}: {m}")).collect();
        let message = if msgs.len() == 1 {
            format!("{kind} \"{name}\" is invalid: {}", msgs[0])
        } else {
            format!("{kind} \"{name}\" is invalid: [{}]", msgs.join(", "))
        };
        let causes: Vec<Value> = causes
            .into_iter()
            .map(|(field, text)| {
                let reason = if text.starts_with("Required") {
                    "FieldValueRequired"
                } else if text.starts_with("Forbidden") {
                    "FieldValueForbidden"
                } else if text.starts_with("Unsupported") {
                    "FieldValueNotSupported"
                } else if text.starts_with("Too long") {
                    "FieldValueTooLong"
                } else if text.starts_with("Not found") {
                    "FieldValueNotFound"
                } else if text.starts_with("Duplicate value") {
                    "FieldValueDuplicate"
                } else {
                    "FieldValueInvalid"
                };
                json!({"reason": reason, "message": text, "field": field})
            })
            .collect();
        let mut error = Self::new(422, "Invalid", message);
        error.details = Some(json!({"name": name, "group": group, "kind": kind, "causes": causes}));
        error
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        if self.code == 401 || self.code == 405 && self.reason.is_empty() {
            status.as_object_mut().map(|o| o.remove("reason"));
        }
        status
    }
}

/// `deployments.apps` → (`deployments`, `apps`).
fn split_qualified(res: &str) -> (&str, &str) {
    match res.split_once('.') {
        Some((kind, group)) => (kind, group),
        None => (res, ""),
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}
