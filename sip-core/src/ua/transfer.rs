//! The user agent's side of blind transfer (RFC 3515): the application's commands, and
//! the link between a transferee's new call and the call whose REFER asked for it, whose
//! transferor hears each step of the new call by NOTIFY. The protocol is the INVITE
//! usage's (`session/invite/refer.rs`).

use std::time::Instant;

use super::{CallOptions, Event, UaError, UserAgent};
use crate::session::{CallHandle, SdpHandler};

impl<S: SdpHandler> UserAgent<S> {
    /// Transfers the peer of established call `id` to `target` (a SIP URI, `user@domain`,
    /// a bare user or a `tel:` URI): a REFER with Referred-By. Its progress comes as
    /// [`Event::TransferProgress`]; on success our call ends as
    /// [`EndCause::Transferred`](crate::session::EndCause::Transferred).
    pub fn transfer(&mut self, now: Instant, id: CallHandle, target: &str) -> Result<(), UaError> {
        self.now = now;
        self.live_call(id)?;
        let uri = self.target_uri(target)?;
        self.with_session(now, id, |s, ctx| s.transfer(ctx, uri))
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
        let target = self
            .live_call(id)?
            .transfer_target()
            .ok_or(UaError::InvalidState(
                "no transfer of this call waits for an answer",
            ))?
            .to_string();
        self.with_session(now, id, |s, _| s.transfer_answered());
        match self.call(now, &target, CallOptions::default(), sdp) {
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

    /// Tells a transferee's original call how the new call `e` is about goes.
    pub(super) fn transfer_step(&mut self, now: Instant, e: &Event) {
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
