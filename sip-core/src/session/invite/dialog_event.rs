//! A call as an entry of the `dialog` event package (RFC 4235): what a busy lamp field
//! shows of it.

use super::{Phase, Session};
use crate::message::{HeaderName, NameAddr};
use crate::subscription::dialog_info::{DialogEntry, Direction, EntryState, Participant};

impl<S> Session<S> {
    /// The call as a dialog-info entry, for the user `local` (our address-of-record).
    pub(crate) fn dialog_entry(&self, local: &str) -> DialogEntry {
        let early = self.dialog.is_some() || self.provisional;
        let state = match self.phase {
            _ if self.finished => EntryState::Terminated,
            Phase::Ending => EntryState::Terminated,
            Phase::Confirmed => EntryState::Confirmed,
            Phase::Ringing => EntryState::Early,
            Phase::Calling if self.dialog.is_some() => EntryState::Early,
            Phase::Calling if early => EntryState::Proceeding,
            Phase::Calling => EntryState::Trying,
        };
        let remote_tag = match (&self.dialog, &self.remote_key) {
            (Some(d), _) => Some(d.id().remote_tag.to_string()),
            (None, Some((_, tag))) => Some(tag.to_string()),
            (None, None) => None,
        };
        // The peer as it named itself; a caller without a 2xx yet has only its To.
        let named = if self.remote.0.is_empty() {
            self.invite()
                .and_then(|i| i.headers().get(HeaderName::To))
                .unwrap_or_default()
        } else {
            &self.remote.0
        };
        let remote = NameAddr::parse(named).ok().map(|n| Participant {
            identity: n.uri().to_string(),
            display: n.display_name().map(|d| d.into_owned()),
            target: self.dialog.as_ref().map(|d| d.remote_target().to_string()),
        });
        let mut e = DialogEntry::new(self.id.to_string(), state);
        e.call_id = Some(self.key.0.to_string());
        e.local_tag = Some(self.key.1.to_string());
        e.remote_tag = remote_tag.filter(|t| !t.is_empty());
        e.direction = Some(if self.caller {
            Direction::Initiator
        } else {
            Direction::Recipient
        });
        e.local = Some(Participant {
            identity: local.to_string(),
            ..Participant::default()
        });
        e.remote = remote;
        e
    }
}
