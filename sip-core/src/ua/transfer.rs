//! The user agent's side of blind transfer (RFC 3515): the application's commands, and
//! the link between a transferee's new call and the call whose REFER asked for it, whose
//! transferor hears each step of the new call by NOTIFY. The protocol is the INVITE
//! usage's (`session/invite/refer.rs`).

use std::time::Instant;

use super::{CallOptions, Event, HangupOptions, UaError, UserAgent};
use crate::message::{HeaderName, NameAddr, Replaces, Request};
use crate::peer_map::pair;
use crate::session::invite::{Phase, percent_encode};
use crate::session::{CallHandle, EndCause, SdpHandler};

impl<S: SdpHandler> UserAgent<S> {
    /// Transfers the peer of established call `id` to `target` (a SIP URI, `user@domain`,
    /// a bare user or a `tel:` URI): a REFER with Referred-By. Its progress comes as
    /// [`Event::TransferProgress`]; on success our call ends as
    /// [`EndCause::Transferred`](crate::session::EndCause::Transferred).
    pub fn transfer(&mut self, now: Instant, id: CallHandle, target: &str) -> Result<(), UaError> {
        self.transfer_with(now, id, target, false)
    }

    /// [`UserAgent::transfer`], asking the peer for no progress reports when `quiet`
    /// (RFC 4488 `Refer-Sub: false`): a peer that grants it answers 202 with
    /// `Refer-Sub: false`, and the transfer counts as done then (our call ends as
    /// `Transferred`); one that does not reports by NOTIFY as usual.
    pub fn transfer_with(
        &mut self,
        now: Instant,
        id: CallHandle,
        target: &str,
        quiet: bool,
    ) -> Result<(), UaError> {
        self.now = now;
        self.live_call(id)?;
        let uri = self.target_uri(target)?;
        self.with_session(now, id, |s, ctx| s.transfer(ctx, uri, quiet))
            .unwrap_or(Err(UaError::NoSuchCall(id)))
    }

    /// Attended transfer (RFC 5589): transfers the peer of call `id` to the party of our
    /// established call `to` (the consultation), whose dialog the peer's new INVITE
    /// replaces (RFC 3891). On success `id` ends as `Transferred`; the target then hangs up
    /// `to` on us.
    pub fn transfer_to(
        &mut self,
        now: Instant,
        id: CallHandle,
        to: CallHandle,
    ) -> Result<(), UaError> {
        self.now = now;
        self.live_call(id)?;
        let other = self.live_call(to)?;
        let dialog = other
            .dialog()
            .filter(|_| other.phase() == Phase::Confirmed)
            .ok_or(UaError::InvalidState(
                "the call to transfer to must be established",
            ))?;
        let d = dialog.id();
        // The target is its party as it named itself, so proxies route the new INVITE.
        let party = NameAddr::parse(other.remote().0)
            .map(|n| n.uri().to_string())
            .map_err(|_| UaError::InvalidState("the other call's party has no usable URI"))?;
        let party = party.split('?').next().unwrap_or_default().to_string();
        let replaces = format!(
            "{};to-tag={};from-tag={}",
            d.call_id, d.remote_tag, d.local_tag
        );
        let target = format!("{party}?Replaces={}", percent_encode(&replaces));
        self.with_session(now, id, |s, ctx| s.transfer(ctx, target, false))
            .unwrap_or(Err(UaError::NoSuchCall(id)))
    }

    /// Accepts the transfer [`Event::TransferRequested`] asked of call `id`: places the new
    /// call (with `sdp`, and the Referred-By the REFER carried) and returns it. The
    /// transferor hears how it goes; the call `id` is for it to end.
    pub fn accept_transfer(
        &mut self,
        now: Instant,
        id: CallHandle,
        sdp: S,
    ) -> Result<CallHandle, UaError> {
        self.now = now;
        let (target, replaces) = self
            .live_call(id)?
            .transfer_target()
            .map(|(t, r)| (t.to_string(), r.map(str::to_string)))
            .ok_or(UaError::InvalidState(
                "no transfer of this call waits for an answer",
            ))?;
        self.with_session(now, id, |s, _| s.transfer_answered());
        let mut options = CallOptions::default();
        if let Some(r) = replaces {
            options = options.header("Replaces", r);
        }
        match self.call(now, &target, options, sdp) {
            Ok(new) => {
                self.transfers.insert(new, id);
                self.event(Event::TransferAccepted {
                    call: id,
                    new_call: new,
                });
                Ok(new)
            }
            Err(e) => {
                self.with_session(now, id, |s, ctx| {
                    s.transfer_progress(ctx, 503, "Service Unavailable")
                });
                Err(e)
            }
        }
    }

    /// Refuses the transfer [`Event::TransferRequested`] asked of call `id`: the transferor
    /// hears 603 Declined, and the call goes on.
    pub fn refuse_transfer(&mut self, now: Instant, id: CallHandle) -> Result<(), UaError> {
        self.now = now;
        if self.live_call(id)?.transfer_target().is_none() {
            return Err(UaError::InvalidState(
                "no transfer of this call waits for an answer",
            ));
        }
        self.with_session(now, id, |s, ctx| {
            s.transfer_answered();
            s.transfer_progress(ctx, 603, "Declined");
        });
        Ok(())
    }

    /// The call a new INVITE's Replaces header names (RFC 3891 §3): a live call of ours
    /// with that Call-ID, our tag as `to-tag` and the peer's as `from-tag`. `Err(481)`
    /// when none matches (400 for a Replaces that does not parse); `Ok(None)` without one.
    pub(super) fn replaced_by(&self, req: &Request) -> Result<Option<CallHandle>, u16> {
        let Some(value) = req.headers().get(HeaderName::Replaces) else {
            return Ok(None);
        };
        let r = Replaces::parse(value).map_err(|_| 400u16)?;
        let found = self
            .dialogs
            .get(pair(&(r.call_id, r.to_tag)))
            .copied()
            .filter(|id| {
                self.calls.get(id).is_some_and(|s| {
                    s.is_live()
                        && s.dialog().is_some_and(|d| d.id().remote_tag == r.from_tag)
                        && (!r.early_only || s.phase() != Phase::Confirmed)
                })
            });
        found.map(Some).ok_or(481)
    }

    /// Tells a transferee's original call how the new call `e` is about goes; ends the
    /// call a newly answered one replaces.
    pub(super) fn transfer_step(&mut self, now: Instant, e: &Event) {
        if let Event::CallAnswered { call, .. } = e
            && let Some(old) = self.replacing.remove(call)
        {
            let options = HangupOptions {
                cause: Some(EndCause::Replaced),
                ..HangupOptions::default()
            };
            let _ = self.hangup_with(now, old, options);
        }
        if let Event::CallEnded { call, .. } = e {
            self.replacing.remove(call);
        }
        let Some(new) = e.call() else {
            return;
        };
        let Some(&original) = self.transfers.get(&new) else {
            return;
        };
        let (status, reason) = match e {
            Event::CallProgress { status, reason, .. } => (*status, reason.clone()),
            Event::CallAnswered { .. } => (200, "OK".to_string()),
            Event::CallEnded { end, .. } => {
                let status = end.status.unwrap_or(500);
                (status, end.cause.to_string())
            }
            _ => return,
        };
        if status >= 200 {
            self.transfers.remove(&new);
        }
        self.with_session(now, original, |s, ctx| {
            s.transfer_progress(ctx, status, &reason)
        });
    }
}
