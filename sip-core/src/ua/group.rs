//! Serving groups ([`crate::group`]): memberships are `conference` subscriptions to
//! `group-…` users, kept in the [`Roster`](crate::group::Roster); every change sends each
//! member the group's full document.

use std::time::Instant;

use super::{Event, UserAgent};
use crate::group::{GroupId, Joined};
use crate::message::{HeaderName, NameAddr, Request, Uri};
use crate::session::SdpHandler;
use crate::subscription::conference_info::{CONTENT_TYPE, PACKAGE};
use crate::subscription::{SubState, SubscriptionHandle};

/// A SUBSCRIBE that asks to join a group we serve.
pub(super) struct Membership {
    pub(super) group: GroupId,
    /// The subscriber's URI (its From, without parameters).
    pub(super) uri: String,
    pub(super) display: Option<String>,
}

impl<S: SdpHandler> UserAgent<S> {
    /// The group `req` (a SUBSCRIBE for `package`) joins, when we serve groups.
    pub(super) fn group_membership(&self, req: &Request, package: &str) -> Option<Membership> {
        if !self.config.serve_groups || !package.eq_ignore_ascii_case(PACKAGE) {
            return None;
        }
        // The To names the group: a proxy has put the focus's Contact in the
        // Request-URI.
        let group = GroupId::from_uri(req.headers().get(HeaderName::To)?)?;
        let from = NameAddr::parse(req.headers().get(HeaderName::From)?).ok()?;
        let uri = from.uri();
        let uri = format!("{}:{}@{}", uri.scheme().as_str(), uri.user()?, uri.host()?);
        Some(Membership {
            group,
            uri,
            display: from.display_name().map(|d| d.into_owned()),
        })
    }

    /// A member joined (its subscription accepted): everyone gets the new document, and
    /// the member's older subscription, if any, ends.
    pub(super) fn group_joined(&mut self, now: Instant, id: SubscriptionHandle, joined: Joined) {
        if !self.subscriptions.contains_key(&id) {
            // A fetch (Expires: 0) is over already: it joins nothing.
            let rest = self.roster.leave(id);
            self.group_notify(now, rest);
            return;
        }
        if let Some(old) = joined.replaced {
            let _ = self.terminate_subscription(now, old, "deactivated");
        }
        self.group_notify(now, joined.notify);
    }

    /// Takes the events of group memberships: a membership's end is a member leaving.
    /// True when the event was the group's own.
    pub(super) fn group_event(&mut self, now: Instant, e: &Event) -> bool {
        match e {
            Event::SubscriptionRequested { subscription, .. } => {
                self.roster.contains(*subscription)
            }
            Event::SubscriptionEnded { subscription, .. }
                if self.roster.contains(*subscription) =>
            {
                let rest = self.roster.leave(*subscription);
                self.group_notify(now, rest);
                true
            }
            _ => false,
        }
    }

    fn group_notify(&mut self, now: Instant, subs: Vec<SubscriptionHandle>) {
        let Some(domain) = Uri::parse(&self.config.aor)
            .ok()
            .and_then(|u| u.host().map(|h| h.to_string()))
        else {
            return;
        };
        for sub in subs {
            let Some(body) = self.roster.document(sub, &domain) else {
                continue;
            };
            let sent = self.notify(
                now,
                sub,
                SubState::Active,
                Some((CONTENT_TYPE, body.as_bytes())),
            );
            if let Err(error) = sent {
                tracing::debug!(%sub, %error, "group: notify");
            }
        }
    }
}
