//! Typed access to fields of the data dict, shared by every typed config view (the user
//! configs here, the group configs of umbra-groups): absent or zero values are removed rather
//! than written, so the dicts stay minimal as Session writes them (§2.3).

use crate::ConfigError;
use crate::data::{Dict, Scalar, Value};
use crate::user::ProfilePic;

/// Longest name (display name, nickname, group or member name), bytes.
pub const MAX_NAME: usize = 100;
/// Longest picture URL, bytes.
pub const MAX_URL: usize = 223;

/// Refuses a value over `max` bytes ([`ConfigError::FieldTooLong`] naming `field`).
pub fn check_len(field: &'static str, value: &[u8], max: usize) -> Result<(), ConfigError> {
    if value.len() > max {
        return Err(ConfigError::FieldTooLong {
            field,
            len: value.len(),
            max,
        });
    }
    Ok(())
}

/// The byte string at `k`, if that is what it holds.
pub fn get_bytes<'a>(d: &'a Dict, k: &[u8]) -> Option<&'a [u8]> {
    match d.get(k) {
        Some(Value::Scalar(Scalar::Bytes(b))) => Some(b),
        _ => None,
    }
}

/// The string at `k` (lossy UTF-8), empty when absent.
pub fn get_string(d: &Dict, k: &[u8]) -> String {
    get_bytes(d, k)
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default()
}

/// The integer at `k`, if that is what it holds.
pub fn get_int(d: &Dict, k: &[u8]) -> Option<i64> {
    match d.get(k) {
        Some(Value::Scalar(Scalar::Int(n))) => Some(*n),
        _ => None,
    }
}

/// Whether the integer at `k` is present and not zero.
pub fn get_bool(d: &Dict, k: &[u8]) -> bool {
    get_int(d, k).is_some_and(|n| n != 0)
}

/// The sub-dict at `k`, if that is what it holds.
pub fn get_dict<'a>(d: &'a Dict, k: &[u8]) -> Option<&'a Dict> {
    match d.get(k) {
        Some(Value::Dict(sub)) => Some(sub),
        _ => None,
    }
}

/// Runs `f` on the sub-dict at `k` (created, or replacing a value of another kind, if needed).
/// An empty result is pruned by [`ConfigState::edit`](crate::ConfigState::edit).
pub fn with_dict<R>(d: &mut Dict, k: &[u8], f: impl FnOnce(&mut Dict) -> R) -> R {
    let mut sub = match d.remove(k) {
        Some(Value::Dict(sub)) => sub,
        _ => Dict::new(),
    };
    let r = f(&mut sub);
    d.insert(k.to_vec(), Value::Dict(sub));
    r
}

/// Sets a string, or removes it when empty.
pub fn put_str(d: &mut Dict, k: &[u8], v: &[u8]) {
    if v.is_empty() {
        d.remove(k);
    } else {
        d.insert(k.to_vec(), Value::from(v));
    }
}

/// Sets an integer, or removes it when zero.
pub fn put_int(d: &mut Dict, k: &[u8], v: i64) {
    if v == 0 {
        d.remove(k);
    } else {
        d.insert(k.to_vec(), Value::from(v));
    }
}

/// Booleans are `1` or absent (§2.3).
pub fn put_bool(d: &mut Dict, k: &[u8], v: bool) {
    put_int(d, k, i64::from(v));
}

/// The picture whose URL is at `url` and key at `key`: both present, the URL non-empty and
/// the key 32 bytes.
pub fn get_pic(d: &Dict, url: &[u8], key: &[u8]) -> Option<ProfilePic> {
    let u = get_bytes(d, url)?;
    let k: [u8; 32] = get_bytes(d, key)?.try_into().ok()?;
    if u.is_empty() {
        return None;
    }
    Some(ProfilePic {
        url: String::from_utf8_lossy(u).into_owned(),
        key: k,
    })
}

/// Sets `p` and `q` to the picture (URL ≤ [`MAX_URL`] bytes), or removes both.
pub fn put_pic(d: &mut Dict, pic: Option<&ProfilePic>) -> Result<(), ConfigError> {
    match pic {
        Some(p) if !p.url.is_empty() => {
            check_len("profile picture URL", p.url.as_bytes(), MAX_URL)?;
            d.insert(b"p".to_vec(), Value::from(p.url.as_str()));
            d.insert(b"q".to_vec(), Value::from(p.key.as_slice()));
        }
        _ => {
            d.remove(b"p".as_slice());
            d.remove(b"q".as_slice());
        }
    }
    Ok(())
}
