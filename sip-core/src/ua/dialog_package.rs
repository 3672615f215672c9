//! The user agent as notifier of its own calls in the `dialog` event package (RFC 4235):
//! the busy lamp another phone or an operator console shows for this user.

use std::time::Instant;

use bytes::Bytes;

use super::{UaError, UserAgent};
use crate::session::SdpHandler;
use crate::subscription::SubState;
use crate::subscription::SubscriptionHandle;
use crate::subscription::dialog_info::{self, DialogInfo};

impl<S: SdpHandler> UserAgent<S> {
    /// Our calls as a full dialog-info document (version 0): each call that is not over,
    /// and those that just ended as `terminated`.
    pub fn dialog_info(&self) -> DialogInfo {
        DialogInfo {
            version: 0,
            full: true,
            entity: self.config.aor.clone(),
            dialogs: self
                .calls
                .values()
                .map(|c| c.dialog_entry(&self.config.aor))
                .collect(),
        }
    }

    /// Accepts subscription `id`, a subscription to us for the `dialog` package: an
    /// `active` NOTIFY with our calls now, and a new one (the next version) whenever a
    /// call rings, is answered or ends, for as long as the subscription lasts.
    pub fn share_calls(&mut self, now: Instant, id: SubscriptionHandle) -> Result<(), UaError> {
        self.now = now;
        let s = self.live_subscription(id)?;
        if s.is_subscriber() || !s.package().eq_ignore_ascii_case("dialog") {
            return Err(UaError::InvalidState(
                "share_calls accepts a subscription to us for the dialog package",
            ));
        }
        self.call_watchers.insert(id, 0);
        self.notify_calls(now, id);
        Ok(())
    }

    /// A call was placed or came in, rang, was answered or ended: every subscription we
    /// share our calls with hears.
    pub(super) fn calls_changed(&mut self, now: Instant) {
        if self.call_watchers.is_empty() {
            return;
        }
        let subscriptions = &self.subscriptions;
        self.call_watchers
            .retain(|id, _| subscriptions.get(id).is_some_and(|s| !s.is_finished()));
        let watchers: Vec<SubscriptionHandle> = self.call_watchers.keys().copied().collect();
        for id in watchers {
            self.notify_calls(now, id);
        }
    }

    fn notify_calls(&mut self, now: Instant, id: SubscriptionHandle) {
        let mut info = self.dialog_info();
        let Some(version) = self.call_watchers.get_mut(&id) else {
            return;
        };
        info.version = *version;
        *version = version.wrapping_add(1);
        let body = Some((
            dialog_info::CONTENT_TYPE.to_string(),
            Bytes::from(info.to_xml()),
        ));
        self.with_subscription(now, id, |s, ctx| s.notify(ctx, SubState::Active, body));
    }
}
