//! Redirection (RFC 3261 §8.1.3.4): a 3xx to our INVITE names where the callee is; we try
//! those Contacts in q order (the highest first, ties in their order), each with a new
//! INVITE of the same call (Call-ID, From tag, offer), until one answers or
//! [`MAX_REDIRECTS`] were tried. A target that fails lets the next one go. Off with
//! [`UaConfig::follow_redirects`]; the call then ends [`EndCause::Redirected`] with the
//! 3xx's status.
//!
//! [`UaConfig::follow_redirects`]: crate::ua::UaConfig::follow_redirects
//! [`EndCause::Redirected`]: crate::session::EndCause::Redirected

use std::collections::VecDeque;

use super::{Ctx, Phase, Session};
use crate::message::{Contact, HeaderName, Response, Scheme};
use crate::session::SdpHandler;

/// How many redirect targets one call tries at most: a loop of 3xx ends here.
pub(super) const MAX_REDIRECTS: usize = 5;

impl<S: SdpHandler> Session<S> {
    /// A final failure to our INVITE while calling: learns a 3xx's targets and sends the
    /// next one; false when none is left (the call ends with this response).
    pub(super) fn redirect(&mut self, ctx: &mut Ctx<'_>, resp: &Response) -> bool {
        if self.phase != Phase::Calling || !ctx.config.follow_redirects {
            return false;
        }
        if resp.status().code() / 100 == 3 {
            let mut found: Vec<(u16, String)> = resp
                .headers()
                .get_all(HeaderName::Contact)
                .filter_map(|v| Contact::parse(v).ok())
                .flat_map(|c| c.iter().collect::<Vec<_>>())
                .filter(|a| matches!(a.uri().scheme(), Scheme::Sip | Scheme::Sips | Scheme::Tel))
                .map(|a| (a.q().unwrap_or(1000), a.uri().to_string()))
                .collect();
            // Highest q first; a stable sort keeps the order of equals.
            found.sort_by_key(|(q, _)| std::cmp::Reverse(*q));
            let r = self.redirects.get_or_insert_default();
            for (_, uri) in found {
                if !r.tried.contains(&uri) && !r.targets.contains(&uri) {
                    r.targets.push_back(uri);
                }
            }
        }
        let Some(r) = self.redirects.as_mut() else {
            return false;
        };
        if r.tried.len() >= MAX_REDIRECTS {
            return false;
        }
        let Some(target) = r.targets.pop_front() else {
            return false;
        };
        r.tried.push(target.clone());
        tracing::debug!(target: "sansip::call", %target, "following a redirect");
        self.dialog = None;
        self.pracks.restart();
        self.invite_again(ctx, |req| req.set_uri(&target));
        true
    }
}

/// A caller's redirect targets still to try, and those tried.
#[derive(Debug, Default)]
pub(super) struct Redirects {
    targets: VecDeque<String>,
    tried: Vec<String>,
}
