//! What a user agent answers by itself (RFC 3261 §8.2, §11, RFC 4475 §3.3).

use crate::ids::IdGenerator;
use crate::message::{
    ContentType, HeaderName, Method, Request, Response, Scheme, StatusCode, parse_token_list,
};

/// Methods this UA accepts, for Allow (RFC 3261 §20.5).
pub(crate) const ALLOW: &str =
    "INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE, INFO, PRACK, UPDATE, REFER, SUBSCRIBE, NOTIFY";
/// Bodies it understands, for Accept (RFC 3261 §20.1).
pub(super) const ACCEPT: &str = "application/sdp, text/plain, application/dtmf-relay";
/// Option tags it supports, for Supported.
pub(crate) const SUPPORTED: &str = "100rel, timer, path, outbound, gruu, replaces, norefersub";

/// What to do with a new request.
#[derive(Debug)]
pub(super) enum Decision {
    /// Answer with this status (extra headers from [`extra_headers`]).
    Reply(StatusCode),
    /// A MESSAGE for the application.
    Message,
    /// A new call.
    Invite,
    /// A request inside a dialog (it has a To tag): the dialog's, or 481 when there is none.
    InDialog,
    /// A new subscription to us (RFC 6665).
    Subscribe,
    /// A NOTIFY outside any subscription (voicemail servers send `message-summary` so).
    UnsolicitedNotify,
}

/// Whether a body of type `ct` is one of `types` (`type/subtype`, or `type/*`).
fn takes(types: &[String], ct: &ContentType<'_>) -> bool {
    types.iter().any(|t| {
        let (mtype, subtype) = t.split_once('/').unwrap_or((t.as_str(), "*"));
        ct.mtype.eq_ignore_ascii_case(mtype)
            && (subtype == "*" || ct.subtype.eq_ignore_ascii_case(subtype))
    })
}

pub(super) fn status(code: u16) -> StatusCode {
    StatusCode::new(code)
}

/// The checks of RFC 3261 §8.2.1–§8.2.3 in their order: method, Request-URI scheme (416),
/// Require (420), then content (415), then Accept (406), then the method itself.
/// `message_types` are the bodies a MESSAGE may carry (the application's choice).
pub(super) fn decide(req: &Request, message_types: &[String]) -> Decision {
    let m = req.method();
    let known = matches!(
        m,
        Method::Options
            | Method::Message
            | Method::Invite
            | Method::Bye
            | Method::Cancel
            | Method::Info
            | Method::Update
            | Method::Prack
            | Method::Notify
            | Method::Subscribe
            | Method::Refer
    );
    if !known {
        return Decision::Reply(status(405));
    }
    // §8.2.2.1: only URI schemes we can be reached at (the check on arrival parsed the
    // whole URI).
    let scheme_ok = matches!(req.scheme(), Scheme::Sip | Scheme::Sips | Scheme::Tel);
    if !scheme_ok {
        return Decision::Reply(status(416));
    }
    // §8.2.2.3: every Require option tag must be one we support.
    if unsupported(req).next().is_some() {
        return Decision::Reply(status(420));
    }
    // §8.2.2.2 (merged requests, 482) needs the calls; the UA checks it for INVITE.
    if !req.body().is_empty() {
        let ok = req
            .headers()
            .get(HeaderName::ContentType)
            .and_then(|v| ContentType::parse(v).ok())
            .is_some_and(|ct| {
                if *m == Method::Message {
                    return takes(message_types, &ct);
                }
                // An INFO's body is DTMF or the application's (RFC 6086 legacy usage); a
                // NOTIFY's is its package's, which the application reads.
                ct.is("application", "sdp")
                    || ct.is("text", "plain")
                    || matches!(m, Method::Info | Method::Notify)
            });
        if !ok {
            return Decision::Reply(status(415));
        }
    }
    // §8.2.3 / RFC 4475 §3.3.15: an INVITE that accepts no session description we can send.
    if *m == Method::Invite
        && let Some(accept) = req.headers().get(HeaderName::Accept)
        && !ContentType::parse_accept(accept)
            .filter_map(Result::ok)
            .any(|ct| ct.matches("application", "sdp"))
    {
        return Decision::Reply(status(406));
    }
    if req.headers().to_tag().ok().flatten().is_some() {
        return Decision::InDialog;
    }
    match m {
        Method::Options => Decision::Reply(status(200)),
        Method::Message => Decision::Message,
        Method::Invite => Decision::Invite,
        Method::Subscribe => Decision::Subscribe,
        Method::Notify => Decision::UnsolicitedNotify,
        // Requests that only make sense inside a dialog (§12.2.2).
        Method::Bye | Method::Cancel | Method::Info | Method::Update | Method::Prack => {
            Decision::Reply(status(481))
        }
        _ => Decision::Reply(status(405)),
    }
}

/// Require option tags we do not support.
fn unsupported(req: &Request) -> impl Iterator<Item = &str> + '_ {
    req.headers()
        .get_all(HeaderName::Require)
        .flat_map(parse_token_list)
        .filter_map(Result::ok)
        .filter(|tag| !SUPPORTED.split(", ").any(|s| s.eq_ignore_ascii_case(tag)))
}

/// Headers a reply must carry: Allow with 405 and with 200 to OPTIONS, Unsupported with 420,
/// Accept with 415 and 200 to OPTIONS (RFC 3261 §8.2.1–§8.2.3, §11.2).
pub(super) fn extra_headers(
    req: &Request,
    status: &StatusCode,
    message_types: &[String],
) -> Vec<(HeaderName, String)> {
    let mut h = Vec::new();
    match status.code() {
        405 => h.push((HeaderName::Allow, ALLOW.to_string())),
        415 if *req.method() == Method::Message => {
            h.push((HeaderName::Accept, message_types.join(", ")));
        }
        415 => h.push((HeaderName::Accept, ACCEPT.to_string())),
        420 => {
            let tags: Vec<&str> = unsupported(req).collect();
            h.push((HeaderName::Unsupported, tags.join(", ")));
        }
        200 if *req.method() == Method::Options => {
            h.push((HeaderName::Allow, ALLOW.to_string()));
            h.push((HeaderName::Accept, ACCEPT.to_string()));
            h.push((HeaderName::Supported, SUPPORTED.to_string()));
        }
        _ => {}
    }
    h
}

/// Our response to `req`: `status`, a To tag from `ids` (where the request has none yet and
/// the status is not 100), `extra` headers, and Server when we name ourselves.
pub(crate) fn reply(
    req: &Request,
    status: StatusCode,
    extra: &[(HeaderName, String)],
    ids: &mut IdGenerator,
    server: Option<&str>,
) -> Response {
    let mut resp = Response::from_request(req, status);
    if resp.status().code() > 100 {
        resp.set_to_tag(&ids.tag());
    }
    for (name, value) in extra {
        resp.headers_mut().push(*name, value);
    }
    if let Some(ua) = server {
        resp.headers_mut().push(HeaderName::Server, ua);
    }
    resp
}
