//! Recovery phrase: 12 BIP-39 English words for the 16 entropy bytes of an account seed.

use zeroize::Zeroizing;

use crate::CryptoError;

/// The 12-word phrase for 16 bytes of entropy.
pub fn to_phrase(entropy: &[u8; 16]) -> Result<Zeroizing<String>, CryptoError> {
    let m =
        bip39::Mnemonic::from_entropy(entropy).map_err(|e| CryptoError::Mnemonic(e.to_string()))?;
    Ok(Zeroizing::new(m.to_string()))
}

/// The 16 entropy bytes of a 12-word phrase. Words are matched case-insensitively and extra
/// whitespace is ignored; a wrong word count, unknown words and bad checksums are refused with
/// a one-line reason that gives word positions, never the words themselves (error messages
/// may end up in logs; the phrase is the account's secret).
pub fn from_phrase(phrase: &str) -> Result<Zeroizing<[u8; 16]>, CryptoError> {
    let words: Zeroizing<Vec<String>> =
        Zeroizing::new(phrase.split_whitespace().map(str::to_lowercase).collect());
    let count = words.len();
    let normalised = Zeroizing::new(words.join(" "));
    if count != 12 {
        // Session's own phrases have 13 words (a different word list): say so, since that is
        // what a Session user is most likely to paste.
        let hint = if count == 13 {
            " (13-word Session recovery phrases are not supported)"
        } else {
            ""
        };
        return Err(CryptoError::Mnemonic(format!(
            "expected 12 words, got {count}{hint}"
        )));
    }
    let m = bip39::Mnemonic::parse_in_normalized(bip39::Language::English, &normalised).map_err(
        |e| match e {
            bip39::Error::UnknownWord(i) => {
                CryptoError::Mnemonic(format!("word {} is not in the BIP-39 English list", i + 1))
            }
            bip39::Error::InvalidChecksum => CryptoError::Mnemonic(
                "the checksum does not match: a word is wrong or out of order".into(),
            ),
            other => CryptoError::Mnemonic(other.to_string()),
        },
    )?;
    let (bytes, len) = m.to_entropy_array();
    let bytes = Zeroizing::new(bytes);
    if len != 16 {
        return Err(CryptoError::Mnemonic(format!(
            "expected 16 bytes of entropy, got {len}"
        )));
    }
    let mut out = Zeroizing::new([0u8; 16]);
    out.copy_from_slice(&bytes[..16]);
    Ok(out)
}
