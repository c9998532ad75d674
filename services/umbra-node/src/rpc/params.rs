//! Typed access to a request's `params` object, with the reference server's exact parse-error
//! texts (`storage-rpc.md` §2, §10). Every function here is bounded by the (already size-capped)
//! JSON value and never panics.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Map, Value};
use umbra_crypto::{AccountId, Signature};
use umbra_store::{Namespace, NamespaceSel};

use super::RpcError;

/// Result of parsing.
pub(crate) type PResult<T> = Result<T, RpcError>;

/// A lenient standard-alphabet base64 decoder (padding optional, trailing bits ignored), as
/// `oxenc::from_base64` is.
const B64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Standard base64 with padding (how the reference encodes data and signatures in replies).
pub(crate) fn b64(bytes: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Whether `s` is base64 (standard alphabet, optional correct padding, no impossible length).
pub(crate) fn is_base64(s: &str) -> bool {
    let bytes = s.as_bytes();
    let body_len = if bytes.ends_with(b"==") {
        bytes.len() - 2
    } else if bytes.ends_with(b"=") {
        bytes.len() - 1
    } else {
        bytes.len()
    };
    if body_len != bytes.len() && !bytes.len().is_multiple_of(4) {
        return false;
    }
    if body_len % 4 == 1 {
        return false;
    }
    bytes[..body_len]
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

/// Decodes text that passed [`is_base64`].
pub(crate) fn b64_decode(s: &str) -> Option<Vec<u8>> {
    B64_LENIENT.decode(s).ok()
}

/// Decodes an Ed25519 signature given as base64 (86 chars, or 88 ending in `==`).
pub(crate) fn parse_sig_b64(s: &str) -> Option<Signature> {
    let len_ok = s.len() == 86 || (s.len() == 88 && s.ends_with("=="));
    if !len_ok || !is_base64(s) {
        return None;
    }
    Signature::from_slice(&b64_decode(s)?).ok()
}

/// Parses a 66-hex-digit account id.
pub(crate) fn parse_account_hex(s: &str) -> Option<AccountId> {
    if s.len() != 66 {
        return None;
    }
    AccountId::try_from(hex::decode(s).ok()?.as_slice()).ok()
}

/// Parses a 36-byte subaccount token given as base64 (48 chars) or hex (72 chars).
pub(crate) fn parse_token(s: &str) -> Option<[u8; 36]> {
    let v = if s.len() == 48 && is_base64(s) {
        b64_decode(s)?
    } else if s.len() == 72 {
        hex::decode(s).ok()?
    } else {
        return None;
    };
    v.try_into().ok()
}

/// `"Invalid value given for '<name>': expected <desc>"`.
fn type_error(name: &str, desc: &str) -> RpcError {
    RpcError::invalid(format!("Invalid value given for '{name}': expected {desc}"))
}

/// `"Required field '<name>' missing"`.
pub(crate) fn missing(name: &str) -> RpcError {
    RpcError::invalid(format!("Required field '{name}' missing"))
}

/// Requires a loaded optional field.
pub(crate) fn require<T>(name: &str, v: Option<T>) -> PResult<T> {
    v.ok_or_else(|| missing(name))
}

/// One request's `params`.
#[derive(Clone, Copy)]
pub(crate) struct Params<'a>(pub(crate) &'a Map<String, Value>);

/// A JSON integer that fits in i64 (u64 values above `i64::MAX` saturate).
fn as_int(v: &Value) -> Option<i64> {
    if let Some(i) = v.as_i64() {
        return Some(i);
    }
    v.as_u64().map(|u| i64::try_from(u).unwrap_or(i64::MAX))
}

/// A non-negative JSON integer (what nlohmann calls "unsigned").
fn as_unsigned(v: &Value) -> Option<u64> {
    v.as_u64()
}

/// Milliseconds below this are "probably seconds" (10⁹ ms = 10⁶ s).
const MIN_TIMESTAMP_MS: i64 = 1_000_000_000;

impl<'a> Params<'a> {
    /// The value of `name` unless absent or null.
    pub(crate) fn get(&self, name: &str) -> Option<&'a Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    pub(crate) fn string(&self, name: &str) -> PResult<Option<&'a str>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(type_error(name, "string")),
        }
    }

    pub(crate) fn boolean(&self, name: &str) -> PResult<Option<bool>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(type_error(name, "boolean")),
        }
    }

    pub(crate) fn int(&self, name: &str) -> PResult<Option<i64>> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => as_int(v)
                .map(Some)
                .ok_or_else(|| type_error(name, "integer")),
        }
    }

    pub(crate) fn uint(&self, name: &str) -> PResult<Option<u64>> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => as_unsigned(v)
                .map(Some)
                .ok_or_else(|| type_error(name, "positive integer")),
        }
    }

    /// A millisecond timestamp: a non-negative integer of at least 10⁹.
    pub(crate) fn timestamp(&self, name: &str) -> PResult<Option<i64>> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        let ms = as_unsigned(v)
            .and_then(|u| i64::try_from(u).ok())
            .ok_or_else(|| type_error(name, "integer timestamp (in milliseconds)"))?;
        check_ms(name, ms)?;
        Ok(Some(ms))
    }

    /// A namespace: integer in −32768 … 32767.
    pub(crate) fn namespace(&self, name: &str) -> PResult<Option<Namespace>> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => {
                let i = as_int(v).ok_or_else(|| type_error(name, "16-bit integer"))?;
                ns_in_range(name, i).map(Some)
            }
        }
    }

    /// A namespace or the string `"all"`.
    pub(crate) fn namespace_var(&self, name: &str) -> PResult<Option<NamespaceSel>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) if s == "all" => Ok(Some(NamespaceSel::All)),
            Some(v) => match as_int(v) {
                Some(i) => ns_in_range(name, i).map(|n| Some(NamespaceSel::One(n))),
                None => Err(type_error(name, "integer or \"all\"")),
            },
        }
    }

    /// A list of strings, or a single string (a one-element list).
    pub(crate) fn str_array(&self, name: &str) -> PResult<Option<Vec<String>>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(vec![s.clone()])),
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| x.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .map(Some)
                .ok_or_else(|| type_error(name, "string array")),
            Some(_) => Err(type_error(name, "string array")),
        }
    }

    /// A list of integers, or a single integer.
    pub(crate) fn int_array(&self, name: &str) -> PResult<Option<Vec<i64>>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .map(as_int)
                .collect::<Option<Vec<_>>>()
                .map(Some)
                .ok_or_else(|| type_error(name, "integer array")),
            Some(v) => as_int(v)
                .map(|i| Some(vec![i]))
                .ok_or_else(|| type_error(name, "integer array")),
        }
    }

    /// A list of millisecond timestamps, or a single one.
    pub(crate) fn timestamp_array(&self, name: &str) -> PResult<Option<Vec<i64>>> {
        let one = |v: &Value| as_unsigned(v).and_then(|u| i64::try_from(u).ok());
        match self.get(name) {
            None => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .map(one)
                .collect::<Option<Vec<_>>>()
                .map(Some)
                .ok_or_else(|| type_error(name, "timestamp array")),
            Some(v) => one(v)
                .map(|i| Some(vec![i]))
                .ok_or_else(|| type_error(name, "timestamp array")),
        }
    }

    /// An integer that old clients may send as a string (`store`'s `timestamp`).
    pub(crate) fn stringified_int(&self, name: &str) -> PResult<Option<i64>> {
        if let Some(Value::String(s)) = self.get(name) {
            return s
                .parse::<i64>()
                .map(Some)
                .map_err(|_| stringified_error(name, s));
        }
        self.int(name)
    }

    /// A non-negative integer that old clients may send as a string (`store`'s `ttl`).
    pub(crate) fn stringified_uint(&self, name: &str) -> PResult<Option<u64>> {
        if let Some(Value::String(s)) = self.get(name) {
            return s
                .parse::<u64>()
                .map(Some)
                .map_err(|_| stringified_error(name, s));
        }
        self.uint(name)
    }
}

fn stringified_error(name: &str, s: &str) -> RpcError {
    let dumped = Value::String(s.to_string()).to_string();
    RpcError::invalid(format!("Invalid value given for '{name}': {dumped}"))
}

/// The "probably seconds" check of every millisecond timestamp.
pub(crate) fn check_ms(name: &str, ms: i64) -> PResult<()> {
    if ms < MIN_TIMESTAMP_MS {
        return Err(RpcError::invalid(format!(
            "Invalid timestamp for '{name}': timestamp must be in milliseconds"
        )));
    }
    Ok(())
}

fn ns_in_range(name: &str, i: i64) -> PResult<Namespace> {
    Namespace::try_from(i).map_err(|_| {
        RpcError::invalid(format!(
            "Invalid value given for '{name}': value out of range"
        ))
    })
}

/// `pubkey`/`pubKey`: at most one may be given; `Required field 'pubkey' missing` if neither.
pub(crate) fn choose_pubkey<'a>(
    main: Option<&'a str>,
    alt: Option<&'a str>,
) -> PResult<Option<&'a str>> {
    match (main, alt) {
        (Some(_), Some(_)) => Err(RpcError::invalid(
            "Cannot specify both 'pubkey' and 'pubKey'".to_string(),
        )),
        (Some(s), None) | (None, Some(s)) => Ok(Some(s)),
        (None, None) => Err(missing("pubkey")),
    }
}

/// Loads a required account id (`load_pk`).
pub(crate) fn load_pk(pk: Option<&str>) -> PResult<AccountId> {
    let pk = require("pubkey", pk)?;
    parse_account_hex(pk).ok_or_else(|| {
        RpcError::invalid("Pubkey must be 66 hex digits (33 bytes) long".to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn with<T>(v: Value, f: impl FnOnce(Params<'_>) -> T) -> T {
        let Value::Object(m) = v else {
            panic!("object")
        };
        f(Params(&m))
    }

    #[test]
    fn base64_rules() {
        assert!(is_base64(""));
        assert!(is_base64("QUJD"));
        assert!(is_base64("QUI="));
        assert!(is_base64("QUI"));
        assert!(is_base64("QQ=="));
        assert!(!is_base64("Q"));
        assert!(!is_base64("QUJD*"));
        assert!(!is_base64("QU=I"));
        assert!(!is_base64("QUI=="));
        assert_eq!(b64_decode("QUI").unwrap(), b"AB");
        assert_eq!(b64_decode("QUI=").unwrap(), b"AB");
        let sig = b64([7u8; 64]);
        assert_eq!(sig.len(), 88);
        let seven = Some(Signature::from_bytes([7u8; 64]));
        assert_eq!(parse_sig_b64(&sig), seven);
        assert_eq!(parse_sig_b64(sig.trim_end_matches('=')), seven);
        assert_eq!(parse_sig_b64("abc"), None);
    }

    #[test]
    fn typed_fields_and_errors() {
        with(json!({"a": "x", "b": 5, "n": null}), |p| {
            assert_eq!(p.string("a").unwrap(), Some("x"));
            assert_eq!(p.string("n").unwrap(), None);
            assert_eq!(
                p.string("b").unwrap_err().body,
                "invalid request: Invalid value given for 'b': expected string"
            );
            assert_eq!(
                p.boolean("a").unwrap_err().body,
                "invalid request: Invalid value given for 'a': expected boolean"
            );
        });
        with(
            json!({"t": 1700000000000u64, "s": 1700000, "neg": -5, "f": 1.5}),
            |p| {
                assert_eq!(p.timestamp("t").unwrap(), Some(1_700_000_000_000));
                assert_eq!(
                    p.timestamp("s").unwrap_err().body,
                    "invalid request: Invalid timestamp for 's': timestamp must be in milliseconds"
                );
                assert_eq!(
                    p.timestamp("neg").unwrap_err().body,
                    "invalid request: Invalid value given for 'neg': expected integer timestamp (in milliseconds)"
                );
                assert!(p.int("f").is_err());
            },
        );
        with(
            json!({"a": 40000, "b": "all", "c": "x", "d": -32768, "e": true}),
            |p| {
                assert_eq!(
                    p.namespace("a").unwrap_err().body,
                    "invalid request: Invalid value given for 'a': value out of range"
                );
                assert_eq!(p.namespace_var("b").unwrap(), Some(NamespaceSel::All));
                assert_eq!(
                    p.namespace_var("c").unwrap_err().body,
                    "invalid request: Invalid value given for 'c': expected integer or \"all\""
                );
                assert_eq!(p.namespace("d").unwrap(), Some(-32768));
                assert_eq!(
                    p.namespace("e").unwrap_err().body,
                    "invalid request: Invalid value given for 'e': expected 16-bit integer"
                );
                assert_eq!(
                    p.namespace("b").unwrap_err().body,
                    "invalid request: Invalid value given for 'b': expected 16-bit integer"
                );
            },
        );
        with(
            json!({"one": "h", "many": ["a", "b"], "bad": ["a", 1], "ts": "12x"}),
            |p| {
                assert_eq!(p.str_array("one").unwrap(), Some(vec!["h".to_string()]));
                assert_eq!(p.str_array("many").unwrap().unwrap().len(), 2);
                assert_eq!(
                    p.str_array("bad").unwrap_err().body,
                    "invalid request: Invalid value given for 'bad': expected string array"
                );
                assert_eq!(
                    p.stringified_int("ts").unwrap_err().body,
                    "invalid request: Invalid value given for 'ts': \"12x\""
                );
            },
        );
    }

    #[test]
    fn pubkeys_and_tokens() {
        let hexpk = format!("05{}", "ab".repeat(32));
        assert!(parse_account_hex(&hexpk).is_some());
        assert!(parse_account_hex(&hexpk[2..]).is_none());
        assert!(parse_account_hex(&format!("05{}", "zz".repeat(32))).is_none());
        let tok = [3u8; 36];
        assert_eq!(parse_token(&b64(tok)), Some(tok));
        assert_eq!(parse_token(&hex::encode(tok)), Some(tok));
        assert_eq!(parse_token("abc"), None);
        assert_eq!(
            choose_pubkey(Some("a"), Some("b")).unwrap_err().body,
            "invalid request: Cannot specify both 'pubkey' and 'pubKey'"
        );
        assert_eq!(
            choose_pubkey(None, None).unwrap_err().body,
            "invalid request: Required field 'pubkey' missing"
        );
        assert_eq!(choose_pubkey(None, Some("b")).unwrap(), Some("b"));
    }
}
