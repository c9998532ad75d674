//! Profile pictures as the window shows them: a downloaded picture (PNG or JPEG) decoded
//! off the UI thread into a small square of RGBA pixels, and the initials shown when there
//! is none.

use std::io::Cursor;

/// The side of a decoded picture, pixels (the largest avatar is 36 points; twice that for
/// high-density screens).
pub(crate) const SIDE: u32 = 72;
/// The largest picture decoded, pixels per side (a 1 MB file can claim far more; the limit
/// keeps a hostile one from taking the memory).
const MAX_DECODED_SIDE: u32 = 4_096;

/// A decoded picture: `SIDE`×`SIDE` RGBA pixels, row by row.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Picture {
    pub(crate) side: usize,
    pub(crate) rgba: Vec<u8>,
}

impl std::fmt::Debug for Picture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Picture({0}x{0})", self.side)
    }
}

/// Decodes a PNG or JPEG and crops it to its centre square, scaled to [`SIDE`].
pub(crate) fn decode(bytes: &[u8]) -> Result<Picture, String> {
    let mut reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format!("reading the picture: {e}"))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_DECODED_SIDE);
    limits.max_image_height = Some(MAX_DECODED_SIDE);
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|e| format!("decoding the picture: {e}"))?;
    let (w, h) = (img.width(), img.height());
    let side = w.min(h);
    let square = img.crop_imm((w - side) / 2, (h - side) / 2, side, side);
    let small = square
        .resize_exact(SIDE, SIDE, image::imageops::FilterType::Triangle)
        .to_rgba8();
    Ok(Picture {
        side: SIDE as usize,
        rgba: small.into_raw(),
    })
}

/// One or two letters for a name: the first letters of its first two words ("Bob Smith" →
/// "BS"), or of a short ID ("05ab12…" → "05").
pub(crate) fn initials(name: &str) -> String {
    let words: Vec<&str> = name.split_whitespace().collect();
    let letters: String = match words.as_slice() {
        [] => "?".into(),
        [one] => one.chars().take(2).collect(),
        [first, second, ..] => first
            .chars()
            .take(1)
            .chain(second.chars().take(1))
            .collect(),
    };
    letters.to_uppercase()
}

/// A colour for a name's initials: the same name always gets the same one.
pub(crate) fn hue_of(key: &str) -> [u8; 3] {
    const COLOURS: [[u8; 3]; 8] = [
        [0x3b, 0x7d, 0xd8],
        [0x2e, 0xa0, 0x43],
        [0xc2, 0x4e, 0x3f],
        [0x8e, 0x5b, 0xc7],
        [0xd0, 0x8a, 0x1c],
        [0x1f, 0x9a, 0x9a],
        [0xc2, 0x3f, 0x86],
        [0x5f, 0x6b, 0x7a],
    ];
    let h = key.bytes().fold(17usize, |h, b| {
        h.wrapping_mul(31).wrapping_add(usize::from(b))
    });
    COLOURS[h % COLOURS.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbaImage::from_fn(w, h, |x, _| {
            if x < w / 2 {
                image::Rgba([255, 0, 0, 255])
            } else {
                image::Rgba([0, 0, 255, 255])
            }
        });
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn a_picture_is_cropped_to_a_square_and_scaled() {
        let p = decode(&png(200, 100)).unwrap();
        assert_eq!(p.side, SIDE as usize);
        assert_eq!(p.rgba.len(), (SIDE * SIDE * 4) as usize);
        // The centre square of a half-red, half-blue picture: red left, blue right.
        assert_eq!(&p.rgba[..4], &[255, 0, 0, 255]);
        let last = p.rgba.len() - 4;
        assert_eq!(&p.rgba[last..], &[0, 0, 255, 255]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode(b"not a picture").is_err());
        assert!(decode(&png(10, 10)[..20]).is_err());
    }

    #[test]
    fn initials_take_two_words_or_two_letters() {
        assert_eq!(initials("Bob Smith"), "BS");
        assert_eq!(initials("alice"), "AL");
        assert_eq!(initials("05ab12…9f3c"), "05");
        assert_eq!(initials("  "), "?");
        assert_eq!(hue_of("Bob"), hue_of("Bob"));
    }
}
