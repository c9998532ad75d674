//! UserProfile (namespace 2): the account's own display name, picture and Note-to-Self
//! settings.

use super::{
    MAX_NAME, ProfilePic, check_len, get_bytes, get_int, get_pic, put_int, put_pic, put_str,
};
use crate::ConfigError;

user_config!(
    /// The user profile config (`&` keys of §2.11 UserProfile).
    UserProfile,
    "UserProfile",
    2
);

impl UserProfile {
    /// `n`: the display name, if set.
    pub fn name(&self) -> Option<String> {
        get_bytes(self.state.data(), b"n").map(|b| String::from_utf8_lossy(b).into_owned())
    }

    /// Sets (or with `""` removes) the display name, at most 100 bytes.
    pub fn set_name(&mut self, name: &str) -> Result<(), ConfigError> {
        check_len("display name", name.as_bytes(), MAX_NAME)?;
        self.state.edit(|d| put_str(d, b"n", name.as_bytes()));
        Ok(())
    }

    /// The profile picture: `p`/`q`, or the re-uploaded `P`/`Q` when their time `T` is newer
    /// than the profile's `t` (newer clients, §2.11).
    pub fn picture(&self) -> Option<ProfilePic> {
        let d = self.state.data();
        let t = get_int(d, b"t").unwrap_or(0);
        match get_int(d, b"T") {
            Some(big_t) if big_t > t => get_pic(d, b"P", b"Q").or_else(|| get_pic(d, b"p", b"q")),
            _ => get_pic(d, b"p", b"q"),
        }
    }

    /// Sets or removes the profile picture (`p` and `q`, both or neither). `changed_at` (Unix
    /// seconds) is written as `t` so that newer clients prefer it to an older re-upload.
    pub fn set_picture(
        &mut self,
        pic: Option<&ProfilePic>,
        changed_at: i64,
    ) -> Result<(), ConfigError> {
        self.state.edit(|d| {
            put_pic(d, pic)?;
            if d.contains_key(b"T".as_slice()) || d.contains_key(b"t".as_slice()) {
                put_int(d, b"t", changed_at);
            }
            Ok(())
        })
    }

    /// `+`: Note-to-Self priority (−1 hidden, 0 default, > 0 pinned).
    pub fn nts_priority(&self) -> i64 {
        get_int(self.state.data(), b"+").unwrap_or(0)
    }

    /// Sets the Note-to-Self priority.
    pub fn set_nts_priority(&mut self, priority: i64) {
        self.state.edit(|d| put_int(d, b"+", priority));
    }

    /// `e`: the Note-to-Self disappearing timer in seconds (0: off).
    pub fn nts_expiry(&self) -> i64 {
        get_int(self.state.data(), b"e").unwrap_or(0)
    }

    /// Sets the Note-to-Self disappearing timer in seconds (0: off).
    pub fn set_nts_expiry(&mut self, seconds: i64) {
        self.state.edit(|d| put_int(d, b"e", seconds.max(0)));
    }

    /// `M`: community-DM requests: `Some(true)` on, `Some(false)` off, `None` the default.
    pub fn blinded_msgreqs(&self) -> Option<bool> {
        get_int(self.state.data(), b"M").map(|n| n != 0)
    }

    /// Sets community-DM requests (`None`: back to the default).
    pub fn set_blinded_msgreqs(&mut self, on: Option<bool>) {
        self.state.edit(|d| match on {
            Some(v) => {
                d.insert(b"M".to_vec(), crate::Value::from(i64::from(v)));
            }
            None => {
                d.remove(b"M".as_slice());
            }
        });
    }
}
