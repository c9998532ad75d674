//! Diffs (`groups-config-attachments.md` §2.4): what one update changed, and how the merge
//! replays them (§2.7 step d).

use std::collections::BTreeMap;

use crate::ConfigError;
use crate::bt;
use crate::data::{Dict, Set, Value, encode_set, set_from_bt};

/// One entry of a diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Diff {
    /// `""`: the scalar was assigned (added or changed).
    Assigned,
    /// `"-"`: the scalar was removed.
    Removed,
    /// Changes inside a sub-dict.
    Dict(DiffDict),
    /// `[[added…], [removed…]]`: set changes.
    Set {
        /// Elements added.
        added: Set,
        /// Elements removed.
        removed: Set,
    },
}

/// A diff of a dict: key → what changed under it.
pub type DiffDict = BTreeMap<Vec<u8>, Diff>;

/// What changed from `old` to `new` (`diff_impl`): unchanged values are omitted, a removed dict
/// is the removal of all its contents, a removed set `[[], [all]]`, a new dict or set lists all
/// its contents as added, and a value of another kind is a new value.
pub fn diff(old: &Dict, new: &Dict) -> DiffDict {
    let mut out = DiffDict::new();
    for (k, o) in old {
        if !new.contains_key(k) {
            out.insert(k.clone(), removed(o));
        }
    }
    for (k, n) in new {
        let d = match (old.get(k), n) {
            (None, n) => Some(added(n)),
            (Some(Value::Scalar(a)), Value::Scalar(b)) => (a != b).then_some(Diff::Assigned),
            (Some(Value::Dict(a)), Value::Dict(b)) => {
                let d = diff(a, b);
                (!d.is_empty()).then_some(Diff::Dict(d))
            }
            (Some(Value::Set(a)), Value::Set(b)) => {
                let added: Set = b.difference(a).cloned().collect();
                let removed: Set = a.difference(b).cloned().collect();
                (!added.is_empty() || !removed.is_empty()).then_some(Diff::Set { added, removed })
            }
            (Some(_), n) => Some(added(n)),
        };
        if let Some(d) = d {
            out.insert(k.clone(), d);
        }
    }
    out
}

fn added(v: &Value) -> Diff {
    match v {
        Value::Scalar(_) => Diff::Assigned,
        Value::Set(s) => Diff::Set {
            added: s.clone(),
            removed: Set::new(),
        },
        Value::Dict(d) => Diff::Dict(d.iter().map(|(k, v)| (k.clone(), added(v))).collect()),
    }
}

fn removed(v: &Value) -> Diff {
    match v {
        Value::Scalar(_) => Diff::Removed,
        Value::Set(s) => Diff::Set {
            added: Set::new(),
            removed: s.clone(),
        },
        Value::Dict(d) => Diff::Dict(d.iter().map(|(k, v)| (k.clone(), removed(v))).collect()),
    }
}

/// Replays `diff` onto `target`, taking values from `source`, the data of the message that
/// supplied the diff (§2.7 d): a key the source lacks, or holds as another kind than the diff
/// implies, is deleted. Does not prune.
pub fn replay(target: &mut Dict, diff: &DiffDict, source: &Dict) {
    for (k, d) in diff {
        match (d, source.get(k)) {
            (Diff::Removed, _) => {
                target.remove(k);
            }
            (Diff::Assigned, Some(Value::Scalar(s))) => {
                target.insert(k.clone(), Value::Scalar(s.clone()));
            }
            (Diff::Dict(sub), Some(Value::Dict(src))) => {
                let entry = target
                    .entry(k.clone())
                    .or_insert_with(|| Value::Dict(Dict::new()));
                if !matches!(entry, Value::Dict(_)) {
                    *entry = Value::Dict(Dict::new());
                }
                if let Value::Dict(t) = entry {
                    replay(t, sub, src);
                }
            }
            (Diff::Set { added, removed }, Some(Value::Set(_))) => {
                let entry = target
                    .entry(k.clone())
                    .or_insert_with(|| Value::Set(Set::new()));
                if !matches!(entry, Value::Set(_)) {
                    *entry = Value::Set(Set::new());
                }
                if let Value::Set(t) = entry {
                    t.extend(added.iter().cloned());
                    t.retain(|e| !removed.contains(e));
                }
            }
            _ => {
                target.remove(k);
            }
        }
    }
}

/// A decoded diff dict (§2.4).
pub(crate) fn diff_from_bt(items: &BTreeMap<Vec<u8>, bt::Value>) -> Result<DiffDict, ConfigError> {
    let mut out = DiffDict::new();
    for (k, v) in items {
        let d = match v {
            bt::Value::Bytes(b) if b.is_empty() => Diff::Assigned,
            bt::Value::Bytes(b) if b == b"-" => Diff::Removed,
            bt::Value::Dict(d) => Diff::Dict(diff_from_bt(d)?),
            bt::Value::List(l) => match l.as_slice() {
                [bt::Value::List(a), bt::Value::List(r)] => Diff::Set {
                    added: set_from_bt(a)?,
                    removed: set_from_bt(r)?,
                },
                _ => return Err(ConfigError::Message("set diff is not [[added], [removed]]")),
            },
            _ => {
                return Err(ConfigError::Message(
                    "diff value is not \"\", \"-\", dict or set",
                ));
            }
        };
        out.insert(k.clone(), d);
    }
    Ok(out)
}

pub(crate) fn encode_diff(diff: &DiffDict, out: &mut Vec<u8>) {
    out.push(b'd');
    for (k, d) in diff {
        bt::put_bytes(out, k);
        match d {
            Diff::Assigned => bt::put_bytes(out, b""),
            Diff::Removed => bt::put_bytes(out, b"-"),
            Diff::Dict(sub) => encode_diff(sub, out),
            Diff::Set { added, removed } => {
                out.push(b'l');
                encode_set(added, out);
                encode_set(removed, out);
                out.push(b'e');
            }
        }
    }
    out.push(b'e');
}
