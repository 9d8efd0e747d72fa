//! `kubectl auth can-i`: SelfSubjectAccessReview and
//! SelfSubjectRulesReview (`authorization.k8s.io/v1`). The local cluster
//! has one user, who holds its token and may do everything, so every
//! review answers yes, as a real cluster answers its administrator.

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};

/// The review of `kind` (the plural) for the body sent, with its status.
pub fn review(kind: &str, mut review: Value) -> ApiResult<Value> {
    if !review.is_object() {
        return Err(ApiError::bad_request("the review must be a JSON object"));
    }
    let (kind_name, status) = if kind == "selfsubjectaccessreviews" {
        (
            "SelfSubjectAccessReview",
            json!({"allowed": true, "reason": "the local cluster's user may do everything"}),
        )
    } else {
        (
            "SelfSubjectRulesReview",
            json!({
                "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                "incomplete": false,
            }),
        )
    };
    review["kind"] = json!(kind_name);
    review["apiVersion"] = json!("authorization.k8s.io/v1");
    if !review["metadata"].is_object() {
        review["metadata"] = json!({});
    }
    review["metadata"]["creationTimestamp"] = Value::Null;
    review["status"] = status;
    Ok(review)
}
