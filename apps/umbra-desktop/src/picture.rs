//! Pictures as the window shows them: a profile picture (PNG or JPEG) decoded off the UI
//! thread into a small square of RGBA pixels, the initials shown when there is none, and
//! the thumbnails of image attachments.

use std::io::Cursor;

/// The side of a decoded picture, pixels (the largest avatar is 36 points; twice that for
/// high-density screens).
pub(crate) const SIDE: u32 = 72;
/// The largest picture decoded, pixels per side (a 1 MB file can claim far more; the limit
/// keeps a hostile one from taking the memory).
const MAX_DECODED_SIDE: u32 = 4_096;

/// The largest thumbnail, pixels per side (shown at up to half of it on a high-density
/// screen).
pub(crate) const THUMBNAIL_SIDE: u32 = 320;
/// The largest image file decoded for a thumbnail, bytes: a bigger one is shown as a file.
pub(crate) const MAX_THUMBNAIL_SOURCE: u64 = 64 * 1024 * 1024;
/// The most memory the decoder may take for one image (an 8192×8192 RGBA picture is 256 MiB:
/// a small file claiming to be larger is refused rather than allowed to take the memory).
const MAX_DECODE_ALLOC: u64 = 256 * 1024 * 1024;

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

/// A downscaled image attachment: `size` = [width, height] pixels, RGBA, row by row.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Thumbnail {
    pub(crate) size: [usize; 2],
    pub(crate) rgba: Vec<u8>,
}

impl std::fmt::Debug for Thumbnail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Thumbnail({}x{})", self.size[0], self.size[1])
    }
}

/// Decodes a PNG or JPEG with the decoder's dimensions capped at `max_side` and its memory
/// at [`MAX_DECODE_ALLOC`].
fn decode_limited(bytes: &[u8], max_side: u32) -> Result<image::DynamicImage, String> {
    let mut reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format!("reading the picture: {e}"))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(max_side);
    limits.max_image_height = Some(max_side);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    reader.limits(limits);
    reader
        .decode()
        .map_err(|e| format!("decoding the picture: {e}"))
}

/// Reads the image file at `path` and scales it to fit [`THUMBNAIL_SIDE`] (kept as it is
/// when smaller). Slow on big images: run it off the UI thread.
pub(crate) fn thumbnail(path: &std::path::Path) -> Result<Thumbnail, String> {
    let len = std::fs::metadata(path)
        .map_err(|e| format!("reading {}: {e}", path.display()))?
        .len();
    if len > MAX_THUMBNAIL_SOURCE {
        return Err("too large to preview".into());
    }
    let bytes = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let img = decode_limited(&bytes, MAX_THUMBNAIL_DECODED_SIDE)?;
    let small = if img.width() > THUMBNAIL_SIDE || img.height() > THUMBNAIL_SIDE {
        img.thumbnail(THUMBNAIL_SIDE, THUMBNAIL_SIDE)
    } else {
        img
    }
    .to_rgba8();
    Ok(Thumbnail {
        size: [small.width() as usize, small.height() as usize],
        rgba: small.into_raw(),
    })
}

/// The largest image decoded for a thumbnail, pixels per side.
const MAX_THUMBNAIL_DECODED_SIDE: u32 = 8_192;

/// Decodes a PNG or JPEG and crops it to its centre square, scaled to [`SIDE`].
pub(crate) fn decode(bytes: &[u8]) -> Result<Picture, String> {
    let img = decode_limited(bytes, MAX_DECODED_SIDE)?;
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
    fn a_thumbnail_fits_its_box_and_a_bogus_image_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wide.png");
        std::fs::write(&path, png(1000, 500)).unwrap();
        let t = thumbnail(&path).unwrap();
        assert_eq!(
            t.size,
            [THUMBNAIL_SIDE as usize, THUMBNAIL_SIDE as usize / 2]
        );
        assert_eq!(t.rgba.len(), t.size[0] * t.size[1] * 4);
        // A PNG header claiming 100 000 × 100 000 pixels: refused before any pixel memory.
        let mut bogus = png(10, 10);
        bogus[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bogus[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        std::fs::write(&path, bogus).unwrap();
        assert!(thumbnail(&path).is_err());
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
