//! The local Docker engine, as kubesh and its local cluster both reach it:
//! where it is (`DOCKER_HOST`, or the default socket), a connection that
//! is checked with a version negotiation bounded in time (so an engine
//! that does not answer is reported rather than waited on), and the
//! engine's own words for a failed request. What is done through the
//! connection (building, delivering, running images) belongs to the crate
//! that does it; this crate imports neither kubesh nor the local cluster.

use std::time::Duration;

pub use bollard::Docker;

/// How long the engine has to answer the first request.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// Where a Docker client connects: `DOCKER_HOST`, or the default socket.
pub fn engine_address() -> String {
    match std::env::var("DOCKER_HOST") {
        Ok(host) if !host.is_empty() => host,
        _ => "unix:///var/run/docker.sock".to_string(),
    }
}

/// The engine's own words for a failed request: its message where it
/// answered, else the error and its causes in one line.
pub fn engine_message(error: &bollard::errors::Error) -> String {
    use bollard::errors::Error;
    match error {
        Error::DockerResponseServerError { message, .. } => message.trim().to_string(),
        Error::DockerStreamError { error } => error.trim().to_string(),
        other => {
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(inner) = source {
                let said = inner.to_string();
                if !text.contains(&said) {
                    text = format!("{text}: {said}");
                }
                source = inner.source();
            }
            text
        }
    }
}

/// Why no connection to the engine could be had.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Nothing answers at the address (no socket, nothing listening, a
    /// malformed `DOCKER_HOST`).
    #[error("no Docker engine at {address} ({reason})")]
    Absent { address: String, reason: String },
    /// An engine is there but does not let this user in (the socket's
    /// permissions).
    #[error("the Docker engine at {address} refused the connection: {reason}")]
    Refused { address: String, reason: String },
    /// Something accepted the connection but gave no answer in time.
    #[error("the Docker engine at {address} did not answer within {} s", ANSWER_WITHIN.as_secs())]
    Silent { address: String },
}

impl ConnectError {
    /// The address that was tried.
    pub fn address(&self) -> &str {
        match self {
            ConnectError::Absent { address, .. }
            | ConnectError::Refused { address, .. }
            | ConnectError::Silent { address } => address,
        }
    }

    /// Why, without the address: the engine's or the system's words.
    pub fn reason(&self) -> String {
        match self {
            ConnectError::Absent { reason, .. } | ConnectError::Refused { reason, .. } => {
                reason.clone()
            }
            ConnectError::Silent { .. } => {
                format!("it did not answer within {} s", ANSWER_WITHIN.as_secs())
            }
        }
    }
}

/// A connection to the engine at [`engine_address`], checked by
/// negotiating the API version within [`ANSWER_WITHIN`].
///
/// # Errors
/// No engine answers there, it refuses this user, or it is silent.
pub async fn connect() -> Result<Docker, ConnectError> {
    let address = engine_address();
    let failed = |error: &bollard::errors::Error| {
        let reason = engine_message(error);
        if reason.to_lowercase().contains("permission denied") {
            ConnectError::Refused {
                address: address.clone(),
                reason,
            }
        } else {
            ConnectError::Absent {
                address: address.clone(),
                reason,
            }
        }
    };
    let docker = Docker::connect_with_defaults().map_err(|e| failed(&e))?;
    match tokio::time::timeout(ANSWER_WITHIN, docker.negotiate_version()).await {
        Ok(Ok(docker)) => Ok(docker),
        Ok(Err(e)) => Err(failed(&e)),
        Err(_) => Err(ConnectError::Silent {
            address: address.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_and_a_silence_name_the_address() {
        let refused = ConnectError::Refused {
            address: "unix:///run/docker.sock".into(),
            reason: "permission denied".into(),
        };
        assert_eq!(refused.address(), "unix:///run/docker.sock");
        assert!(refused.to_string().contains("refused the connection"));
        let silent = ConnectError::Silent {
            address: "tcp://h:2375".into(),
        };
        assert_eq!(
            silent.to_string(),
            "the Docker engine at tcp://h:2375 did not answer within 5 s"
        );
        assert_eq!(silent.reason(), "it did not answer within 5 s");
    }
}
