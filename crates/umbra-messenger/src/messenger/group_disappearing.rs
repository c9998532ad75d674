//! Disappearing messages in groups (`messages.md` §5.1, groups v2): one group-wide timer,
//! after send, in the Info config (`E`, seconds) that only admins sign. Senders put it in
//! each message (`Content.expirationType/Timer`) and store the message for that long;
//! receivers delete the message that long after its sent time.

use umbra_groups::namespace;
use umbra_wire::{
    Content, GroupUpdateInfoChangeMessage, GroupUpdateMessage, group_update_info_change_message,
};

use super::groups::{Held, group_content};
use super::{Disappearing, MAX_TIMER_S, MIN_TIMER_S, Messenger, MessengerError};

/// What an admin signs for an info change: `"INFO_CHANGE" ‖ type ‖ timestamp`.
fn info_change_signed(kind: i32, timestamp_ms: u64) -> Vec<u8> {
    format!("INFO_CHANGE{kind}{timestamp_ms}").into_bytes()
}

/// When a message sent at `sent_ms` under `mode` disappears (only after-send applies to
/// groups: nobody tracks who read a group message).
pub(super) fn group_expiry(mode: Disappearing, sent_ms: u64) -> Option<u64> {
    match mode {
        Disappearing::AfterSend { seconds } => {
            Some(sent_ms.saturating_add(u64::from(seconds.min(MAX_TIMER_S)) * 1000))
        }
        Disappearing::Off | Disappearing::AfterRead { .. } => None,
    }
}

impl Messenger {
    /// The group's disappearing timer from its Info config (off before any is read).
    pub(super) fn group_disappearing(
        &self,
        conn: &rusqlite_cipher::Connection,
        h: &Held,
    ) -> Result<Disappearing, MessengerError> {
        let timer = self
            .info_config(conn, h)?
            .and_then(|info| info.expiry_timer())
            .and_then(|s| u32::try_from(s).ok())
            .filter(|s| *s > 0);
        Ok(
            timer.map_or(Disappearing::Off, |seconds| Disappearing::AfterSend {
                seconds: seconds.clamp(MIN_TIMER_S, MAX_TIMER_S),
            }),
        )
    }

    /// Sets the group's disappearing timer (admins): `None` turns it off. Everyone's later
    /// messages disappear that long after they were sent.
    ///
    /// # Errors
    /// [`MessengerError::InvalidTimer`] out of range, [`MessengerError::NotGroupAdmin`] without
    /// the group key, and the group's and network's errors.
    pub async fn set_group_disappearing(
        &self,
        group: &str,
        seconds: Option<u32>,
    ) -> Result<(), MessengerError> {
        let what = "setting disappearing messages in a group";
        if let Some(s) = seconds
            && !(MIN_TIMER_S..=MAX_TIMER_S).contains(&s)
        {
            return Err(MessengerError::InvalidTimer {
                min: MIN_TIMER_S,
                max: MAX_TIMER_S,
            });
        }
        let h = self.writable_group(group, what)?;
        let Some(admin) = &h.admin else {
            return Err(MessengerError::NotGroupAdmin(what));
        };
        let Some(mut info) = self.info_config(&self.db(), &h)? else {
            return Err(MessengerError::GroupNotActive {
                what,
                state: "without a key yet",
            });
        };
        info.set_expiry_timer(seconds.map(i64::from));
        self.push_group_config(&h, namespace::INFO, info.state_mut())
            .await?;
        let now = self.now();
        let kind = group_update_info_change_message::Type::DisappearingMessages as i32;
        let content = group_content(GroupUpdateMessage {
            info_change_message: Some(GroupUpdateInfoChangeMessage {
                r#type: kind,
                updated_name: None,
                updated_expiration: Some(seconds.unwrap_or(0)),
                admin_signature: admin
                    .sign(&info_change_signed(kind, now))
                    .to_bytes()
                    .to_vec(),
            }),
            ..GroupUpdateMessage::default()
        });
        self.send_group_content(&h, &content, now).await?;
        Ok(())
    }
}

/// Sets `content`'s expiration fields to the group's `mode`.
pub(super) fn stamp(content: &mut Content, mode: Disappearing) {
    if mode != Disappearing::Off {
        let (kind, timer) = mode.wire();
        content.expiration_type = Some(kind);
        content.expiration_timer = Some(timer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_after_send_timers_expire_group_messages() {
        assert_eq!(
            group_expiry(Disappearing::AfterSend { seconds: 60 }, 1_000),
            Some(61_000)
        );
        assert_eq!(group_expiry(Disappearing::Off, 1_000), None);
        assert_eq!(
            group_expiry(Disappearing::AfterRead { seconds: 60 }, 1_000),
            None
        );
        assert_eq!(info_change_signed(3, 17), b"INFO_CHANGE317");
    }
}
