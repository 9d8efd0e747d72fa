//! A record of the API requests kubesh makes: counted always, and shown one
//! line each (method, path, status, time) while `debug` is on. Only the
//! path is shown: never headers, so never credentials.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use http::{Request, Response};
use tower::{Layer, Service};

/// Shared between the shell (which turns `debug` on and off) and the
/// connection's request stack.
#[derive(Clone, Default)]
pub struct RequestLog {
    debug: Arc<AtomicBool>,
    count: Arc<AtomicUsize>,
}

impl RequestLog {
    pub fn set_debug(&self, on: bool) {
        self.debug.store(on, Ordering::Relaxed);
    }

    /// How many requests other than watches have been sent so far.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }
}

impl<S> Layer<S> for RequestLog {
    type Service = Logged<S>;

    fn layer(&self, inner: S) -> Logged<S> {
        Logged {
            inner,
            log: self.clone(),
        }
    }
}

/// A request stack that reports through a [`RequestLog`].
#[derive(Clone)]
pub struct Logged<S> {
    inner: S,
    log: RequestLog,
}

impl<S, In, Out> Service<Request<In>> for Logged<S>
where
    S: Service<Request<In>, Response = Response<Out>>,
    S::Future: Send + 'static,
    S::Error: std::fmt::Display + Send + 'static,
    Out: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<In>) -> Self::Future {
        let debug = self.log.debug.load(Ordering::Relaxed);
        let method = request.method().clone();
        let path = request
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default();
        if !path.contains("watch=true") {
            self.log.count.fetch_add(1, Ordering::Relaxed);
        }
        let path = shortened(path);
        let started = Instant::now();
        let response = self.inner.call(request);
        Box::pin(async move {
            let result = response.await;
            if debug {
                let ms = started.elapsed().as_secs_f64() * 1000.0;
                match &result {
                    Ok(response) => report!(
                        "debug: {method} {path} → {} ({ms:.1} ms)",
                        response.status().as_u16()
                    ),
                    Err(error) => report!("debug: {method} {path} → failed: {error} ({ms:.1} ms)"),
                }
            }
            result
        })
    }
}

/// The longest path shown whole; an exec's command (a script) is longer.
const LONGEST_PATH: usize = 240;

/// A path cut to [`LONGEST_PATH`] characters, saying how much was left out.
fn shortened(path: String) -> String {
    if path.chars().count() <= LONGEST_PATH {
        return path;
    }
    let kept: String = path.chars().take(LONGEST_PATH).collect();
    let left = path.chars().count() - LONGEST_PATH;
    format!("{kept}… ({left} more characters)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_paths_are_cut_and_say_so() {
        assert_eq!(shortened("/api/v1/pods".into()), "/api/v1/pods");
        let long = format!("/exec?command={}", "é".repeat(300));
        let short = shortened(long);
        assert!(short.ends_with("… (74 more characters)"), "{short}");
    }
}
