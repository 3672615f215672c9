//! Matching keys (RFC 3261 §17.1.3 and §17.2.3).

use smol_str::SmolStr;

use super::MAGIC_COOKIE;
use crate::message::{Method, ParseError, Request, Response};

/// A client transaction is found by the top Via branch and the CSeq method (§17.1.3): the
/// method is needed because a CANCEL shares its INVITE's branch.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ClientKey {
    pub(crate) branch: SmolStr,
    pub(crate) method: Method,
}

/// A server transaction is found by branch, sent-by and method, with ACK matching INVITE
/// (§17.2.3); requests from RFC 2543 elements carry no magic cookie and are matched on the
/// dialog and CSeq identifiers plus the whole top Via instead.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum ServerKey {
    Rfc3261 {
        branch: SmolStr,
        sent_by: SmolStr,
        method: Method,
    },
    Rfc2543 {
        call_id: SmolStr,
        from_tag: SmolStr,
        cseq: u32,
        via: SmolStr,
        method: Method,
    },
}

impl ClientKey {
    pub(crate) fn of_request(req: &Request) -> Result<ClientKey, ParseError> {
        let via = req.top_via()?;
        let branch = via.branch().ok_or(ParseError::Missing { name: "branch" })?;
        Ok(ClientKey {
            branch: SmolStr::new(branch),
            method: req.method().clone(),
        })
    }

    pub(crate) fn of_response(resp: &Response) -> Result<ClientKey, ParseError> {
        let via = resp.top_via()?;
        let branch = via.branch().ok_or(ParseError::Missing { name: "branch" })?;
        let cseq = resp.cseq()?;
        let method = Method::from_token(cseq.method).ok_or(ParseError::Missing {
            name: "CSeq method",
        })?;
        Ok(ClientKey {
            branch: SmolStr::new(branch),
            method,
        })
    }
}

impl ServerKey {
    /// The key of `req`'s own transaction. ACK maps to the INVITE it acknowledges.
    pub(crate) fn of_request(req: &Request) -> Result<ServerKey, ParseError> {
        let method = match req.method() {
            Method::Ack => Method::Invite,
            m => m.clone(),
        };
        Self::with_method(req, method)
    }

    /// The key a request would have with another method: a CANCEL looks for its INVITE.
    pub(crate) fn with_method(req: &Request, method: Method) -> Result<ServerKey, ParseError> {
        let via = req.top_via()?;
        match via.branch() {
            Some(b) if b.starts_with(MAGIC_COOKIE) => Ok(ServerKey::Rfc3261 {
                branch: SmolStr::new(b),
                sent_by: via.sent_by_key(),
                method,
            }),
            _ => {
                let cseq = req.cseq()?;
                Ok(ServerKey::Rfc2543 {
                    call_id: SmolStr::new(req.call_id()?),
                    from_tag: SmolStr::new(req.headers().from_tag()?.unwrap_or_default()),
                    cseq: cseq.seq,
                    via: smol_str::format_smolstr!("{via}"),
                    method,
                })
            }
        }
    }
}
