//! INFO (RFC 6086) and MESSAGE inside the call: DTMF as `application/dtmf-relay` both
//! ways, paced one tone at a time, and the application's in-dialog messages.

use std::time::Duration;

use bytes::Bytes;

use super::{CallRequest, CallTimer, Ctx, Session};
use crate::message::{HeaderName, Method, Request};
use crate::session::{SdpHandler, dtmf};
use crate::transaction::TxId;
use crate::ua::{Event, RequestId};

/// A request of the application's for inside the call.
#[derive(Debug)]
pub(crate) struct Outbound {
    pub(crate) id: RequestId,
    pub(crate) method: Method,
    /// With a body: its Content-Type.
    pub(crate) content_type: Option<String>,
    pub(crate) body: Bytes,
    /// Extra headers, checked by the user agent.
    pub(crate) headers: Vec<(String, String)>,
}

impl<S: SdpHandler> Session<S> {
    /// Queues DTMF tones (checked by the caller) to go one INFO at a time.
    pub(crate) fn send_dtmf(&mut self, ctx: &mut Ctx<'_>, tones: &str) {
        self.dtmf.extend(tones.chars());
        self.pump(ctx);
    }

    /// Queues a request of the application's to go inside the dialog when nothing else of
    /// ours is in flight.
    pub(crate) fn send_request(&mut self, ctx: &mut Ctx<'_>, request: Outbound) {
        self.requests.push_back(request);
        self.pump(ctx);
    }

    pub(super) fn next_tone(&mut self, ctx: &mut Ctx<'_>) {
        match self.dtmf.pop_front() {
            None => {}
            Some(',') => {
                let at = ctx.now + Duration::from_secs(2);
                self.set_timer(ctx, CallTimer::Dtmf, at);
            }
            Some(tone) => {
                let body = dtmf::relay_body(tone, ctx.config.dtmf_duration);
                let mut req = self.in_dialog_request(ctx, Method::Info);
                req.set_body("application/dtmf-relay", Bytes::from(body));
                ctx.send(req, CallRequest::Info);
            }
        }
    }

    /// The final response to our INFO: the next tone after the gap, or the dialog is gone.
    pub(super) fn info_answered(&mut self, ctx: &mut Ctx<'_>, code: u16) {
        if code == 481 || code == 408 {
            self.in_dialog_gone(ctx, code);
        } else {
            let at = ctx.now + ctx.config.dtmf_gap;
            self.set_timer(ctx, CallTimer::Dtmf, at);
        }
    }

    pub(super) fn info_in(&mut self, ctx: &mut Ctx<'_>, tx: TxId, req: &Request) {
        if req.body().is_empty() {
            ctx.respond(tx, req, 200);
            return;
        }
        let ct = req
            .headers()
            .get(HeaderName::ContentType)
            .unwrap_or_default();
        let media = ct.split(';').next().unwrap_or_default().trim();
        match dtmf::parse(media, req.body()) {
            Some((tone, duration)) => {
                ctx.respond(tx, req, 200);
                ctx.event(Event::DtmfReceived {
                    call: self.id,
                    tone,
                    duration,
                });
            }
            None => {
                ctx.respond(tx, req, 200);
                ctx.event(Event::InfoReceived {
                    call: self.id,
                    content_type: ct.to_string(),
                    body: req.body().clone(),
                });
            }
        }
    }
}
