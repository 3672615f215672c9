//! Header names: the canonical spelling, the compact forms (RFC 3261 §7.3.3) and a fast,
//! case-insensitive lookup.

use std::fmt;

/// A header name the stack knows. Names are case-insensitive and compact forms map to the same
/// variant (`v` is [`HeaderName::Via`]). Other names are still indexed and written back; look
/// them up by text with [`Headers::get_by_name`](super::Headers::get_by_name).
///
/// ```
/// use sansip_core::message::HeaderName;
/// assert_eq!(HeaderName::from_name("v"), Some(HeaderName::Via));
/// assert_eq!(HeaderName::from_name("call-id"), Some(HeaderName::CallId));
/// assert_eq!(HeaderName::CallId.as_str(), "Call-ID");
/// assert_eq!(HeaderName::from_name("X-Custom"), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
#[repr(u8)]
pub enum HeaderName {
    /// `Accept`.
    Accept,
    /// `Accept-Contact`. Compact form `a`.
    AcceptContact,
    /// `Accept-Encoding`.
    AcceptEncoding,
    /// `Accept-Language`.
    AcceptLanguage,
    /// `Alert-Info`.
    AlertInfo,
    /// `Allow`.
    Allow,
    /// `Allow-Events`. Compact form `u`.
    AllowEvents,
    /// `Authentication-Info`.
    AuthenticationInfo,
    /// `Authorization`.
    Authorization,
    /// `Call-ID`. Compact form `i`.
    CallId,
    /// `Call-Info`.
    CallInfo,
    /// `Contact`. Compact form `m`.
    Contact,
    /// `Content-Disposition`.
    ContentDisposition,
    /// `Content-Encoding`. Compact form `e`.
    ContentEncoding,
    /// `Content-Language`.
    ContentLanguage,
    /// `Content-Length`. Compact form `l`.
    ContentLength,
    /// `Content-Type`. Compact form `c`.
    ContentType,
    /// `CSeq`.
    CSeq,
    /// `Date`.
    Date,
    /// `Error-Info`.
    ErrorInfo,
    /// `Event`. Compact form `o`.
    Event,
    /// `Expires`.
    Expires,
    /// `From`. Compact form `f`.
    From,
    /// `Identity`. Compact form `y`.
    Identity,
    /// `In-Reply-To`.
    InReplyTo,
    /// `Max-Forwards`.
    MaxForwards,
    /// `MIME-Version`.
    MimeVersion,
    /// `Min-Expires`.
    MinExpires,
    /// `Min-SE`.
    MinSe,
    /// `Organization`.
    Organization,
    /// `P-Asserted-Identity`.
    PAssertedIdentity,
    /// `P-Preferred-Identity`.
    PPreferredIdentity,
    /// `Path`.
    Path,
    /// `Priority`.
    Priority,
    /// `Privacy`.
    Privacy,
    /// `Proxy-Authenticate`.
    ProxyAuthenticate,
    /// `Proxy-Authorization`.
    ProxyAuthorization,
    /// `Proxy-Require`.
    ProxyRequire,
    /// `RAck`.
    RAck,
    /// `Reason`.
    Reason,
    /// `Record-Route`.
    RecordRoute,
    /// `Refer-To`. Compact form `r`.
    ReferTo,
    /// `Referred-By`. Compact form `b`.
    ReferredBy,
    /// `Replaces`.
    Replaces,
    /// `Reply-To`.
    ReplyTo,
    /// `Require`.
    Require,
    /// `Retry-After`.
    RetryAfter,
    /// `Route`.
    Route,
    /// `RSeq`.
    RSeq,
    /// `Server`.
    Server,
    /// `Session-Expires`. Compact form `x`.
    SessionExpires,
    /// `SIP-ETag`.
    SipETag,
    /// `SIP-If-Match`.
    SipIfMatch,
    /// `Subject`. Compact form `s`.
    Subject,
    /// `Subscription-State`.
    SubscriptionState,
    /// `Supported`. Compact form `k`.
    Supported,
    /// `Timestamp`.
    Timestamp,
    /// `To`. Compact form `t`.
    To,
    /// `Unsupported`.
    Unsupported,
    /// `User-Agent`.
    UserAgent,
    /// `Via`. Compact form `v`.
    Via,
    /// `Warning`.
    Warning,
    /// `WWW-Authenticate`.
    WwwAuthenticate,
}

impl HeaderName {
    /// Every known name, in declaration order.
    pub const ALL: [HeaderName; 63] = [
        HeaderName::Accept,
        HeaderName::AcceptContact,
        HeaderName::AcceptEncoding,
        HeaderName::AcceptLanguage,
        HeaderName::AlertInfo,
        HeaderName::Allow,
        HeaderName::AllowEvents,
        HeaderName::AuthenticationInfo,
        HeaderName::Authorization,
        HeaderName::CallId,
        HeaderName::CallInfo,
        HeaderName::Contact,
        HeaderName::ContentDisposition,
        HeaderName::ContentEncoding,
        HeaderName::ContentLanguage,
        HeaderName::ContentLength,
        HeaderName::ContentType,
        HeaderName::CSeq,
        HeaderName::Date,
        HeaderName::ErrorInfo,
        HeaderName::Event,
        HeaderName::Expires,
        HeaderName::From,
        HeaderName::Identity,
        HeaderName::InReplyTo,
        HeaderName::MaxForwards,
        HeaderName::MimeVersion,
        HeaderName::MinExpires,
        HeaderName::MinSe,
        HeaderName::Organization,
        HeaderName::PAssertedIdentity,
        HeaderName::PPreferredIdentity,
        HeaderName::Path,
        HeaderName::Priority,
        HeaderName::Privacy,
        HeaderName::ProxyAuthenticate,
        HeaderName::ProxyAuthorization,
        HeaderName::ProxyRequire,
        HeaderName::RAck,
        HeaderName::Reason,
        HeaderName::RecordRoute,
        HeaderName::ReferTo,
        HeaderName::ReferredBy,
        HeaderName::Replaces,
        HeaderName::ReplyTo,
        HeaderName::Require,
        HeaderName::RetryAfter,
        HeaderName::Route,
        HeaderName::RSeq,
        HeaderName::Server,
        HeaderName::SessionExpires,
        HeaderName::SipETag,
        HeaderName::SipIfMatch,
        HeaderName::Subject,
        HeaderName::SubscriptionState,
        HeaderName::Supported,
        HeaderName::Timestamp,
        HeaderName::To,
        HeaderName::Unsupported,
        HeaderName::UserAgent,
        HeaderName::Via,
        HeaderName::Warning,
        HeaderName::WwwAuthenticate,
    ];

    /// The canonical spelling, as the writer emits it.
    pub const fn as_str(self) -> &'static str {
        match self {
            HeaderName::Accept => "Accept",
            HeaderName::AcceptContact => "Accept-Contact",
            HeaderName::AcceptEncoding => "Accept-Encoding",
            HeaderName::AcceptLanguage => "Accept-Language",
            HeaderName::AlertInfo => "Alert-Info",
            HeaderName::Allow => "Allow",
            HeaderName::AllowEvents => "Allow-Events",
            HeaderName::AuthenticationInfo => "Authentication-Info",
            HeaderName::Authorization => "Authorization",
            HeaderName::CallId => "Call-ID",
            HeaderName::CallInfo => "Call-Info",
            HeaderName::Contact => "Contact",
            HeaderName::ContentDisposition => "Content-Disposition",
            HeaderName::ContentEncoding => "Content-Encoding",
            HeaderName::ContentLanguage => "Content-Language",
            HeaderName::ContentLength => "Content-Length",
            HeaderName::ContentType => "Content-Type",
            HeaderName::CSeq => "CSeq",
            HeaderName::Date => "Date",
            HeaderName::ErrorInfo => "Error-Info",
            HeaderName::Event => "Event",
            HeaderName::Expires => "Expires",
            HeaderName::From => "From",
            HeaderName::Identity => "Identity",
            HeaderName::InReplyTo => "In-Reply-To",
            HeaderName::MaxForwards => "Max-Forwards",
            HeaderName::MimeVersion => "MIME-Version",
            HeaderName::MinExpires => "Min-Expires",
            HeaderName::MinSe => "Min-SE",
            HeaderName::Organization => "Organization",
            HeaderName::PAssertedIdentity => "P-Asserted-Identity",
            HeaderName::PPreferredIdentity => "P-Preferred-Identity",
            HeaderName::Path => "Path",
            HeaderName::Priority => "Priority",
            HeaderName::Privacy => "Privacy",
            HeaderName::ProxyAuthenticate => "Proxy-Authenticate",
            HeaderName::ProxyAuthorization => "Proxy-Authorization",
            HeaderName::ProxyRequire => "Proxy-Require",
            HeaderName::RAck => "RAck",
            HeaderName::Reason => "Reason",
            HeaderName::RecordRoute => "Record-Route",
            HeaderName::ReferTo => "Refer-To",
            HeaderName::ReferredBy => "Referred-By",
            HeaderName::Replaces => "Replaces",
            HeaderName::ReplyTo => "Reply-To",
            HeaderName::Require => "Require",
            HeaderName::RetryAfter => "Retry-After",
            HeaderName::Route => "Route",
            HeaderName::RSeq => "RSeq",
            HeaderName::Server => "Server",
            HeaderName::SessionExpires => "Session-Expires",
            HeaderName::SipETag => "SIP-ETag",
            HeaderName::SipIfMatch => "SIP-If-Match",
            HeaderName::Subject => "Subject",
            HeaderName::SubscriptionState => "Subscription-State",
            HeaderName::Supported => "Supported",
            HeaderName::Timestamp => "Timestamp",
            HeaderName::To => "To",
            HeaderName::Unsupported => "Unsupported",
            HeaderName::UserAgent => "User-Agent",
            HeaderName::Via => "Via",
            HeaderName::Warning => "Warning",
            HeaderName::WwwAuthenticate => "WWW-Authenticate",
        }
    }

    /// The compact form, if the name has one.
    pub const fn compact(self) -> Option<char> {
        match self {
            HeaderName::AcceptContact => Some('a'),
            HeaderName::AllowEvents => Some('u'),
            HeaderName::CallId => Some('i'),
            HeaderName::Contact => Some('m'),
            HeaderName::ContentEncoding => Some('e'),
            HeaderName::ContentLength => Some('l'),
            HeaderName::ContentType => Some('c'),
            HeaderName::Event => Some('o'),
            HeaderName::From => Some('f'),
            HeaderName::Identity => Some('y'),
            HeaderName::ReferTo => Some('r'),
            HeaderName::ReferredBy => Some('b'),
            HeaderName::SessionExpires => Some('x'),
            HeaderName::Subject => Some('s'),
            HeaderName::Supported => Some('k'),
            HeaderName::To => Some('t'),
            HeaderName::Via => Some('v'),
            _ => None,
        }
    }

    /// Looks a name up, ignoring case; compact forms included.
    pub fn from_name(name: &str) -> Option<HeaderName> {
        Self::from_bytes(name.as_bytes())
    }

    /// Like [`HeaderName::from_name`], over bytes. This runs once per header line, so it
    /// probes a table built at compile time instead of comparing against every name.
    #[inline]
    pub fn from_bytes(name: &[u8]) -> Option<HeaderName> {
        let (&first, &last) = (name.first()?, name.last()?);
        if name.len() == 1 {
            return Self::from_compact(first.to_ascii_lowercase());
        }
        let mut slot = name_hash(name.len(), first, last);
        loop {
            let index = NAME_TABLE[slot];
            if index == 0 {
                return None;
            }
            let i = usize::from(index) - 1;
            // Peers almost always send the canonical spelling: an exact compare settles it,
            // and folding case byte by byte is left for the rest.
            let text = NAME_TEXT[i];
            if text.len() == name.len() && (text == name || text.eq_ignore_ascii_case(name)) {
                return Some(HeaderName::ALL[i]);
            }
            slot = (slot + 1) % NAME_SLOTS;
        }
    }

    fn from_compact(c: u8) -> Option<HeaderName> {
        Some(match c {
            b'a' => HeaderName::AcceptContact,
            b'u' => HeaderName::AllowEvents,
            b'i' => HeaderName::CallId,
            b'm' => HeaderName::Contact,
            b'e' => HeaderName::ContentEncoding,
            b'l' => HeaderName::ContentLength,
            b'c' => HeaderName::ContentType,
            b'o' => HeaderName::Event,
            b'f' => HeaderName::From,
            b'y' => HeaderName::Identity,
            b'r' => HeaderName::ReferTo,
            b'b' => HeaderName::ReferredBy,
            b'x' => HeaderName::SessionExpires,
            b's' => HeaderName::Subject,
            b'k' => HeaderName::Supported,
            b't' => HeaderName::To,
            b'v' => HeaderName::Via,
            _ => return None,
        })
    }

    /// Whether RFC 3261 allows this header only once per message (§7.3.1): these cannot be
    /// combined into a comma list, so a repeat makes the message ambiguous.
    pub const fn is_single(self) -> bool {
        matches!(
            self,
            HeaderName::CallId
                | HeaderName::ContentLength
                | HeaderName::ContentType
                | HeaderName::CSeq
                | HeaderName::From
                | HeaderName::MaxForwards
                | HeaderName::To
        )
    }
}

/// Open-addressing table from [`name_hash`] to 1 + the index in [`HeaderName::ALL`]
/// (0 = empty). Four times more slots than names keeps probe chains at one or two.
const NAME_SLOTS: usize = 256;
static NAME_TABLE: [u8; NAME_SLOTS] = build_name_table();
/// The canonical spellings in [`HeaderName::ALL`] order, so a probe compares without a `match`.
static NAME_TEXT: [&[u8]; HeaderName::ALL.len()] = {
    let mut t: [&[u8]; HeaderName::ALL.len()] = [b""; HeaderName::ALL.len()];
    let mut i = 0;
    while i < t.len() {
        t[i] = HeaderName::ALL[i].as_str().as_bytes();
        i += 1;
    }
    t
};

/// Case-insensitive by construction: letters are folded with `| 0x20`, the same on both sides.
const fn name_hash(len: usize, first: u8, last: u8) -> usize {
    (len.wrapping_mul(7)
        ^ ((first | 0x20) as usize).wrapping_mul(31)
        ^ ((last | 0x20) as usize).wrapping_mul(131))
        % NAME_SLOTS
}

const fn build_name_table() -> [u8; NAME_SLOTS] {
    let mut table = [0u8; NAME_SLOTS];
    let mut i = 0;
    while i < HeaderName::ALL.len() {
        let name = HeaderName::ALL[i].as_str().as_bytes();
        let mut slot = name_hash(name.len(), name[0], name[name.len() - 1]);
        while table[slot] != 0 {
            slot = (slot + 1) % NAME_SLOTS;
        }
        table[slot] = (i + 1) as u8;
        i += 1;
    }
    table
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_round_trips_through_lookup() {
        for h in HeaderName::ALL {
            assert_eq!(HeaderName::from_name(h.as_str()), Some(h), "{h}");
            assert_eq!(
                HeaderName::from_name(&h.as_str().to_ascii_uppercase()),
                Some(h)
            );
            if let Some(c) = h.compact() {
                assert_eq!(HeaderName::from_name(&c.to_string()), Some(h));
                assert_eq!(
                    HeaderName::from_name(&c.to_ascii_uppercase().to_string()),
                    Some(h)
                );
            }
        }
    }

    #[test]
    fn unknown_names_are_not_known() {
        for n in ["", "X-Foo", "Vias", "q", "Call_ID"] {
            assert_eq!(HeaderName::from_name(n), None, "{n}");
        }
    }
}
