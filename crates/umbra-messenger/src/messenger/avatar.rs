//! Our profile picture (`groups-config-attachments.md` §3.1): the file is encrypted like an
//! attachment but in the profile-picture domain, uploaded in one `POST /file` (what every
//! Session client can fetch), and then named — URL and key — in the synced user profile
//! (`p`/`q`) and in the `LokiProfile` + `profileKey` of our outgoing messages.

use std::path::Path;

use umbra_attachment_crypto::legacy::decrypt_profile_picture;
use umbra_attachment_crypto::{AttachmentKey, Domain, SizeLimit, decrypt_to_vec, encrypt};
use umbra_wire::FileUrl;
use zeroize::Zeroizing;

use super::files::{FileServer, FileServerError};
use super::upload::SINGLE_UPLOAD_MAX;
use super::{Messenger, MessengerError, ProfilePicture};

/// The largest picture file, bytes: its blob must fit one `POST /file` (a picture of this
/// size encrypts to 1 015 808 bytes, under the 1 MiB single-upload limit).
pub const MAX_PICTURE_SIZE: u64 = 1_000_000;

impl Messenger {
    /// Encrypts the picture at `path`, uploads it to `server` and makes it our profile
    /// picture (synced to our other devices, sent to contacts with our messages).
    ///
    /// Nothing changes when any step fails; running it again uploads the same bytes (the
    /// encryption is deterministic).
    pub async fn upload_profile_picture(
        &self,
        path: &Path,
        server: &FileServer,
    ) -> Result<ProfilePicture, MessengerError> {
        let meta = std::fs::metadata(path).map_err(MessengerError::io("reading", path))?;
        if !meta.is_file() {
            return Err(MessengerError::NotAFile(path.to_path_buf()));
        }
        if meta.len() == 0 || meta.len() > MAX_PICTURE_SIZE {
            return Err(MessengerError::FileTooLarge {
                path: path.to_path_buf(),
                size: meta.len(),
                max: MAX_PICTURE_SIZE,
            });
        }
        let data =
            Zeroizing::new(std::fs::read(path).map_err(MessengerError::io("reading", path))?);
        let seed = Zeroizing::new(*self.identity.seed());
        let (info, blob) = tokio::task::spawn_blocking(move || {
            let mut blob = Vec::new();
            encrypt(
                &seed,
                Domain::ProfilePicture,
                SizeLimit::Regular,
                &mut std::io::Cursor::new(&data[..]),
                &mut blob,
            )
            .map(|info| (info, blob))
        })
        .await
        .map_err(|_| MessengerError::Task("encrypting the profile picture"))?
        .map_err(|source| MessengerError::AttachmentCrypto {
            what: "encrypting the profile picture",
            source,
        })?;
        // The size check above keeps every picture within one request; this says so loudly
        // if the padding rule ever changes.
        if info.encrypted_size > SINGLE_UPLOAD_MAX {
            return Err(MessengerError::FileTooLarge {
                path: path.to_path_buf(),
                size: meta.len(),
                max: MAX_PICTURE_SIZE,
            });
        }
        let what = "uploading the profile picture (run the same command again)";
        let answer = server
            .post_file(blob)
            .await
            .map_err(|source| MessengerError::FileServer { what, source })?;
        if answer.id != info.file_id {
            return Err(MessengerError::FileServer {
                what,
                source: FileServerError::BadReply {
                    what: "an upload",
                    why: "the server names the file differently from its content",
                },
            });
        }
        let picture = ProfilePicture {
            url: FileUrl {
                base: server.url().to_owned(),
                file_id: info.file_id,
                server_pubkey: None,
                stream_format: true,
            }
            .to_url(),
            key: *info.key.as_bytes(),
        };
        self.set_profile_picture(Some(&picture))?;
        tracing::debug!(size = info.size, "profile picture uploaded");
        Ok(picture)
    }

    /// Downloads and decrypts a profile picture (a contact's, or ours from another device)
    /// from `server`, the network's attachment server: a picture named on any other server
    /// is refused, as attachments are (no request to a server the network did not name).
    pub async fn download_picture(
        &self,
        picture: &ProfilePicture,
        server: &FileServer,
    ) -> Result<Zeroizing<Vec<u8>>, MessengerError> {
        let what = "downloading a profile picture";
        let url = FileUrl::parse(&picture.url)
            .map_err(|e| MessengerError::DownloadRefused(format!("its URL is malformed: {e}")))?;
        if url.base != server.url() {
            return Err(MessengerError::ForeignFileServer(url.base));
        }
        // Every picture is one `POST /file` (MAX_PICTURE_SIZE): its first chunk is all of it.
        let blob = server
            .get_chunk(&url.file_id, 0)
            .await
            .map_err(|source| MessengerError::FileServer { what, source })?;
        let refused = |e: umbra_attachment_crypto::AttachmentError| {
            MessengerError::DownloadRefused(format!("the picture does not decrypt: {e}"))
        };
        if url.stream_format {
            let key = AttachmentKey::from_bytes(picture.key);
            decrypt_to_vec(&key, &blob)
                .map(Zeroizing::new)
                .map_err(refused)
        } else {
            decrypt_profile_picture(&picture.key, &blob).map_err(refused)
        }
    }
}
