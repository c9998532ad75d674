//! The attachment server as the messenger talks to it: Session's file-server endpoints and
//! Umbra's chunked-upload extension (`docs/attachments.md`), as v4 requests that a
//! [`FileServerLink`] carries — through onion paths ([`OnionFileServer`]) in every real client.
//!
//! ```text
//!  FileServer (typed calls, bounded JSON answers) ──► dyn FileServerLink ──► OnionTransport
//!                                                                          (Destination::Server)
//! ```
//!
//! Never: reach the server other than through the link (a client that opened its own
//! connection would hand its address to the server).

use std::sync::Arc;

use serde_json::Value;
use umbra_crypto::X25519PublicKey;
use umbra_net::{
    BoxFuture, Destination, OnionTransport, Protocol, Request, Response, Server, V4Request,
};
use umbra_report::ErrorExt as _;

/// The largest JSON answer read from the server (an upload state lists at most 16 384 chunk
/// numbers).
const MAX_JSON_REPLY: usize = 256 * 1024;

/// Why a request to the attachment server failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FileServerError {
    /// The network file names no attachment server.
    #[error("the network has no attachment server (no attachment_server in the network file)")]
    NotConfigured,
    /// The network file's `attachment_server` is malformed.
    #[error("the network file's attachment_server is malformed: {0}")]
    BadConfig(&'static str),
    /// The request did not reach the server, or its answer did not come back.
    #[error("the attachment server could not be reached through an onion path: {0}")]
    Unreachable(String),
    /// The server answered with an error status (`docs/attachments.md` "Errors").
    #[error("the attachment server answered {status} to {what}{}", hint(*status))]
    Status {
        /// What was asked.
        what: &'static str,
        /// The HTTP status.
        status: u16,
    },
    /// The server's answer is not what the protocol says.
    #[error("the attachment server's answer to {what} is malformed: {why}")]
    BadReply {
        /// What was asked.
        what: &'static str,
        /// What is wrong.
        why: &'static str,
    },
}

/// What a status means for the user (`docs/attachments.md` "Errors").
fn hint(status: u16) -> &'static str {
    match status {
        404 => " (the file is unknown or has expired)",
        413 => " (the file is larger than the server accepts)",
        507 => " (the server is full)",
        409 => " (chunks are missing)",
        _ => "",
    }
}

/// Carries one v4 request to the attachment server and returns its status and body.
pub trait FileServerLink: Send + Sync {
    /// Sends `request`.
    fn send(&self, request: V4Request) -> BoxFuture<'_, Result<(u16, Vec<u8>), FileServerError>>;
}

/// Where the attachment server is: what `network.json` says under `attachment_server`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileServerAddress {
    /// `http(s)://host[:port]`, as attachment URLs name it.
    pub url: String,
    /// Its X25519 key for onion requests.
    pub x25519: X25519PublicKey,
}

impl FileServerAddress {
    /// Reads `attachment_server: {"url", "x25519_pubkey"}` from a network file's JSON.
    ///
    /// # Errors
    /// [`FileServerError::NotConfigured`] without it, [`FileServerError::BadConfig`] when it
    /// is malformed.
    pub fn from_network_json(bytes: &[u8]) -> Result<Self, FileServerError> {
        let bad = FileServerError::BadConfig;
        let v: Value = serde_json::from_slice(bytes).map_err(|_| bad("not JSON"))?;
        let Some(entry) = v.get("attachment_server").filter(|e| !e.is_null()) else {
            return Err(FileServerError::NotConfigured);
        };
        let url = entry
            .get("url")
            .and_then(Value::as_str)
            .ok_or(bad("no url"))?
            .trim_end_matches('/')
            .to_owned();
        split_url(&url)?;
        let x25519 = entry
            .get("x25519_pubkey")
            .and_then(Value::as_str)
            .and_then(|k| k.parse::<X25519PublicKey>().ok())
            .ok_or(bad("no valid x25519_pubkey"))?;
        Ok(FileServerAddress { url, x25519 })
    }

    /// The onion destination of this server (its `/oxen/v4/lsrpc` endpoint).
    pub fn onion_server(&self) -> Result<Server, FileServerError> {
        let (protocol, host, port) = split_url(&self.url)?;
        Ok(Server {
            host,
            port,
            protocol,
            target: "/oxen/v4/lsrpc".into(),
            x25519: self.x25519,
        })
    }
}

/// `http(s)://host[:port]` → its parts.
fn split_url(url: &str) -> Result<(Protocol, String, Option<u16>), FileServerError> {
    let bad = FileServerError::BadConfig;
    let (protocol, rest) = if let Some(r) = url.strip_prefix("http://") {
        (Protocol::Http, r)
    } else if let Some(r) = url.strip_prefix("https://") {
        (Protocol::Https, r)
    } else {
        return Err(bad("the url is not http(s)://host[:port]"));
    };
    if rest.contains('/') || rest.is_empty() {
        return Err(bad("the url must be http(s)://host[:port] without a path"));
    }
    match rest.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => {
            let port = port.parse::<u16>().map_err(|_| bad("the url's port"))?;
            Ok((protocol, host.to_owned(), Some(port)))
        }
        Some(_) => Err(bad("the url has no host")),
        None => Ok((protocol, rest.to_owned(), None)),
    }
}

/// The attachment server reached through onion paths: every request is a v4 onion request
/// whose exit node connects to the server.
#[derive(Clone)]
pub struct OnionFileServer {
    transport: OnionTransport,
    server: Server,
}

impl std::fmt::Debug for OnionFileServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnionFileServer").finish_non_exhaustive()
    }
}

impl OnionFileServer {
    /// The server at `address`, through `transport`'s paths.
    ///
    /// # Errors
    /// [`FileServerError::BadConfig`] for a URL that is not `http(s)://host[:port]`.
    pub fn new(
        transport: OnionTransport,
        address: &FileServerAddress,
    ) -> Result<Self, FileServerError> {
        Ok(OnionFileServer {
            transport,
            server: address.onion_server()?,
        })
    }
}

impl FileServerLink for OnionFileServer {
    fn send(&self, request: V4Request) -> BoxFuture<'_, Result<(u16, Vec<u8>), FileServerError>> {
        Box::pin(async move {
            let reply = self
                .transport
                .send(
                    Destination::Server(self.server.clone()),
                    Request::Server(request),
                )
                .await
                .map_err(|e| FileServerError::Unreachable(e.report().to_string()))?;
            match reply {
                Response::Server(r) => Ok((r.code, r.body)),
                Response::ServerUnencrypted { status, body } => Ok((status, body)),
                _ => Err(FileServerError::Unreachable(
                    "the exit answered as a storage node".into(),
                )),
            }
        })
    }
}

/// A file as the server describes it (`POST /file`, `complete`, `/info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// Its id (44 characters).
    pub id: String,
    /// Its size in bytes.
    pub size: u64,
}

/// An open chunked upload (`docs/attachments.md` "Upload state").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadState {
    /// The upload id.
    pub upload_id: String,
    /// Chunks in the upload.
    pub chunks: u64,
    /// Chunks the server holds, ascending.
    pub have: Vec<u64>,
    /// The finished file's id once completed.
    pub id: Option<String>,
}

/// Typed calls to the attachment server over a [`FileServerLink`].
#[derive(Clone)]
pub struct FileServer {
    link: Arc<dyn FileServerLink>,
    url: String,
}

impl std::fmt::Debug for FileServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileServer").finish_non_exhaustive()
    }
}

impl FileServer {
    /// Calls to the server whose URL (for attachment pointers) is `url`, through `link`.
    pub fn new(link: Arc<dyn FileServerLink>, url: impl Into<String>) -> Self {
        FileServer {
            link,
            url: url.into().trim_end_matches('/').to_owned(),
        }
    }

    /// The server's URL, `http(s)://host[:port]`.
    pub fn url(&self) -> &str {
        &self.url
    }

    async fn call(
        &self,
        what: &'static str,
        method: &str,
        endpoint: String,
        body: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, FileServerError> {
        let mut request = V4Request::get(endpoint);
        request.method = method.to_owned();
        if let Some(body) = body {
            request
                .headers
                .insert("Content-Type".into(), "application/octet-stream".into());
            request.body = Some(body);
        }
        let (status, body) = self.link.send(request).await?;
        if status != 200 && status != 206 {
            return Err(FileServerError::Status { what, status });
        }
        Ok(body)
    }

    async fn call_json(
        &self,
        what: &'static str,
        method: &str,
        endpoint: String,
        body: Option<Vec<u8>>,
    ) -> Result<Value, FileServerError> {
        let bytes = self.call(what, method, endpoint, body).await?;
        if bytes.len() > MAX_JSON_REPLY {
            return Err(FileServerError::BadReply {
                what,
                why: "too large",
            });
        }
        serde_json::from_slice(&bytes).map_err(|_| FileServerError::BadReply {
            what,
            why: "not JSON",
        })
    }

    /// `POST /file`: uploads a whole blob in one request.
    pub async fn post_file(&self, blob: Vec<u8>) -> Result<FileInfo, FileServerError> {
        let what = "an upload";
        let v = self
            .call_json(what, "POST", "/file".into(), Some(blob))
            .await?;
        file_info(what, &v)
    }

    /// `POST /upload`: opens (or finds again) the chunked upload of `manifest_json`.
    pub async fn open_upload(&self, manifest_json: String) -> Result<UploadState, FileServerError> {
        let what = "opening a chunked upload";
        let v = self
            .call_json(
                what,
                "POST",
                "/upload".into(),
                Some(manifest_json.into_bytes()),
            )
            .await?;
        upload_state(what, &v)
    }

    /// `PUT /upload/<id>/chunk/<n>`.
    pub async fn put_chunk(
        &self,
        upload_id: &str,
        index: u64,
        chunk: Vec<u8>,
    ) -> Result<UploadState, FileServerError> {
        let what = "uploading a chunk";
        check_id(what, upload_id)?;
        let v = self
            .call_json(
                what,
                "PUT",
                format!("/upload/{upload_id}/chunk/{index}"),
                Some(chunk),
            )
            .await?;
        upload_state(what, &v)
    }

    /// `POST /upload/<id>/complete`.
    pub async fn complete_upload(&self, upload_id: &str) -> Result<FileInfo, FileServerError> {
        let what = "completing a chunked upload";
        check_id(what, upload_id)?;
        let v = self
            .call_json(
                what,
                "POST",
                format!("/upload/{upload_id}/complete"),
                Some(Vec::new()),
            )
            .await?;
        file_info(what, &v)
    }

    /// `GET /file/<id>/chunk/<n>`: bytes `[n·1 MiB, min((n+1)·1 MiB, size))` of a file.
    pub async fn get_chunk(&self, file_id: &str, index: u64) -> Result<Vec<u8>, FileServerError> {
        let what = "downloading a chunk";
        check_id(what, file_id)?;
        self.call(what, "GET", format!("/file/{file_id}/chunk/{index}"), None)
            .await
    }

    /// `GET /file/<id>/info`: the file's size.
    pub async fn info(&self, file_id: &str) -> Result<u64, FileServerError> {
        let what = "asking for a file's size";
        check_id(what, file_id)?;
        let v = self
            .call_json(what, "GET", format!("/file/{file_id}/info"), None)
            .await?;
        v.get("size")
            .and_then(Value::as_u64)
            .ok_or(FileServerError::BadReply {
                what,
                why: "no size",
            })
    }
}

/// Ids go into request paths: only the URL-safe base64 alphabet (and digits of legacy ids).
fn check_id(what: &'static str, id: &str) -> Result<(), FileServerError> {
    if id.is_empty()
        || id.len() > 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(FileServerError::BadReply {
            what,
            why: "an id outside the URL-safe alphabet",
        });
    }
    Ok(())
}

fn file_info(what: &'static str, v: &Value) -> Result<FileInfo, FileServerError> {
    let bad = |why| FileServerError::BadReply { what, why };
    let id = v.get("id").and_then(Value::as_str).ok_or(bad("no id"))?;
    check_id(what, id)?;
    Ok(FileInfo {
        id: id.to_owned(),
        size: v.get("size").and_then(Value::as_u64).unwrap_or(0),
    })
}

fn upload_state(what: &'static str, v: &Value) -> Result<UploadState, FileServerError> {
    let bad = |why| FileServerError::BadReply { what, why };
    let upload_id = v
        .get("upload_id")
        .and_then(Value::as_str)
        .ok_or(bad("no upload_id"))?;
    check_id(what, upload_id)?;
    let chunks = v
        .get("chunks")
        .and_then(Value::as_u64)
        .ok_or(bad("no chunks"))?;
    let have = v
        .get("have")
        .and_then(Value::as_array)
        .ok_or(bad("no have"))?
        .iter()
        .map(|n| n.as_u64().filter(|n| *n < chunks))
        .collect::<Option<Vec<u64>>>()
        .ok_or(bad("a chunk number out of range"))?;
    let id = match v.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            check_id(what, s)?;
            Some(s.clone())
        }
        Some(_) => return Err(bad("an id that is not a string")),
    };
    Ok(UploadState {
        upload_id: upload_id.to_owned(),
        chunks,
        have,
        id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_network_file_names_the_server() {
        let key = "ab".repeat(32);
        let a = FileServerAddress::from_network_json(
            format!(
                r#"{{"registry_url":"x","attachment_server":{{"url":"http://127.0.0.1:4000/","x25519_pubkey":"{key}"}}}}"#
            )
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(a.url, "http://127.0.0.1:4000");
        let s = a.onion_server().unwrap();
        assert_eq!((s.host.as_str(), s.port), ("127.0.0.1", Some(4000)));
        assert_eq!(s.protocol, Protocol::Http);
        assert_eq!(s.target, "/oxen/v4/lsrpc");
        assert_eq!(
            FileServerAddress::from_network_json(br#"{"registry_url":"x"}"#),
            Err(FileServerError::NotConfigured)
        );
        for bad in [
            r#"{"attachment_server":{"url":"ftp://x","x25519_pubkey":"00"}}"#,
            r#"{"attachment_server":{"url":"http://x:99999","x25519_pubkey":"00"}}"#,
            r#"{"attachment_server":{"url":"http://x/path","x25519_pubkey":"00"}}"#,
            r#"{"attachment_server":{"url":"http://x"}}"#,
        ] {
            assert!(
                matches!(
                    FileServerAddress::from_network_json(bad.as_bytes()),
                    Err(FileServerError::BadConfig(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn upload_states_are_checked() {
        let ok: Value = serde_json::from_str(
            r#"{"upload_id":"abc","size":3,"chunk_size":1048576,"chunks":3,"have":[0,2],"missing":1,"id":null}"#,
        )
        .unwrap();
        let s = upload_state("x", &ok).unwrap();
        assert_eq!((s.chunks, s.have, s.id), (3, vec![0, 2], None));
        for bad in [
            r#"{"upload_id":"abc","chunks":3,"have":[3]}"#,
            r#"{"upload_id":"a/b","chunks":3,"have":[]}"#,
            r#"{"upload_id":"abc","chunks":3,"have":[0],"id":7}"#,
            r#"{"chunks":3,"have":[]}"#,
        ] {
            let v: Value = serde_json::from_str(bad).unwrap();
            assert!(
                matches!(upload_state("x", &v), Err(FileServerError::BadReply { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn statuses_say_what_they_mean() {
        let e = FileServerError::Status {
            what: "downloading a chunk",
            status: 404,
        };
        assert_eq!(
            e.to_string(),
            "the attachment server answered 404 to downloading a chunk (the file is unknown or has expired)"
        );
    }
}
