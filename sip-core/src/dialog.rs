//! Dialogs (RFC 3261 §12): the peer-to-peer relationship an INVITE (or SUBSCRIBE, REFER)
//! sets up, and the state every request inside it needs.
//!
//! A dialog is identified by the Call-ID and the two tags. It remembers the route set
//! (the Record-Route of the request or response that created it), the remote target (the
//! peer's Contact, refreshed by re-INVITE and UPDATE), and both CSeq spaces. An INVITE may
//! fork: every 1xx or 2xx with a new To tag creates its own early or confirmed dialog
//! (§12.1.2, §13.2.2.4), so the caller keeps one [`Dialog`] per tag.
//!
//! [`Dialog`] only knows dialog state. Which flow a request leaves by, Via and the branch are
//! the caller's, passed in as a [`Local`].

use smol_str::SmolStr;

use crate::ids::IdGenerator;
use crate::message::{
    HeaderName, Method, NameAddr, ParseError, Prebuilt, Request, Response, Scheme, StatusCode, Uri,
};

/// The dialog identifier of RFC 3261 §12: Call-ID, local tag, remote tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DialogId {
    /// Call-ID.
    pub call_id: SmolStr,
    /// Our tag (From tag on requests we send).
    pub local_tag: SmolStr,
    /// The peer's tag.
    pub remote_tag: SmolStr,
}

impl DialogId {
    /// The id of the dialog an incoming in-dialog request belongs to, seen from the
    /// receiving side (§12.2.2): our tag is in To, the peer's in From.
    pub fn of_incoming(req: &Request) -> Result<Option<DialogId>, ParseError> {
        Ok(
            Self::parts_of_incoming(req)?.map(|(call_id, local, remote)| DialogId {
                call_id: SmolStr::new(call_id),
                local_tag: SmolStr::new(local),
                remote_tag: SmolStr::new(remote),
            }),
        )
    }

    /// [`DialogId::of_incoming`] as borrowed parts: Call-ID, local (To) tag, remote (From)
    /// tag, for looking a dialog up without building its identifier.
    pub(crate) fn parts_of_incoming(
        req: &Request,
    ) -> Result<Option<(&str, &str, &str)>, ParseError> {
        let h = req.headers();
        let (Some(to_tag), Some(from_tag)) = (h.to_tag()?, h.from_tag()?) else {
            return Ok(None);
        };
        Ok(Some((h.call_id()?, to_tag, from_tag)))
    }
}

/// Early until a 2xx arrives or is sent, confirmed after (§12.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// Created by a provisional response with a To tag.
    Early,
    /// Created or promoted by a 2xx.
    Confirmed,
}

/// Why a dialog cannot be created or a request does not fit it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DialogError {
    /// A header the dialog needs does not parse.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The response that would create the dialog has no To tag.
    #[error("response has no to tag")]
    NoRemoteTag,
    /// The request or response has no Contact to use as remote target (§12.1.1, §12.1.2).
    #[error("no contact for the remote target")]
    NoContact,
    /// A request's CSeq is not higher than the last one from the peer (§12.2.2): answer 500.
    #[error("cseq {got} not above {last}")]
    CSeqOutOfOrder {
        /// The CSeq received.
        got: u32,
        /// The highest CSeq seen before.
        last: u32,
    },
}

impl DialogError {
    /// The response status for an incoming request that failed this way (§12.2.2).
    pub fn status(&self) -> u16 {
        match self {
            DialogError::CSeqOutOfOrder { .. } => 500,
            _ => 400,
        }
    }

    /// [`DialogError::status`] with this error as its reason phrase, so that a 400 names
    /// the header at fault.
    pub fn status_code(&self) -> StatusCode {
        StatusCode::with_reason(self.status(), &self.to_string())
            .unwrap_or_else(|| StatusCode::new(self.status()))
    }
}

/// What the caller says about this side when a request leaves: the Via sent-by and
/// transport, and the Contact to advertise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Local {
    /// `SIP/2.0/<transport> <sent-by>` without parameters, e.g. `SIP/2.0/WSS df7jal23ls0d.invalid`.
    pub via: SmolStr,
    /// The Contact header value for requests that carry one (INVITE, re-INVITE, UPDATE…).
    pub contact: SmolStr,
}

impl Local {
    /// No Via and no Contact: for a flow that is gone.
    pub fn none() -> Self {
        Self {
            via: SmolStr::default(),
            contact: SmolStr::default(),
        }
    }
}

/// The headers every request starts with (RFC 3261 §8.1.1), in or out of a dialog.
#[derive(Debug, Clone)]
pub(crate) struct RequestHead<'a> {
    pub(crate) method: Method,
    pub(crate) uri: &'a str,
    /// Route values, first hop first.
    pub(crate) routes: &'a [String],
    pub(crate) from: &'a str,
    pub(crate) to: &'a str,
    pub(crate) call_id: &'a str,
    pub(crate) cseq: u32,
}

impl RequestHead<'_> {
    /// The request: our Via with a fresh branch and `rport` (RFC 3581), Max-Forwards 70,
    /// Route, From, To, Call-ID and CSeq.
    pub(crate) fn build(self, local: &Local, ids: &mut IdGenerator) -> Request {
        let mut r = Request::new(self.method.clone(), self.uri);
        let branch = ids.branch();
        let mut digits = itoa::Buffer::new();
        let seq = digits.format(self.cseq);
        let method = self.method.as_str();
        // Room for these lines and the few a usage adds (Contact, Allow, a body's two), so
        // the request's storage grows once.
        let routes: usize = self.routes.iter().map(|r| r.len() + 8).sum();
        let bytes = local.via.len()
            + branch.len()
            + local.contact.len()
            + routes
            + self.from.len()
            + self.to.len()
            + self.call_id.len()
            + method.len()
            + 192;
        let h = r.headers_mut();
        h.reserve(10 + self.routes.len(), bytes);
        h.push_parts(
            HeaderName::Via,
            &[&local.via, ";branch=", &branch, ";rport"],
        );
        h.push(HeaderName::MaxForwards, "70");
        for route in self.routes {
            h.push(HeaderName::Route, route);
        }
        h.push(HeaderName::From, self.from);
        h.push(HeaderName::To, self.to);
        h.push(HeaderName::CallId, self.call_id);
        h.push_parts(HeaderName::CSeq, &[seq, " ", method]);
        r
    }
}

/// One dialog, from one side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    id: DialogId,
    state: DialogState,
    local_seq: u32,
    remote_seq: Option<u32>,
    remote_target: String,
    route_set: Vec<String>,
    secure: bool,
    /// What every request we send in the dialog repeats (§12.2.1.1): the Request-URI,
    /// Max-Forwards, Route, From (ours, with our tag), To (the peer's, with its tag) and
    /// Call-ID, laid out once and rebuilt only when the target or the route set changes.
    head: Prebuilt,
}

impl Dialog {
    /// The UAC's dialog from the INVITE it sent and a 1xx (with To tag) or 2xx it received
    /// (§12.1.2): route set is the response's Record-Route in reverse, remote target its
    /// Contact.
    pub fn uac(request: &Request, response: &Response) -> Result<Dialog, DialogError> {
        let h = response.headers();
        let remote_tag = h.to_tag()?.ok_or(DialogError::NoRemoteTag)?;
        let local_tag = request.headers().from_tag()?.unwrap_or_default();
        let mut route_set = record_route(h)?;
        route_set.reverse();
        let state = if response.status().is_success() {
            DialogState::Confirmed
        } else {
            DialogState::Early
        };
        Ok(Dialog {
            id: DialogId {
                call_id: SmolStr::new(request.call_id()?),
                local_tag: SmolStr::new(local_tag),
                remote_tag: SmolStr::new(remote_tag),
            },
            state,
            local_seq: request.cseq()?.seq,
            remote_seq: None,
            remote_target: contact_uri(h)?.ok_or(DialogError::NoContact)?,
            route_set,
            secure: request.scheme() == Scheme::Sips,
            head: Prebuilt::default(),
        }
        .with_parties(
            request.headers().get(HeaderName::From).unwrap_or_default(),
            h.get(HeaderName::To).unwrap_or_default(),
        ))
    }

    /// Another dialog made by the INVITE that made this confirmed one: a fork's 2xx that
    /// comes once this dialog is confirmed (§13.2.2.4: it is ACKed, then ended). Our side
    /// is this dialog's (From, Call-ID, the INVITE's CSeq, which the 2xx repeats); the
    /// peer's is the response's (To tag, Contact, Record-Route in reverse).
    pub fn fork(&self, response: &Response) -> Result<Dialog, DialogError> {
        let h = response.headers();
        let remote_tag = h.to_tag()?.ok_or(DialogError::NoRemoteTag)?;
        let mut route_set = record_route(h)?;
        route_set.reverse();
        Ok(Dialog {
            id: DialogId {
                call_id: self.id.call_id.clone(),
                local_tag: self.id.local_tag.clone(),
                remote_tag: SmolStr::new(remote_tag),
            },
            state: DialogState::Confirmed,
            local_seq: response.cseq()?.seq,
            remote_seq: None,
            remote_target: contact_uri(h)?.ok_or(DialogError::NoContact)?,
            route_set,
            secure: self.secure,
            head: Prebuilt::default(),
        }
        .with_parties(self.local(), h.get(HeaderName::To).unwrap_or_default()))
    }

    /// The UAS's dialog from a dialog-creating request it received and the tag it puts in
    /// its response (§12.1.1): route set is the request's Record-Route in order, remote
    /// target its Contact. `local_seq` is where our own CSeq space starts.
    pub fn uas(
        request: &Request,
        local_tag: &str,
        local_seq: u32,
        state: DialogState,
    ) -> Result<Dialog, DialogError> {
        let h = request.headers();
        let remote_tag = h.from_tag()?.unwrap_or_default();
        let to = h.get(HeaderName::To).unwrap_or_default();
        Ok(Dialog {
            id: DialogId {
                call_id: SmolStr::new(h.call_id()?),
                local_tag: SmolStr::new(local_tag),
                remote_tag: SmolStr::new(remote_tag),
            },
            state,
            local_seq,
            remote_seq: Some(request.cseq()?.seq),
            // RFC 2543 peers may leave Contact out; their From is where they are
            // (RFC 4475 §3.4.1 asks us to keep talking to them).
            remote_target: match contact_uri(h)? {
                Some(uri) => uri,
                None => request.from()?.uri().to_string(),
            },
            route_set: record_route(h)?,
            secure: request.scheme() == Scheme::Sips,
            head: Prebuilt::default(),
        }
        .with_parties(
            &[to, ";tag=", local_tag].concat(),
            h.get(HeaderName::From).unwrap_or_default(),
        ))
    }

    /// The subscriber's dialog made by a NOTIFY that came before the 2xx to our SUBSCRIBE
    /// (RFC 6665 §4.1.2.4): our side is the SUBSCRIBE's From, the notifier's the NOTIFY's
    /// From, its target the NOTIFY's Contact and the route set the NOTIFY's Record-Route in
    /// order (as for any request that makes a dialog, §12.1.1).
    pub fn from_notify(subscribe: &Request, notify: &Request) -> Result<Dialog, DialogError> {
        let ours = subscribe.headers();
        let h = notify.headers();
        let local_tag = ours.from_tag()?.unwrap_or_default();
        Ok(Dialog {
            id: DialogId {
                call_id: SmolStr::new(ours.call_id()?),
                local_tag: SmolStr::new(local_tag),
                remote_tag: SmolStr::new(h.from_tag()?.unwrap_or_default()),
            },
            state: DialogState::Confirmed,
            local_seq: subscribe.cseq()?.seq,
            remote_seq: Some(notify.cseq()?.seq),
            remote_target: match contact_uri(h)? {
                Some(uri) => uri,
                None => notify.from()?.uri().to_string(),
            },
            route_set: record_route(h)?,
            secure: subscribe.scheme() == Scheme::Sips,
            head: Prebuilt::default(),
        }
        .with_parties(
            ours.get(HeaderName::From).unwrap_or_default(),
            h.get(HeaderName::From).unwrap_or_default(),
        ))
    }

    /// The 2xx to our SUBSCRIBE, for a dialog its NOTIFY made first ([`Dialog::from_notify`])
    /// without a route set: the dialog takes the 2xx's Record-Route, reversed as for any
    /// UAC (§12.1.2). A proxy that record-routed the SUBSCRIBE but not its NOTIFY (RFC 6665
    /// §4.3 says it must) still expects the dialog's requests; without its route, an
    /// unsubscribe meets that proxy's 404. A route set the NOTIFY gave is kept.
    pub fn route_from_2xx(&mut self, response: &Response) -> Result<(), DialogError> {
        if self.route_set.is_empty() {
            let mut route_set = record_route(response.headers())?;
            route_set.reverse();
            self.route_set = route_set;
            self.rebuild_head();
        }
        Ok(())
    }

    /// Our address as in From of our requests (with our tag).
    pub fn local(&self) -> &str {
        self.head.value(HeaderName::From).unwrap_or_default()
    }

    /// The peer's address as in To of our requests (with its tag).
    pub fn remote(&self) -> &str {
        self.head.value(HeaderName::To).unwrap_or_default()
    }

    /// The dialog id.
    pub fn id(&self) -> &DialogId {
        &self.id
    }

    /// Early or confirmed.
    pub fn state(&self) -> DialogState {
        self.state
    }

    /// The peer's Contact URI: where in-dialog requests go (after the route set).
    pub fn remote_target(&self) -> &str {
        &self.remote_target
    }

    /// The route set, first hop first.
    pub fn route_set(&self) -> &[String] {
        &self.route_set
    }

    /// The last CSeq we used.
    pub fn local_seq(&self) -> u32 {
        self.local_seq
    }

    /// The last CSeq the peer used, if it has sent a request in the dialog.
    pub fn remote_seq(&self) -> Option<u32> {
        self.remote_seq
    }

    /// Whether the dialog was set up with a SIPS URI (§12.1.1).
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The callee sent its 2xx: the early dialog is confirmed (§12.1.1).
    pub(crate) fn confirm(&mut self) {
        self.state = DialogState::Confirmed;
    }

    /// Takes the next local CSeq for a request built elsewhere (an authenticated retry).
    pub(crate) fn next_seq(&mut self) -> u32 {
        self.local_seq += 1;
        self.local_seq
    }

    /// A 2xx confirms an early dialog and, like any target-refresh response, may carry a new
    /// Contact (§12.1.2, §12.2.1.2). Responses to other methods leave the target alone.
    pub fn handle_response(
        &mut self,
        method: &Method,
        response: &Response,
    ) -> Result<(), DialogError> {
        if response.status().is_success() {
            self.state = DialogState::Confirmed;
        }
        if is_target_refresh(method)
            && response.status().code() < 300
            && let Some(target) = contact_uri(response.headers())?
        {
            self.retarget(target);
        }
        Ok(())
    }

    /// Checks an in-dialog request from the peer (§12.2.2): its CSeq must rise (ACK and
    /// CANCEL reuse their INVITE's number and are exempt), and a target-refresh request
    /// updates the remote target.
    pub fn handle_request(&mut self, request: &Request) -> Result<(), DialogError> {
        let seq = request.cseq()?.seq;
        let exempt = matches!(request.method(), Method::Ack | Method::Cancel);
        if !exempt
            && let Some(last) = self.remote_seq
            && seq <= last
        {
            return Err(DialogError::CSeqOutOfOrder { got: seq, last });
        }
        // A bad Contact refuses the request before anything of the dialog changes (a request
        // handed over framed only, without the arrival check, has not had it read yet).
        let target = if is_target_refresh(request.method()) {
            contact_uri(request.headers())?
        } else {
            None
        };
        if !exempt {
            self.remote_seq = Some(seq);
        }
        if let Some(target) = target {
            self.retarget(target);
        }
        Ok(())
    }

    /// A new request inside the dialog (§12.2.1.1), with the next CSeq, a fresh branch, and
    /// Request-URI and Route set by loose or strict routing. ACK is built with
    /// [`Dialog::ack`] instead, since it reuses the INVITE's CSeq.
    pub fn request(&mut self, method: Method, local: &Local, ids: &mut IdGenerator) -> Request {
        self.local_seq += 1;
        let seq = self.local_seq;
        self.build(method, seq, local, ids)
    }

    /// The ACK for a 2xx to the INVITE with CSeq `invite_seq` (§13.2.2.4): its own branch,
    /// the INVITE's CSeq number, routed like any in-dialog request.
    pub fn ack(&self, invite_seq: u32, local: &Local, ids: &mut IdGenerator) -> Request {
        self.build(Method::Ack, invite_seq, local, ids)
    }

    /// The request: our Via with a fresh branch and `rport` (RFC 3581) on top of the
    /// dialog's prebuilt head, then CSeq, and our Contact for a target-refresh request.
    fn build(&self, method: Method, seq: u32, local: &Local, ids: &mut IdGenerator) -> Request {
        let branch = ids.branch();
        let mut digits = itoa::Buffer::new();
        let seq = digits.format(seq);
        let refresh = is_target_refresh(&method);
        // Room for these lines and the few a usage adds (Allow, a body's two), so the
        // request's storage grows once.
        let reserve =
            local.via.len() + branch.len() + local.contact.len() + method.as_str().len() + 160;
        let mut r = Request::from_prebuilt(method.clone(), &self.head, reserve);
        let h = r.headers_mut();
        h.insert_first_parts(
            HeaderName::Via,
            &[&local.via, ";branch=", &branch, ";rport"],
        );
        h.push_parts(HeaderName::CSeq, &[seq, " ", method.as_str()]);
        if refresh {
            h.push(HeaderName::Contact, &local.contact);
        }
        r
    }

    /// A new dialog's head, from its parties as in From and To of our requests.
    fn with_parties(mut self, local: &str, remote: &str) -> Dialog {
        self.head = self.head_for(local, remote);
        self
    }

    /// A target refresh (§12.2): a new remote target is a new Request-URI (or last Route).
    fn retarget(&mut self, target: String) {
        if target != self.remote_target {
            self.remote_target = target;
            self.rebuild_head();
        }
    }

    fn rebuild_head(&mut self) {
        let head = self.head_for(self.local(), self.remote());
        self.head = head;
    }

    /// Request-URI and Route values per §12.2.1.1: with an empty route set or a loose-routing
    /// first hop (`;lr`) the Request-URI is the remote target and Route is the route set;
    /// with a strict router first, the Request-URI is that router and the remote target goes
    /// last in Route. From, To and Call-ID follow.
    fn head_for(&self, local: &str, remote: &str) -> Prebuilt {
        let mut lines = Vec::with_capacity(self.route_set.len() + 5);
        lines.push((HeaderName::MaxForwards, "70"));
        let first_uri = self
            .route_set
            .first()
            .map(|first| NameAddr::parse(first).ok().map(|n| n.uri()));
        let strict = match first_uri {
            Some(Some(u)) if !u.is_loose_route() => Some(strip_for_request_uri(&u)),
            _ => None,
        };
        let last;
        let uri = match &strict {
            None => {
                lines.extend(
                    self.route_set
                        .iter()
                        .map(|r| (HeaderName::Route, r.as_str())),
                );
                self.remote_target.as_str()
            }
            Some(router) => {
                lines.extend(
                    self.route_set[1..]
                        .iter()
                        .map(|r| (HeaderName::Route, r.as_str())),
                );
                last = ["<", &self.remote_target, ">"].concat();
                lines.push((HeaderName::Route, last.as_str()));
                router.as_str()
            }
        };
        lines.push((HeaderName::From, local));
        lines.push((HeaderName::To, remote));
        lines.push((HeaderName::CallId, &self.id.call_id));
        Prebuilt::new(uri, &lines)
    }
}

/// Turns a request into its own retry (after a 401/407, RFC 3261 §8.1.3.5, §22.2): a new
/// top Via branch and CSeq `seq`, everything else unchanged.
pub(crate) fn rebranch(r: &mut Request, seq: u32, ids: &mut IdGenerator) {
    let via = r
        .headers()
        .top_via()
        .ok()
        .map(|v| {
            let text = v.to_string();
            match text.split_once(";branch=") {
                Some((head, rest)) => {
                    let tail = rest
                        .split_once(';')
                        .map(|(_, t)| format!(";{t}"))
                        .unwrap_or_default();
                    format!("{head};branch={}{tail}", ids.branch())
                }
                None => format!("{text};branch={}", ids.branch()),
            }
        })
        .unwrap_or_default();
    let method = r.method().clone();
    let h = r.headers_mut();
    h.remove_first(HeaderName::Via);
    h.insert_first(HeaderName::Via, &via);
    h.set(HeaderName::CSeq, &format!("{seq} {method}"));
}

/// Methods whose request and 2xx carry a new remote target (RFC 3261 §12.2, RFC 3311).
fn is_target_refresh(m: &Method) -> bool {
    matches!(
        m,
        Method::Invite | Method::Update | Method::Subscribe | Method::Notify | Method::Refer
    )
}

/// Record-Route values, one per route, as `<uri>;params` strings.
fn record_route(h: &crate::message::Headers) -> Result<Vec<String>, DialogError> {
    let mut out = Vec::new();
    for line in h.get_all(HeaderName::RecordRoute) {
        for na in NameAddr::parse_list(line) {
            let na = na.map_err(|error| ParseError::Header {
                name: HeaderName::RecordRoute.as_str(),
                error,
            })?;
            out.push(na.to_string());
        }
    }
    Ok(out)
}

/// The URI of the first Contact, if any.
/// The remote target: the first Contact's URI as the peer wrote it (framing found it).
fn contact_uri(h: &crate::message::Headers) -> Result<Option<String>, DialogError> {
    Ok(h.contact_target()?.map(str::to_string))
}

/// A route URI as a Request-URI: no URI headers, no `method`, `maddr`, `ttl` or `lr`
/// (RFC 3261 §12.2.1.1 and the table in §19.1.1).
fn strip_for_request_uri(u: &Uri<'_>) -> String {
    let text = u.to_string();
    let text = text.split('?').next().unwrap_or_default();
    let mut parts = text.split(';');
    let mut out = parts.next().unwrap_or_default().to_string();
    for p in parts {
        let name = p.split('=').next().unwrap_or_default();
        if !["method", "maddr", "ttl", "lr"]
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
        {
            out.push(';');
            out.push_str(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;
    use bytes::Bytes;

    fn req(text: &str) -> Request {
        match Message::parse(Bytes::copy_from_slice(
            text.replace('\n', "\r\n").as_bytes(),
        ))
        .unwrap()
        {
            Message::Request(r) => r,
            Message::Response(_) => panic!("a request"),
        }
    }

    const INVITE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8
Max-Forwards: 70
To: Bob <sip:bob@biloxi.example.com>
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774
Call-ID: a84b4c76e66710
CSeq: 314159 INVITE
Contact: <sip:alice@pc33.atlanta.example.com>
Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com;lr>
Content-Length: 0

";

    fn local() -> Local {
        Local {
            via: "SIP/2.0/UDP 192.0.2.9:5060".into(),
            contact: "<sip:me@192.0.2.9:5060>".into(),
        }
    }

    fn ok_from_uas(invite: &Request) -> Response {
        let mut ok = Response::from_request(invite, StatusCode::new(200));
        ok.set_to_tag("a6c85cf");
        ok.headers_mut()
            .copy_from(invite.headers(), HeaderName::RecordRoute);
        ok.headers_mut()
            .push(HeaderName::Contact, "<sip:bob@192.0.2.4>");
        ok
    }

    #[test]
    fn both_sides_agree_on_the_dialog_id_and_mirror_the_route_set() {
        let invite = req(INVITE);
        let ok = ok_from_uas(&invite);
        let uac = Dialog::uac(&invite, &ok).unwrap();
        let uas = Dialog::uas(&invite, "a6c85cf", 1, DialogState::Confirmed).unwrap();
        assert_eq!(uac.id().call_id, uas.id().call_id);
        assert_eq!(uac.id().local_tag, uas.id().remote_tag);
        assert_eq!(uac.id().remote_tag, uas.id().local_tag);
        assert_eq!(
            uac.route_set(),
            ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
        );
        assert_eq!(
            uas.route_set(),
            ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]
        );
        assert_eq!(uac.remote_target(), "sip:bob@192.0.2.4");
        assert_eq!(uas.remote_target(), "sip:alice@pc33.atlanta.example.com");
        assert_eq!(uac.state(), DialogState::Confirmed);
    }

    #[test]
    fn in_dialog_requests_are_loose_routed_with_rising_cseq() {
        let invite = req(INVITE);
        let mut d = Dialog::uac(&invite, &ok_from_uas(&invite)).unwrap();
        let mut ids = IdGenerator::new(1);
        let bye = d.request(Method::Bye, &local(), &mut ids);
        assert_eq!(bye.uri(), "sip:bob@192.0.2.4");
        let routes: Vec<&str> = bye.headers().get_all(HeaderName::Route).collect();
        assert_eq!(
            routes,
            ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
        );
        assert_eq!(bye.cseq().unwrap().seq, 314160);
        assert_eq!(bye.from().unwrap().tag(), Some("1928301774"));
        assert_eq!(bye.to().unwrap().tag(), Some("a6c85cf"));
        assert!(!bye.headers().contains(HeaderName::Contact));
        let ack = d.ack(314159, &local(), &mut ids);
        assert_eq!(ack.cseq().unwrap().seq, 314159);
        assert_eq!(ack.cseq().unwrap().method, "ACK");
        assert_ne!(
            ack.top_via().unwrap().branch(),
            bye.top_via().unwrap().branch()
        );
        // Every request we build parses and validates.
        for r in [bye, ack] {
            Message::parse(r.to_bytes()).unwrap();
        }
    }

    #[test]
    fn a_strict_router_first_takes_the_request_uri() {
        let text = INVITE.replace(
            "Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com;lr>",
            "Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com;maddr=10.0.0.1;transport=udp>",
        );
        let invite = req(&text);
        let mut d = Dialog::uac(&invite, &ok_from_uas(&invite)).unwrap();
        let bye = d.request(Method::Bye, &local(), &mut IdGenerator::new(1));
        assert_eq!(bye.uri(), "sip:p1.example.com;transport=udp");
        let routes: Vec<&str> = bye.headers().get_all(HeaderName::Route).collect();
        assert_eq!(routes, ["<sip:p2.example.com;lr>", "<sip:bob@192.0.2.4>"]);
    }

    #[test]
    fn the_peer_cseq_must_rise_and_target_refresh_moves_the_target() {
        let invite = req(INVITE);
        let mut uas = Dialog::uas(&invite, "a6c85cf", 1, DialogState::Confirmed).unwrap();
        let reinvite = req(&INVITE
            .replace("CSeq: 314159 INVITE", "CSeq: 314160 INVITE")
            .replace(
                "To: Bob <sip:bob@biloxi.example.com>",
                "To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf",
            )
            .replace(
                "<sip:alice@pc33.atlanta.example.com>",
                "<sip:alice@198.51.100.7:5062>",
            ));
        uas.handle_request(&reinvite).unwrap();
        assert_eq!(uas.remote_target(), "sip:alice@198.51.100.7:5062");
        assert_eq!(uas.remote_seq(), Some(314160));
        let err = uas.handle_request(&reinvite).unwrap_err();
        assert_eq!(
            err,
            DialogError::CSeqOutOfOrder {
                got: 314160,
                last: 314160
            }
        );
        assert_eq!(err.status(), 500);
        assert_eq!(
            DialogId::of_incoming(&reinvite).unwrap().unwrap(),
            uas.id().clone()
        );
    }

    #[test]
    fn a_target_refresh_with_a_bad_contact_changes_nothing() {
        let invite = req(INVITE);
        let mut uas = Dialog::uas(&invite, "a6c85cf", 1, DialogState::Confirmed).unwrap();
        let reinvite = |contact: &str| {
            let text = INVITE
                .replace("CSeq: 314159 INVITE", "CSeq: 314160 INVITE")
                .replace(
                    "To: Bob <sip:bob@biloxi.example.com>",
                    "To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf",
                )
                .replace("<sip:alice@pc33.atlanta.example.com>", contact)
                .replace('\n', "\r\n");
            // Framed only: the request reaches the dialog with its Contact unread.
            match Message::frame(Bytes::from(text), &Default::default()).unwrap() {
                Message::Request(r) => r,
                Message::Response(_) => panic!("a request"),
            }
        };
        let err = uas
            .handle_request(&reinvite("<sip:alice@198.51.100.7:5062;x=\"q\">"))
            .unwrap_err();
        assert_eq!(err.status_code().code(), 400);
        assert!(
            err.status_code().reason().starts_with("bad Contact header"),
            "{err}"
        );
        assert_eq!(uas.remote_seq(), Some(314159));
        assert_eq!(uas.remote_target(), "sip:alice@pc33.atlanta.example.com");
        // The peer's corrected request, with the same CSeq, is taken.
        uas.handle_request(&reinvite("<sip:alice@198.51.100.7:5062>"))
            .unwrap();
        assert_eq!(uas.remote_seq(), Some(314160));
        assert_eq!(uas.remote_target(), "sip:alice@198.51.100.7:5062");
    }

    #[test]
    fn forked_provisionals_make_separate_early_dialogs() {
        let invite = req(INVITE);
        let mut dialogs = Vec::new();
        for tag in ["fork-a", "fork-b"] {
            let mut ringing = Response::from_request(&invite, StatusCode::new(180));
            ringing.set_to_tag(tag);
            ringing
                .headers_mut()
                .push(HeaderName::Contact, &format!("<sip:{tag}@192.0.2.4>"));
            dialogs.push(Dialog::uac(&invite, &ringing).unwrap());
        }
        assert_ne!(dialogs[0].id(), dialogs[1].id());
        assert!(dialogs.iter().all(|d| d.state() == DialogState::Early));
        let mut ok = Response::from_request(&invite, StatusCode::new(200));
        ok.set_to_tag("fork-b");
        ok.headers_mut()
            .push(HeaderName::Contact, "<sip:fork-b@192.0.2.44>");
        dialogs[1].handle_response(&Method::Invite, &ok).unwrap();
        assert_eq!(dialogs[1].state(), DialogState::Confirmed);
        assert_eq!(dialogs[1].remote_target(), "sip:fork-b@192.0.2.44");
        let mut no_tag = Response::from_request(&invite, StatusCode::new(180));
        no_tag.headers_mut().push(HeaderName::Contact, "<sip:x@h>");
        assert_eq!(
            Dialog::uac(&invite, &no_tag).unwrap_err(),
            DialogError::NoRemoteTag
        );
    }
}
