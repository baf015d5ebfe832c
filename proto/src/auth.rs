//! The shared bearer token that guards every RPC when configured.
//!
//! The token comes from a file or an environment variable, never from a command-line flag (which
//! would show in `ps`). Clients attach it to every call; the server refuses calls without it
//! with `UNAUTHENTICATED`.

use std::path::Path;

use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::{Request, Status};

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read token file {path}: {source}")]
    Unreadable {
        path: String,
        source: std::io::Error,
    },
    #[error("token {origin} is empty")]
    Empty { origin: String },
    #[error("token {origin} contains characters not allowed in an HTTP header")]
    NotAHeaderValue { origin: String },
}

/// A shared secret; its `Debug` form does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Token(***)")
    }
}

impl Token {
    /// The token from `file` if given, else from the environment variable `variable`, else none.
    pub fn load(file: Option<&Path>, variable: &str) -> Result<Option<Self>, TokenError> {
        let (text, origin) = match file {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| TokenError::Unreadable {
                        path: path.display().to_string(),
                        source,
                    })?;
                (text, format!("file {}", path.display()))
            }
            None => match std::env::var(variable) {
                Ok(text) => (text, format!("variable {variable}")),
                Err(_) => return Ok(None),
            },
        };
        let token = text.trim();
        if token.is_empty() {
            return Err(TokenError::Empty { origin });
        }
        if MetadataValue::try_from(format!("Bearer {token}")).is_err() {
            return Err(TokenError::NotAHeaderValue { origin });
        }
        Ok(Some(Self(token.to_string())))
    }

    pub fn new(token: &str) -> Self {
        Self(token.to_string())
    }

    fn header(&self) -> String {
        format!("Bearer {}", self.0)
    }
}

/// Adds the token to every outgoing call (a no-op without one).
#[derive(Debug, Clone, Default)]
pub struct AttachToken(pub Option<Token>);

impl Interceptor for AttachToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(token) = &self.0 {
            let value = MetadataValue::try_from(token.header())
                .map_err(|_| Status::internal("token is not a valid header value"))?;
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }
}

/// Refuses calls that do not carry the configured token (accepts all without one).
#[derive(Debug, Clone, Default)]
pub struct RequireToken(pub Option<Token>);

impl Interceptor for RequireToken {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(token) = &self.0 else {
            return Ok(request);
        };
        let presented = request
            .metadata()
            .get("authorization")
            .map(|value| value.as_bytes())
            .unwrap_or_default();
        if constant_time_equal(presented, token.header().as_bytes()) {
            Ok(request)
        } else {
            Err(Status::unauthenticated("missing or wrong bearer token"))
        }
    }
}

/// Compares without an early exit, so timing does not reveal how much of a guess was right.
fn constant_time_equal(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter()
        .zip(b)
        .fold(0u8, |difference, (x, y)| difference | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(require: &mut RequireToken, header: Option<&str>) -> Result<(), tonic::Code> {
        let mut request = Request::new(());
        if let Some(header) = header {
            request.metadata_mut().insert(
                "authorization",
                MetadataValue::try_from(header).expect("header"),
            );
        }
        require
            .call(request)
            .map(|_| ())
            .map_err(|status| status.code())
    }

    #[test]
    fn the_server_accepts_only_the_configured_token() {
        let mut require = RequireToken(Some(Token::new("s3cret")));
        assert_eq!(call(&mut require, Some("Bearer s3cret")), Ok(()));
        assert_eq!(
            call(&mut require, Some("Bearer s3cre")),
            Err(tonic::Code::Unauthenticated)
        );
        assert_eq!(
            call(&mut require, Some("Bearer wrong!")),
            Err(tonic::Code::Unauthenticated)
        );
        assert_eq!(call(&mut require, None), Err(tonic::Code::Unauthenticated));
        let mut open = RequireToken(None);
        assert_eq!(call(&mut open, None), Ok(()));
    }

    #[test]
    fn a_client_attaches_what_the_server_requires() {
        let mut attach = AttachToken(Some(Token::new("s3cret")));
        let request = attach.call(Request::new(())).expect("attached");
        let mut require = RequireToken(Some(Token::new("s3cret")));
        assert!(require.call(request).is_ok());
    }

    #[test]
    fn tokens_load_from_a_file_trimmed_and_empty_ones_are_refused() {
        let directory = std::env::temp_dir().join(format!("token-test-{}", std::process::id()));
        std::fs::create_dir_all(&directory).expect("dir");
        let path = directory.join("token");
        std::fs::write(&path, "abc123\n").expect("write");
        let token = Token::load(Some(&path), "UNUSED_TOKEN_VARIABLE").expect("loads");
        assert_eq!(token, Some(Token::new("abc123")));
        assert_eq!(format!("{:?}", token), "Some(Token(***))");
        std::fs::write(&path, "  \n").expect("write");
        assert!(matches!(
            Token::load(Some(&path), "UNUSED"),
            Err(TokenError::Empty { .. })
        ));
        let missing = Token::load(Some(&directory.join("missing")), "UNUSED");
        assert!(matches!(missing, Err(TokenError::Unreadable { .. })));
        std::fs::remove_dir_all(&directory).ok();
    }
}
