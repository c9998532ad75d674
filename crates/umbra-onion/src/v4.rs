//! The v4 payload for external servers (`/oxen/v4/lsrpc`, `onion-requests.md` §6).
//!
//! Request plaintext: `l <len>:<meta JSON> [<len>:<body>] e` with
//! `meta = {"method", "endpoint", "headers"}`. Response plaintext: always two strings,
//! `l <len>:{"code": <status>, "headers": {…}} <len>:<body> e`.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use thiserror::Error;

use crate::bencode;

/// A v4 payload that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum V4Error {
    /// Not valid bencode.
    #[error("invalid bencoding: {0}")]
    Bencode(&'static str),
    /// Valid bencode, but not the v4 list shape or metadata.
    #[error("{0}")]
    Shape(&'static str),
}

/// The body servers answer (with status 400) to a request they cannot parse.
pub const INVALID_V4_REQUEST: &str = "Invalid v4 onion request";

/// A request to an external server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V4Request {
    /// `GET`, `POST`, `PUT` or `DELETE`.
    pub method: String,
    /// Path and query, starting with `/`.
    pub endpoint: String,
    /// Request headers (the server does not default `Content-Type`; authentication headers
    /// such as `X-SOGS-*` go here).
    pub headers: BTreeMap<String, String>,
    /// The body, present for `POST`/`PUT`.
    pub body: Option<Vec<u8>>,
}

impl V4Request {
    /// A `GET` of `endpoint` without headers.
    pub fn get(endpoint: impl Into<String>) -> Self {
        Self {
            method: "GET".into(),
            endpoint: endpoint.into(),
            headers: BTreeMap::new(),
            body: None,
        }
    }

    /// A `POST` of a JSON body with `Content-Type: application/json`.
    pub fn post_json(endpoint: impl Into<String>, body: &Value) -> Self {
        let mut headers = BTreeMap::new();
        headers.insert("Content-Type".into(), "application/json".into());
        Self {
            method: "POST".into(),
            endpoint: endpoint.into(),
            headers,
            body: Some(body.to_string().into_bytes()),
        }
    }

    /// The bencoded plaintext.
    pub fn encode(&self) -> Vec<u8> {
        let meta =
            json!({"method": self.method, "endpoint": self.endpoint, "headers": self.headers});
        let meta = meta.to_string();
        let mut out = Vec::with_capacity(meta.len() + self.body.as_ref().map_or(0, Vec::len) + 16);
        out.push(b'l');
        bencode::put_bytes(&mut out, meta.as_bytes());
        if let Some(body) = &self.body {
            bencode::put_bytes(&mut out, body);
        }
        out.push(b'e');
        out
    }

    /// Decodes a request (what a server does after decrypting).
    pub fn decode(bytes: &[u8]) -> Result<Self, V4Error> {
        let parts = list_of_strings(bytes)?;
        let (meta, body) = match parts.as_slice() {
            [meta] => (*meta, None),
            [meta, body] => (*meta, Some(body.to_vec())),
            _ => {
                return Err(V4Error::Shape(
                    "a v4 request is a list of one or two strings",
                ));
            }
        };
        let meta = meta_object(meta)?;
        let text = |k: &str| meta.get(k).and_then(Value::as_str).map(str::to_owned);
        let method = text("method")
            .filter(|m| !m.is_empty())
            .ok_or(V4Error::Shape("v4 request without a method"))?;
        let endpoint = text("endpoint")
            .filter(|e| e.starts_with('/'))
            .ok_or(V4Error::Shape("v4 endpoint must start with /"))?;
        Ok(Self {
            method,
            endpoint,
            headers: headers(&meta)?,
            body,
        })
    }
}

/// A server's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V4Response {
    /// HTTP status.
    pub code: u16,
    /// Response headers (lower-case names, no `content-length`).
    pub headers: BTreeMap<String, String>,
    /// The body.
    pub body: Vec<u8>,
}

impl V4Response {
    /// The bencoded plaintext.
    pub fn encode(&self) -> Vec<u8> {
        let meta = json!({"code": self.code, "headers": self.headers}).to_string();
        let mut out = Vec::with_capacity(meta.len() + self.body.len() + 16);
        out.push(b'l');
        bencode::put_bytes(&mut out, meta.as_bytes());
        bencode::put_bytes(&mut out, &self.body);
        out.push(b'e');
        out
    }

    /// Decodes an answer (what a client does after decrypting).
    pub fn decode(bytes: &[u8]) -> Result<Self, V4Error> {
        let parts = list_of_strings(bytes)?;
        let [meta, body] = parts.as_slice() else {
            return Err(V4Error::Shape("a v4 response is a list of two strings"));
        };
        let meta = meta_object(meta)?;
        let code = meta
            .get("code")
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok())
            .ok_or(V4Error::Shape("v4 response without a valid code"))?;
        Ok(Self {
            code,
            headers: headers(&meta)?,
            body: body.to_vec(),
        })
    }
}

fn list_of_strings(bytes: &[u8]) -> Result<Vec<&[u8]>, V4Error> {
    let bencode::Value::List(items) = bencode::decode(bytes).map_err(V4Error::Bencode)? else {
        return Err(V4Error::Shape("a v4 payload is a bencoded list"));
    };
    items
        .into_iter()
        .map(|v| match v {
            bencode::Value::Bytes(b) => Ok(b),
            _ => Err(V4Error::Shape("a v4 payload is a list of strings")),
        })
        .collect()
}

fn meta_object(meta: &[u8]) -> Result<Map<String, Value>, V4Error> {
    match serde_json::from_slice(meta) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(V4Error::Shape("v4 metadata is not a JSON object")),
    }
}

fn headers(meta: &Map<String, Value>) -> Result<BTreeMap<String, String>, V4Error> {
    match meta.get("headers") {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(h)) => Ok(h
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), v)
            })
            .collect()),
        Some(_) => Err(V4Error::Shape("v4 headers are not a JSON object")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_examples() {
        let req = br#"l79:{"method":"GET","endpoint":"/room/some-room","headers":{"Some-Header":"12345"}}e"#;
        let r = V4Request::decode(req).unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.endpoint, "/room/some-room");
        assert_eq!(r.headers["Some-Header"], "12345");
        assert_eq!(r.body, None);
        assert_eq!(V4Request::decode(&r.encode()).unwrap(), r);

        let resp =
            br#"l58:{"code":200,"headers":{"content-type":"application/json"}}11:{"id": 123}e"#;
        let r = V4Response::decode(resp).unwrap();
        assert_eq!(r.code, 200);
        assert_eq!(r.headers["content-type"], "application/json");
        assert_eq!(r.body, br#"{"id": 123}"#);
        assert_eq!(
            r.encode(),
            resp.to_vec(),
            "our encoder matches the spec's bytes"
        );
    }

    #[test]
    fn refuses_bad_shapes() {
        for bad in [
            &b"le"[..],
            b"l2:{}e",
            b"l13:{\"method\":1}e",
            b"l36:{\"method\":\"GET\",\"endpoint\":\"room\"}e",
            b"i1e",
            b"li1ee",
        ] {
            assert!(V4Request::decode(bad).is_err());
        }
        assert!(V4Response::decode(b"l10:{\"code\":1}e").is_err());
    }
}
