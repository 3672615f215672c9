//! Blind transfer inside a call (RFC 3515 REFER, RFC 3892 Referred-By), both ways. The
//! REFER's implicit `refer` subscription shares the call's dialog (RFC 5057 §5.4): its
//! NOTIFYs carry `message/sipfrag` status lines of the new call.
//!
//! Transferor: [`Session::transfer`] sends REFER; each NOTIFY is reported as
//! [`Event::TransferProgress`]; a 2xx status ends our call with BYE
//! ([`EndCause::Transferred`]), a failure leaves it as it was.
//!
//! Without the subscription (RFC 4488 `norefersub`): the transferor may ask for none
//! (`Refer-Sub: false`); a transferee that grants it says so in its 202 and sends no
//! NOTIFY, and the transferor then counts the transfer done at the 202.
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
    /// Boxed: most calls are never transferred.
    referred: Option<Box<Referred>>,
}

#[derive(Debug)]
enum Outgoing {
    Refer {
        target: String,
        referred_by: String,
        /// Ask for no subscription (RFC 4488).
        quiet: bool,
    },
    Notify {
        frag: String,
        last: bool,
    },
}

#[derive(Debug)]
struct Referred {
    /// The target, without URI headers.
    target: String,
    /// The Replaces header its URI carried, decoded (attended transfer, RFC 5589).
    replaces: Option<String>,
    /// The Event value of its subscription: `refer;id=<the REFER's CSeq>` (RFC 3515 §2.4.6).
    event: String,
    /// The application answered it (accepted or refused).
    answered: bool,
    /// The transferor asked for no NOTIFYs (RFC 4488), and we granted it.
    quiet: bool,
    /// The final NOTIFY went.
    done: bool,
}

/// `%XX` escapes in a URI header value, decoded (RFC 3261 §19.1.1); `None` for a bad one.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A value escaped for a URI header (`Refer-To: <…?Replaces=…>`): everything but
/// RFC 3261's `unreserved` characters as `%XX`.
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// RFC 4488's header: `false` asks for (and grants) a REFER without its subscription.
const REFER_SUB: &str = "Refer-Sub";

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
    /// Transfers the peer to `target` (a URI the user agent checked): REFER; `quiet` asks
    /// for no subscription (RFC 4488).
    pub(crate) fn transfer(
        &mut self,
        ctx: &mut Ctx<'_>,
        target: String,
        quiet: bool,
    ) -> Result<(), UaError> {
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
            quiet,
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
                quiet,
            } => {
                let mut req = self.in_dialog_request(ctx, Method::Refer);
                let h = req.headers_mut();
                h.push(HeaderName::ReferTo, &format!("<{target}>"));
                h.push(HeaderName::ReferredBy, &referred_by);
                if quiet {
                    let _ = h.push_named(REFER_SUB, "false");
                    h.push(HeaderName::Supported, "norefersub");
                }
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
        let quiet = resp
            .headers()
            .get_by_name(REFER_SUB)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("false"));
        if (200..300).contains(&code) && !quiet {
            return;
        }
        self.transfers.referring = false;
        if (200..300).contains(&code) {
            // No NOTIFY will tell (RFC 4488): the transfer is the peer's now, as a blind
            // transfer of a desk phone is once the REFER is taken.
            ctx.event(Event::TransferProgress {
                call: self.id,
                status: code,
                reason: resp.status().reason().to_string(),
            });
            let end = CallEnd::new(EndCause::Transferred, Originator::Local);
            self.bye(ctx, end);
            return;
        }
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
        let uri = h
            .get(HeaderName::ReferTo)
            .and_then(|v| NameAddr::parse(v).ok())
            .map(|n| n.uri().to_string())
            .unwrap_or_default();
        let (target, headers) = uri.split_once('?').unwrap_or((&uri, ""));
        if target.is_empty() {
            ctx.respond(tx, req, 400);
            return;
        }
        let target = target.to_string();
        let replaces = headers
            .split('&')
            .filter_map(|h| h.split_once('='))
            .find(|(name, _)| name.eq_ignore_ascii_case("Replaces"))
            .and_then(|(_, v)| percent_decode(v));
        let seq = req.cseq().map(|c| c.seq).unwrap_or_default();
        let quiet = h
            .get_by_name(REFER_SUB)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("false"));
        let mut resp = crate::ua::answer::reply(
            req,
            crate::message::StatusCode::new(202),
            &[],
            ctx.ids,
            ctx.config.user_agent.as_deref(),
        );
        if quiet {
            let _ = resp.headers_mut().push_named(REFER_SUB, "false");
        }
        ctx.out.push_back(super::Action::Respond(tx, resp));
        self.transfers.referred = Some(Box::new(Referred {
            target: target.clone(),
            replaces,
            event: format!("refer;id={seq}"),
            answered: false,
            quiet,
            done: false,
        }));
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

    /// Transferee: the target of the REFER waiting for the application's answer, and
    /// the Replaces header its new INVITE must carry (attended transfer).
    pub(crate) fn transfer_target(&self) -> Option<(&str, Option<&str>)> {
        self.transfers
            .referred
            .as_ref()
            .filter(|r| !r.answered && !r.done)
            .map(|r| (r.target.as_str(), r.replaces.as_deref()))
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
        if r.quiet {
            return;
        }
        self.transfers.outbox.push_back(Outgoing::Notify {
            frag: format!("SIP/2.0 {status} {reason}\r\n"),
            last,
        });
        self.pump(ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::{frag_status, percent_decode, percent_encode};

    #[test]
    fn replaces_escapes_both_ways() {
        let r = "a84b4c76e66710@pc33.atlanta.com;to-tag=314159;from-tag=9fxced76sl";
        let e = percent_encode(r);
        assert_eq!(
            e,
            "a84b4c76e66710%40pc33.atlanta.com%3Bto-tag%3D314159%3Bfrom-tag%3D9fxced76sl"
        );
        assert_eq!(percent_decode(&e).as_deref(), Some(r));
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%zz"), None);
    }

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
