//! Recovery phrases: standard BIP-39 vectors (12 words, English) and the errors a user sees.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use umbra_crypto::{CryptoError, Identity, mnemonic};

/// The 128-bit vectors of the BIP-39 reference test set (English list).
const VECTORS: [([u8; 16], &str); 4] = [
    (
        [0x00; 16],
        "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
    ),
    (
        [0x7f; 16],
        "legal winner thank year wave sausage worth useful legal winner thank yellow",
    ),
    (
        [0x80; 16],
        "letter advice cage absurd amount doctor acoustic avoid letter advice cage above",
    ),
    (
        [0xff; 16],
        "zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo wrong",
    ),
];

#[test]
fn bip39_reference_vectors() {
    for (entropy, phrase) in VECTORS {
        assert_eq!(&*mnemonic::to_phrase(&entropy).unwrap(), phrase);
        assert_eq!(*mnemonic::from_phrase(phrase).unwrap(), entropy, "{phrase}");
    }
}

#[test]
fn all_zero_phrase_restores_the_all_zero_entropy_identity() {
    let entropy = mnemonic::from_phrase(VECTORS[0].1).unwrap();
    let id = Identity::from_entropy16(&entropy);
    assert_eq!(id.seed(), &[0u8; 32]);
    assert_eq!(id.entropy16(), Some([0u8; 16]));
}

/// The error text of a refused phrase, checked to be a single line.
fn error_of(phrase: &str) -> String {
    let err = mnemonic::from_phrase(phrase).unwrap_err();
    assert!(matches!(err, CryptoError::Mnemonic(_)), "{err:?}");
    let text = err.to_string();
    assert!(!text.contains('\n'), "more than one line: {text:?}");
    assert!(text.starts_with("invalid recovery phrase: "), "{text}");
    text
}

#[test]
fn unknown_word_is_named_by_position() {
    let phrase = VECTORS[1].1.replace("wave", "wavy");
    let text = error_of(&phrase);
    assert_eq!(
        text,
        "invalid recovery phrase: word 5 is not in the BIP-39 English list"
    );
    // The phrase is a secret: the error never repeats a word of it.
    assert!(!text.contains("wavy") && !text.contains("legal"), "{text}");
    let first = error_of(&format!("notaword {}", &VECTORS[0].1["abandon ".len()..]));
    assert_eq!(
        first,
        "invalid recovery phrase: word 1 is not in the BIP-39 English list"
    );
}

#[test]
fn bad_checksum_is_explained() {
    // Twelve valid words whose last one does not carry the checksum of the first eleven.
    let text = error_of(&["abandon"; 12].join(" "));
    assert_eq!(
        text,
        "invalid recovery phrase: the checksum does not match: a word is wrong or out of order"
    );
    // Two words swapped.
    let swapped = "winner legal thank year wave sausage worth useful legal winner thank yellow";
    assert_eq!(error_of(swapped), text);
}

#[test]
fn wrong_word_count_is_explained() {
    let words: Vec<&str> = VECTORS[2].1.split(' ').collect();
    assert_eq!(
        error_of(&words[..11].join(" ")),
        "invalid recovery phrase: expected 12 words, got 11"
    );
    assert_eq!(
        error_of(""),
        "invalid recovery phrase: expected 12 words, got 0"
    );
    assert_eq!(
        error_of("   \n\t "),
        "invalid recovery phrase: expected 12 words, got 0"
    );
    // What a Session user would paste.
    assert_eq!(
        error_of(&format!("{} abandon", VECTORS[0].1)),
        "invalid recovery phrase: expected 12 words, got 13 (13-word Session recovery phrases are not supported)"
    );
    // A valid 24-word BIP-39 phrase (256-bit entropy) is still not an account phrase.
    let twenty_four = format!("{} art", ["abandon"; 23].join(" "));
    assert_eq!(
        error_of(&twenty_four),
        "invalid recovery phrase: expected 12 words, got 24"
    );
}
