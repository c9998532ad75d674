//! `oxend_request` (`storage-rpc.md` §5.13): the node answers `get_service_nodes` (and
//! `ons_resolve`) by asking the registry, which speaks oxend's JSON-RPC at `/json_rpc`.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use umbra_report::ErrorExt as _;

use serde_json::{Value, json};

use crate::NodeError;

/// Why an oxend request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OxendError {
    /// No registry is configured or it could not be reached.
    #[error("registry unavailable: {0}")]
    Unavailable(String),
    /// The registry answered something that is not a JSON-RPC reply (→ 502).
    #[error("oxend returned unparsable data")]
    Unparsable,
    /// The registry answered with a JSON-RPC error (→ 400 with its message).
    #[error("{0}")]
    Rpc(String),
}

/// A boxed future returned by [`Oxend::request`].
pub type OxendFuture<'a> = Pin<Box<dyn Future<Output = Result<Value, OxendError>> + Send + 'a>>;

/// Something that answers oxend JSON-RPC calls (the registry, or a stub in tests).
pub trait Oxend: Send + Sync + 'static {
    /// Calls `endpoint` with `params`; resolves to the JSON-RPC `result`.
    fn request(&self, endpoint: &str, params: Option<Value>) -> OxendFuture<'_>;
}

/// No registry configured: every call fails with [`OxendError::Unavailable`].
#[derive(Debug, Clone, Copy, Default)]
pub struct NoOxend;

impl Oxend for NoOxend {
    fn request(&self, _endpoint: &str, _params: Option<Value>) -> OxendFuture<'_> {
        Box::pin(async { Err(OxendError::Unavailable("no registry configured".into())) })
    }
}

/// The registry reached over HTTP(S) at `<base>/json_rpc`.
#[derive(Debug, Clone)]
pub struct RegistryOxend {
    url: String,
    client: reqwest::Client,
}

/// Largest registry reply accepted (a node list of a few thousand nodes fits easily).
const MAX_REPLY_BYTES: usize = 16 * 1024 * 1024;

impl RegistryOxend {
    /// A client for the registry at `base_url` (e.g. `http://10.0.0.1:22000`).
    pub fn new(base_url: &str) -> Result<RegistryOxend, NodeError> {
        crate::identity::install_default_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| NodeError::HttpClient(e.report().to_string()))?;
        Ok(RegistryOxend {
            url: format!("{}/json_rpc", base_url.trim_end_matches('/')),
            client,
        })
    }

    async fn call(&self, endpoint: String, params: Option<Value>) -> Result<Value, OxendError> {
        let mut body = json!({"jsonrpc": "2.0", "id": 0, "method": endpoint});
        if let Some(p) = params {
            body["params"] = p;
        }
        let mut resp = self
            .client
            .post(&self.url)
            .json(&body)
            .send()
            .await
            .map_err(|e| OxendError::Unavailable(e.without_url().to_string()))?;
        let mut buf = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| OxendError::Unavailable(e.without_url().to_string()))?
        {
            if buf.len() + chunk.len() > MAX_REPLY_BYTES {
                return Err(OxendError::Unparsable);
            }
            buf.extend_from_slice(&chunk);
        }
        parse_jsonrpc_reply(&buf)
    }
}

/// Extracts `result` (or the error message) from a JSON-RPC reply.
pub fn parse_jsonrpc_reply(bytes: &[u8]) -> Result<Value, OxendError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|_| OxendError::Unparsable)?;
    let Value::Object(mut obj) = v else {
        return Err(OxendError::Unparsable);
    };
    if let Some(err) = obj.get("error").filter(|e| !e.is_null()) {
        let msg = err
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| "Unknown oxend error".to_string());
        return Err(OxendError::Rpc(msg));
    }
    obj.remove("result").ok_or(OxendError::Unparsable)
}

impl Oxend for RegistryOxend {
    fn request(&self, endpoint: &str, params: Option<Value>) -> OxendFuture<'_> {
        Box::pin(self.call(endpoint.to_string(), params))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonrpc_replies() {
        assert_eq!(
            parse_jsonrpc_reply(br#"{"jsonrpc":"2.0","id":0,"result":{"height":3}}"#),
            Ok(json!({"height": 3}))
        );
        assert_eq!(
            parse_jsonrpc_reply(br#"{"error":{"code":-1,"message":"nope"}}"#),
            Err(OxendError::Rpc("nope".into()))
        );
        assert_eq!(
            parse_jsonrpc_reply(br#"{"error":{"code":-1}}"#),
            Err(OxendError::Rpc("Unknown oxend error".into()))
        );
        assert_eq!(parse_jsonrpc_reply(b"<html>"), Err(OxendError::Unparsable));
        assert_eq!(parse_jsonrpc_reply(b"[1]"), Err(OxendError::Unparsable));
        assert_eq!(parse_jsonrpc_reply(b"{}"), Err(OxendError::Unparsable));
    }
}
