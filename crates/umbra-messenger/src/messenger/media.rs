//! What a file is, for its attachment pointer: a MIME type from its name, and the pixel size
//! of PNG, GIF and JPEG images from their first bytes (`AttachmentPointer.width`/`height`,
//! `messages.md` §3.9). Best effort: unknown files get `application/octet-stream` and no
//! dimensions.

/// How many bytes of a file are read to find its dimensions (JPEG headers with large EXIF
/// blocks may need more: then the dimensions are simply unknown).
pub(crate) const HEAD_LEN: usize = 64 * 1024;

/// The MIME type of a file by its extension.
pub(crate) fn content_type(file_name: &str) -> &'static str {
    let ext = file_name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "mp4" => "video/mp4",
        "mov" => "video/quicktime",
        "webm" => "video/webm",
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "ogg" | "oga" => "audio/ogg",
        "aac" => "audio/aac",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "txt" => "text/plain",
        _ => "application/octet-stream",
    }
}

/// `(width, height)` of a PNG, GIF or JPEG image from its first bytes.
pub(crate) fn dimensions(head: &[u8]) -> Option<(u32, u32)> {
    png(head)
        .or_else(|| gif(head))
        .or_else(|| jpeg(head))
        .filter(|(w, h)| *w > 0 && *h > 0)
}

fn be16(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 2)?;
    Some(u32::from(u16::from_be_bytes([s[0], s[1]])))
}

fn png(b: &[u8]) -> Option<(u32, u32)> {
    // Signature, then the IHDR chunk: length(4) "IHDR" width(4) height(4).
    if b.get(..8)? != b"\x89PNG\r\n\x1a\n" || b.get(12..16)? != b"IHDR" {
        return None;
    }
    let w = u32::from_be_bytes(b.get(16..20)?.try_into().ok()?);
    let h = u32::from_be_bytes(b.get(20..24)?.try_into().ok()?);
    Some((w, h))
}

fn gif(b: &[u8]) -> Option<(u32, u32)> {
    let sig = b.get(..6)?;
    if sig != b"GIF87a" && sig != b"GIF89a" {
        return None;
    }
    let w = u32::from(u16::from_le_bytes(b.get(6..8)?.try_into().ok()?));
    let h = u32::from(u16::from_le_bytes(b.get(8..10)?.try_into().ok()?));
    Some((w, h))
}

fn jpeg(b: &[u8]) -> Option<(u32, u32)> {
    if b.get(..2)? != [0xff, 0xd8] {
        return None;
    }
    // Walk the marker segments until a start-of-frame, which holds the size.
    let mut at = 2;
    loop {
        while *b.get(at)? != 0xff {
            at += 1;
        }
        while *b.get(at)? == 0xff {
            at += 1;
        }
        let marker = *b.get(at)?;
        at += 1;
        match marker {
            // Markers without a length.
            0x01 | 0xd0..=0xd7 => continue,
            0xd9 | 0xda => return None,
            _ => {}
        }
        let len = usize::try_from(be16(b, at)?).ok()?;
        let sof = matches!(marker, 0xc0..=0xcf) && !matches!(marker, 0xc4 | 0xc8 | 0xcc);
        if sof {
            // length(2) precision(1) height(2) width(2)
            let h = be16(b, at + 3)?;
            let w = be16(b, at + 5)?;
            return Some((w, h));
        }
        if len < 2 {
            return None;
        }
        at += len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_follow_the_extension() {
        assert_eq!(content_type("a.JPG"), "image/jpeg");
        assert_eq!(content_type("notes.txt"), "text/plain");
        assert_eq!(content_type("blob"), "application/octet-stream");
    }

    #[test]
    fn png_gif_and_jpeg_sizes_are_read() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&640u32.to_be_bytes());
        png.extend_from_slice(&480u32.to_be_bytes());
        assert_eq!(dimensions(&png), Some((640, 480)));

        let mut gif = b"GIF89a".to_vec();
        gif.extend_from_slice(&320u16.to_le_bytes());
        gif.extend_from_slice(&200u16.to_le_bytes());
        assert_eq!(dimensions(&gif), Some((320, 200)));

        // SOI, an APP0 segment of 16 bytes, then SOF0 with height 100, width 150.
        let mut jpeg = vec![0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10];
        jpeg.extend_from_slice(&[0; 14]);
        jpeg.extend_from_slice(&[0xff, 0xc0, 0x00, 0x11, 0x08, 0x00, 100, 0x00, 150]);
        assert_eq!(dimensions(&jpeg), Some((150, 100)));

        assert_eq!(dimensions(b"plain text"), None);
        assert_eq!(
            dimensions(&jpeg[..12]),
            None,
            "a cut header is unknown, not a panic"
        );
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = dimensions(&bytes);
            let mut j = vec![0xff, 0xd8];
            j.extend_from_slice(&bytes);
            let _ = dimensions(&j);
        }
    }
}
