//! Bodies of answers read within limits: an error answer's first bytes (enough to explain,
//! never a flood), or a whole small document (a manifest, a token, a tag page) refused past
//! its limit.

use reqwest::Response;

use super::error::{RegistryError, Target, classify_transport};

/// Bodies of error answers are read this far; the rest is dropped unread.
pub(crate) const ERROR_BODY_LIMIT: usize = 64 << 10;

/// The first `limit` bytes of a body (an error answer: enough to explain, never a flood).
pub(crate) async fn read_prefix(mut response: Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = limit - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            _ => break,
        }
    }
    body
}

/// A whole body of at most `limit` bytes; a longer one is refused, not read into memory.
pub(crate) async fn read_limited(
    mut response: Response,
    limit: usize,
    target: &Target,
    what: &str,
) -> Result<Vec<u8>, RegistryError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| classify_transport(target.clone(), &e))?
    {
        if body.len() + chunk.len() > limit {
            return Err(RegistryError::Protocol {
                target: target.clone(),
                detail: format!("{what} is larger than {limit} bytes; refusing it"),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
