//! The caller's side (RFC 3261 §13.2): our INVITE, its provisionals and early dialogs, the
//! 2xx and its ACK, forks answered after the first (§13.2.2.4), CANCEL (§9.1).

use smol_str::SmolStr;

use super::{Action, CallRequest, CallTimer, Ctx, Phase, Session, common_headers};
use crate::auth::{Authenticator, DigestCredentials};
use crate::dialog::{Dialog, DialogState, RequestHead};
use crate::message::{HeaderName, Method, Request, Response};
use crate::session::{CallEnd, CallHandle, EndCause, HoldState, Originator, SdpHandler};
use crate::transaction::TxId;
use crate::transport::FlowId;
use crate::ua::Event;
use crate::ua::{CallOptions, UaError};

/// What the user agent settled before a call is placed.
pub(crate) struct Outgoing<'a> {
    pub(crate) id: CallHandle,
    pub(crate) flow: FlowId,
    /// The Request-URI.
    pub(crate) uri: &'a str,
    /// Our From without its tag.
    pub(crate) from: String,
    pub(crate) options: &'a CallOptions,
    /// Credentials to answer the call's challenges with before the user agent's own (a
    /// gateway's).
    pub(crate) credentials: Option<DigestCredentials>,
}

impl<S: SdpHandler> Session<S> {
    /// Builds our INVITE with `sdp`'s offer, and the session that sends it: the first action
    /// is its [`Action::Send`].
    pub(crate) fn outgoing(
        ctx: &mut Ctx<'_>,
        call: Outgoing<'_>,
        mut sdp: S,
    ) -> Result<Self, UaError> {
        let options = call.options;
        let offer = sdp
            .create_offer(HoldState::default().offer())
            .map_err(UaError::Sdp)?;
        let tag = ctx.ids.tag();
        let from = if options.anonymous {
            ["\"Anonymous\" <sip:anonymous@anonymous.invalid>;tag=", &tag].concat()
        } else {
            [call.from.as_str(), ";tag=", &tag].concat()
        };
        let call_id = ctx.ids.call_id();
        let mut req = RequestHead {
            method: Method::Invite,
            uri: call.uri,
            routes: &[],
            from: &from,
            to: &["<", call.uri, ">"].concat(),
            call_id: &call_id,
            cseq: ctx.ids.initial_cseq(),
        }
        .build(&ctx.local, ctx.ids);
        let h = req.headers_mut();
        h.push(HeaderName::Contact, &ctx.local.contact);
        common_headers(h, ctx.config);
        crate::ua::add_headers(h, &ctx.config.extra_headers);
        if let Some(interval) = ctx.config.session_expires {
            Self::ask_for_timer(h, ctx.config, interval);
        }
        if options.anonymous {
            h.push(HeaderName::Privacy, "id");
            h.push_named("P-Preferred-Identity", &format!("<{}>", ctx.config.aor))
                .map_err(|_| UaError::InvalidHeader("P-Preferred-Identity".into()))?;
        }
        for (name, value) in &options.headers {
            h.push_named(name, value)
                .map_err(|_| UaError::InvalidHeader(name.clone()))?;
        }
        req.set_body("application/sdp", offer);
        // The session keeps the INVITE for the call's life, sharing it with the copy sent.
        req.headers_mut().shrink_to_fit();
        let mut session = Session::new(
            call.id,
            true,
            Some(sdp),
            call.flow,
            req.clone(),
            (call_id, tag),
            ctx.now,
        );
        if let Some(after) = options.no_answer_timeout {
            session.set_timer(ctx, CallTimer::NoAnswer, ctx.now + after);
        }
        session.auth = call.credentials.map(|first| {
            let mut auth = Authenticator::new(first);
            if let Some(ours) = &ctx.config.credentials {
                auth.add_credentials(ours.clone());
            }
            Box::new(auth)
        });
        ctx.send(req, CallRequest::Invite);
        Ok(session)
    }

    /// Sends our INVITE again as a new transaction of the same call (next CSeq, new branch),
    /// changed by `edit`: after a 422 or a 3xx. Responses now answer this one.
    pub(super) fn invite_again(&mut self, ctx: &mut Ctx<'_>, edit: impl FnOnce(&mut Request)) {
        let Some(mut req) = self.invite().cloned() else {
            return;
        };
        edit(&mut req);
        let seq = req
            .cseq()
            .map(|c| c.seq)
            .unwrap_or_default()
            .wrapping_add(1);
        crate::dialog::rebranch(&mut req, seq, ctx.ids);
        self.invite = Some(Box::new(req.clone()));
        ctx.send(req, CallRequest::Invite);
    }

    /// CANCEL our INVITE, at once if a provisional came, else when one does (§9.1).
    pub(super) fn cancel(&mut self, ctx: &mut Ctx<'_>, end: CallEnd) {
        self.linger(ctx, end);
        match self.invite_tx {
            Some(tx) if self.provisional => self.send_cancel(ctx, tx),
            _ => self.cancel_pending = true,
        }
        let give_up = ctx.now + ctx.config.timers.t1() * 64;
        self.set_timer(ctx, CallTimer::GiveUp, give_up);
    }

    fn send_cancel(&mut self, ctx: &mut Ctx<'_>, tx: TxId) {
        self.cancel_pending = false;
        ctx.out
            .push_back(Action::Cancel(tx, self.ending_headers.clone()));
    }

    pub(super) fn invite_answered(&mut self, ctx: &mut Ctx<'_>, resp: &Response) {
        let code = resp.status().code();
        if code < 200 {
            self.provisional = true;
        }
        match code {
            100 => {}
            101..=199 => {
                self.times.progress(ctx.now);
                if self.phase == Phase::Ending {
                    self.cancel_if_pending(ctx);
                    return;
                }
                let tag = resp.headers().to_tag().ok().flatten().map(SmolStr::new);
                let fresh = tag.is_some()
                    && self
                        .dialog
                        .as_ref()
                        .is_none_or(|d| Some(&d.id().remote_tag) != tag.as_ref());
                if fresh
                    && let Some(invite) = self.invite()
                    && let Ok(d) = Dialog::uac(invite, resp)
                {
                    self.dialog = Some(d);
                }
                if !self.prack_if_reliable(ctx, resp) {
                    return;
                }
                self.refresh.allows(resp.headers());
                let early_media = !resp.body().is_empty();
                if early_media
                    && !self.answer_taken
                    && let Some(sdp) = self.sdp.as_mut()
                    && sdp.accept_answer(resp.body()).is_ok()
                {
                    self.answer_taken = true;
                    self.answer_from = tag;
                    self.remember_remote(&crate::session::sdp::text(resp.body()));
                }
                ctx.event(Event::CallProgress {
                    call: self.id,
                    status: code,
                    reason: resp.status().reason().to_string(),
                    early_media,
                });
            }
            200..=299 => self.invite_2xx(ctx, resp),
            422 if self.retry_after_422(ctx, resp) => {}
            300.. if self.redirect(ctx, resp) => {}
            _ => {
                if self.phase != Phase::Ending {
                    if let Some(sdp) = self.sdp.as_mut() {
                        sdp.rollback();
                    }
                    let end = CallEnd::new(EndCause::from_status(code), Originator::Remote)
                        .with_response(resp);
                    self.end(ctx, Some(end));
                } else {
                    self.end(ctx, None);
                }
            }
        }
    }

    fn cancel_if_pending(&mut self, ctx: &mut Ctx<'_>) {
        if self.cancel_pending
            && let Some(tx) = self.invite_tx
        {
            self.send_cancel(ctx, tx);
        }
    }

    /// The first 2xx confirms the call; a repeat is ACKed again; a 2xx from another fork
    /// is ACKed and hung up (§13.2.2.4).
    pub(super) fn invite_2xx(&mut self, ctx: &mut Ctx<'_>, resp: &Response) {
        let seq = resp.cseq().map(|c| c.seq).unwrap_or_default();
        let tag = resp.headers().to_tag().ok().flatten().unwrap_or_default();
        if let Some(d) = &self.dialog
            && d.state() == DialogState::Confirmed
        {
            // Only our own initial INVITE can fork.
            let initial = self.caller && self.invite_seq == Some(seq);
            if d.id().remote_tag == tag {
                if let Some((ack_seq, bytes)) = &self.ack
                    && *ack_seq == seq
                {
                    ctx.transmit(bytes.clone());
                }
            } else if initial {
                self.ack_and_bye_fork(ctx, resp);
            }
            return;
        }
        let dialog = match self.dialog.take() {
            Some(mut d) if d.id().remote_tag == tag => {
                d.handle_response(&Method::Invite, resp).map(|()| d)
            }
            _ => match self.invite.as_deref() {
                Some(invite) => Dialog::uac(invite, resp),
                None => return,
            },
        };
        let Ok(dialog) = dialog else {
            let end = CallEnd::new(EndCause::SipFailure, Originator::System)
                .with_status(resp.status().code());
            let ending = self.phase == Phase::Ending;
            self.end(ctx, (!ending).then_some(end));
            return;
        };
        let ack = dialog.ack(seq, &ctx.local, ctx.ids).to_bytes();
        self.ack_2xx(ctx, seq, ack);
        self.dialog = Some(dialog);
        if self.caller {
            // Confirmed: a fork's late 2xx is answered from this dialog (`Dialog::fork`),
            // so the INVITE is no longer needed.
            self.invite = None;
            self.invite_seq = Some(seq);
            self.pracks.confirmed();
        }
        self.clear_timer(CallTimer::NoAnswer);
        self.clear_timer(CallTimer::GiveUp);
        if self.phase == Phase::Ending {
            // Our CANCEL crossed the 2xx: the call exists now, so end it properly.
            self.send_bye(ctx);
            self.end(ctx, None);
            return;
        }
        // Media follows the dialog that answers (RFC 3960 §3): another fork's early answer
        // gives way to this one.
        let other_fork = self.answer_from.as_deref().is_some_and(|t| t != tag);
        let usable = if self.answer_taken && (!other_fork || resp.body().is_empty()) {
            Ok(())
        } else if self.answer_taken {
            self.sdp
                .as_mut()
                .map_or(Err(()), |s| s.replace_answer(resp.body()).map_err(|_| ()))
        } else if resp.body().is_empty() {
            Err(())
        } else {
            self.sdp
                .as_mut()
                .map_or(Err(()), |s| s.accept_answer(resp.body()).map_err(|_| ()))
        };
        if usable.is_err() {
            let end = CallEnd::new(EndCause::IncompatibleSdp, Originator::System);
            self.send_bye(ctx);
            self.end(ctx, Some(end));
            return;
        }
        if !resp.body().is_empty() && (!self.answer_taken || other_fork) {
            self.remember_remote(&crate::session::sdp::text(resp.body()));
        }
        self.answer_taken = true;
        self.phase = Phase::Confirmed;
        self.timer_granted(ctx, resp);
        self.remote = super::remote_of(resp.headers(), HeaderName::To);
        let answered = self.answered_event(ctx.now);
        ctx.event(answered);
    }

    fn ack_and_bye_fork(&mut self, ctx: &mut Ctx<'_>, resp: &Response) {
        let Some(Ok(mut fork)) = self.dialog.as_ref().map(|d| d.fork(resp)) else {
            return;
        };
        let seq = resp.cseq().map(|c| c.seq).unwrap_or_default();
        let ack = fork.ack(seq, &ctx.local, ctx.ids).to_bytes();
        ctx.transmit(ack);
        let bye = fork.request(Method::Bye, &ctx.local, ctx.ids);
        ctx.send(bye, CallRequest::Bye);
    }

    /// A 2xx to INVITE that no transaction claims any more (it outlived timer M, or the
    /// first final already completed the transaction): a repeat to ACK again, or another
    /// fork's answer to ACK and hang up. Only once the dialog is confirmed.
    pub(crate) fn stray_2xx(&mut self, ctx: &mut Ctx<'_>, resp: &Response) {
        let confirmed = self
            .dialog
            .as_ref()
            .is_some_and(|d| d.state() == DialogState::Confirmed);
        if confirmed && !self.finished {
            self.invite_2xx(ctx, resp);
        }
    }
}
