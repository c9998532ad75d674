//! Typed values out of SQLite columns: the account and message-hash columns hold the wire forms
//! (33 bytes, 43 characters), checked again when read so that a damaged row is an error rather
//! than a value of the wrong shape.

use rusqlite::types::Type;

use crate::types::{AccountId, MessageHash};

/// The bytes an account is stored as.
pub(crate) fn owner_bytes(o: &AccountId) -> &[u8] {
    &o.as_bytes()[..]
}

/// The account stored in a BLOB column.
pub(crate) fn owner_from(v: Vec<u8>) -> rusqlite::Result<AccountId> {
    AccountId::try_from(v.as_slice())
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, Type::Blob, Box::new(e)))
}

/// The message hash stored in a TEXT column.
pub(crate) fn hash_from(v: String) -> rusqlite::Result<MessageHash> {
    v.parse()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, Type::Text, Box::new(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_columns_are_errors() {
        assert!(owner_from(vec![5; 32]).is_err());
        assert!(hash_from("A".repeat(42)).is_err());
        let h = hash_from("A".repeat(43)).unwrap();
        assert_eq!(h.as_str(), "A".repeat(43));
    }
}
