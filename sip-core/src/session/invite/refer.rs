//! Blind transfer inside a call (RFC 3515 REFER, RFC 3892 Referred-By), both ways. The
//! REFER's implicit `refer` subscription shares the call's dialog (RFC 5057 §5.4): its
//! NOTIFYs carry `message/sipfrag` status lines of the new call.
//!
//! Transferor: [`Session::transfer`] sends REFER; each NOTIFY is reported as
//! [`Event::TransferProgress`]; a 2xx status ends our call with BYE
//! ([`EndCause::Transferred`]), a failure leaves it as it was.
//!
//! Transferee: a REFER is accepted (202) with a first NOTIFY `100 Trying` and reported as
//! [`Event::TransferRequested`]; the user agent places the new call when the application
//! accepts, and tells the session each of its steps ([`Session::transfer_progress`]),
//! which go to the transferor as NOTIFYs, the final one terminating the subscription.

use std::collections::VecDeque;

use super::{CallRequest, Ctx, Phase, Session};
use crate::message::{HeaderName, Method, NameAddr, Request, Response};
use crate::session::{CallEnd, EndCause, Originator, SdpHandler};
use crate::transaction::TxId;
use crate::ua::{Event, UaError};

/// What the session does about transfers.
#[derive(Debug, Default)]
pub(super) struct Transfers {
    /// Our REFERs and NOTIFYs, waiting their turn in the dialog.
    outbox: VecDeque<Outgoing>,
    /// Transferor: our REFER is out or accepted; its NOTIFYs report the new call.
    referring: bool,
    /// Transferee: the REFER we accepted and where it stands.
    referred: Option<Referred>,
}

#[derive(Debug)]
enum Outgoing {
    Refer { target: String, referred_by: String },
    Notify { frag: String, last: bool },
}

#[derive(Debug)]
struct Referred {
    /// The target, without URI headers.
    target: String,
    /// The Event value of its subscription: `refer;id=<the REFER's CSeq>` (RFC 3515 §2.4.6).
    event: String,
    /// The application answered it (accepted or refused).
    answered: bool,
    /// The final NOTIFY went.
    done: bool,
}

/// The status code of a `message/sipfrag` status line (`SIP/2.0 180 Ringing`).
fn frag_status(body: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(body).ok()?;
    let mut words = text.lines().next()?.split_whitespace();
    (words.next()? == "SIP/2.0").then_some(())?;
    words
        .next()?
        .parse()
        .ok()
        .filter(|c| (100..700).contains(c))
}

impl<S: SdpHandler> Session<S> {
    /// Transfers the peer to `target` (a URI the user agent checked): REFER.
    pub(crate) fn transfer(&mut self, ctx: &mut Ctx<'_>, target: String) -> Result<(), UaError> {
        if self.phase != Phase::Confirmed {
            return Err(UaError::InvalidState(
                "only an established call is transferred",
            ));
        }
        if self.transfers.referring
            || self
                .transfers
                .outbox
                .iter()
                .any(|o| matches!(o, Outgoing::Refer { .. }))
        {
            return Err(UaError::InvalidState(
                "a transfer of this call is under way",
            ));
        }
        let referred_by = format!("<{}>", ctx.config.aor);
        self.transfers.outbox.push_back(Outgoing::Refer {
            target,
            referred_by,
        });
        self.pump(ctx);
        Ok(())
    }

    /// Sends the next REFER or NOTIFY of ours, if one waits; false when none does.
    pub(super) fn send_transfer_message(&mut self, ctx: &mut Ctx<'_>) -> bool {
        let Some(next) = self.transfers.outbox.pop_front() else {
            return false;
        };
        match next {
            Outgoing::Refer {
                target,
                referred_by,
            } => {
                let mut req = self.in_dialog_request(ctx, Method::Refer);
                let h = req.headers_mut();
                h.push(HeaderName::ReferTo, &format!("<{target}>"));
                h.push(HeaderName::ReferredBy, &referred_by);
                // Its NOTIFYs may overtake the 202 (RFC 3515 §2.4.4): take them from now.
                self.transfers.referring = true;
                ctx.send(req, CallRequest::Refer);
            }
            Outgoing::Notify { frag, last } => {
                let Some(event) = self.transfers.referred.as_ref().map(|r| r.event.clone()) else {
                    return false;
                };
                let mut req = self.in_dialog_request(ctx, Method::Notify);
                let state = if last {
                    "terminated;reason=noresource"
                } else {
                    "active;expires=60"
                };
                let h = req.headers_mut();
                h.push(HeaderName::Event, &event);
                h.push(HeaderName::SubscriptionState, state);
                req.set_body("message/sipfrag;version=2.0", frag.into_bytes().into());
                ctx.send(req, CallRequest::Notify);
            }
        }
        true
    }

    /// Transferor: the final response to our REFER.
    pub(super) fn refer_answered(&mut self, ctx: &mut Ctx<'_>, resp: &Response) {
        let code = resp.status().code();
        if (200..300).contains(&code) {
            return;
        }
        self.transfers.referring = false;
        if code == 481 || code == 408 {
            self.in_dialog_gone(ctx, code);
            return;
        }
        ctx.event(Event::TransferProgress {
            call: self.id,
            status: code,
            reason: resp.status().reason().to_string(),
        });
    }

    /// A NOTIFY in the call's dialog: our REFER's subscription reporting the new call.
    pub(super) fn notify_in(&mut self, ctx: &mut Ctx<'_>, tx: TxId, req: &Request) {
        let event = req.headers().get(HeaderName::Event).unwrap_or_default();
        let package = event.split(';').next().unwrap_or_default().trim();
        if !self.transfers.referring || !package.eq_ignore_ascii_case("refer") {
            ctx.respond(tx, req, 481);
            return;
        }
        let Some(status) = frag_status(req.body()) else {
            ctx.respond(tx, req, 400);
            return;
        };
        ctx.respond(tx, req, 200);
        let reason = std::str::from_utf8(req.body())
            .ok()
            .and_then(|t| t.lines().next())
            .and_then(|l| l.splitn(3, ' ').nth(2))
            .unwrap_or_default()
            .to_string();
        ctx.event(Event::TransferProgress {
            call: self.id,
            status,
            reason,
        });
        if status >= 200 {
            self.transfers.referring = false;
        }
        if (200..300).contains(&status) {
            // The peer talks to the target now: our part is over (RFC 5589 §6.1).
            let end = CallEnd::new(EndCause::Transferred, Originator::Local);
            self.bye(ctx, end);
        }
    }

    /// Transferee: the peer's REFER (RFC 3515 §2.4.2): 202, a first NOTIFY, and the
    /// application told.
    pub(super) fn refer_in(&mut self, ctx: &mut Ctx<'_>, tx: TxId, req: &Request) {
        if self.phase != Phase::Confirmed {
            ctx.respond(tx, req, 491);
            return;
        }
        if self.transfers.referred.as_ref().is_some_and(|r| !r.done) {
            // One transfer at a time in a dialog.
            ctx.respond(tx, req, 491);
            return;
        }
        let h = req.headers();
        let target = h
            .get(HeaderName::ReferTo)
            .and_then(|v| NameAddr::parse(v).ok())
            .map(|n| {
                let uri = n.uri().to_string();
                uri.split('?').next().unwrap_or_default().to_string()
            });
        let Some(target) = target.filter(|t| !t.is_empty()) else {
            ctx.respond(tx, req, 400);
            return;
        };
        let seq = req.cseq().map(|c| c.seq).unwrap_or_default();
        ctx.respond(tx, req, 202);
        self.transfers.referred = Some(Referred {
            target: target.clone(),
            event: format!("refer;id={seq}"),
            answered: false,
            done: false,
        });
        self.transfer_progress(ctx, 100, "Trying");
        ctx.event(Event::TransferRequested {
            call: self.id,
            target,
            referred_by: h.get(HeaderName::ReferredBy).map(str::to_string),
        });
    }

    /// Transferor: our REFER got no answer.
    pub(super) fn transfer_failed(&mut self) {
        self.transfers.referring = false;
    }

    /// Transferee: the target of the REFER waiting for the application's answer.
    pub(crate) fn transfer_target(&self) -> Option<&str> {
        self.transfers
            .referred
            .as_ref()
            .filter(|r| !r.answered && !r.done)
            .map(|r| r.target.as_str())
    }

    /// Transferee: the application answered the REFER (the new call is placed, or not).
    pub(crate) fn transfer_answered(&mut self) {
        if let Some(r) = self.transfers.referred.as_mut() {
            r.answered = true;
        }
    }

    /// Transferee: the new call reached `status`: a NOTIFY to the transferor, the last one
    /// when it is final.
    pub(crate) fn transfer_progress(&mut self, ctx: &mut Ctx<'_>, status: u16, reason: &str) {
        let Some(r) = self.transfers.referred.as_mut() else {
            return;
        };
        if r.done {
            return;
        }
        let last = status >= 200;
        r.done = last;
        self.transfers.outbox.push_back(Outgoing::Notify {
            frag: format!("SIP/2.0 {status} {reason}\r\n"),
            last,
        });
        self.pump(ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::frag_status;

    #[test]
    fn sipfrag_status_lines() {
        assert_eq!(frag_status(b"SIP/2.0 180 Ringing\r\n"), Some(180));
        assert_eq!(frag_status(b"SIP/2.0 200 OK"), Some(200));
        assert_eq!(frag_status(b"SIP/2.0 99 x"), None);
        assert_eq!(frag_status(b"INVITE sip:a SIP/2.0"), None);
        assert_eq!(frag_status(&[0xff]), None);
        assert_eq!(frag_status(b""), None);
    }
}
