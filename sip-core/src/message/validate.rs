//! Which header values must parse for a message to be accepted, and the typed getters the
//! transaction and dialog layers use.
//!
//! [`Message::validate`](super::Message::validate) checks the syntax of the headers the stack
//! acts on (RFC 4475 §3.1.2 shows what goes wrong in practice); unknown headers and headers
//! nobody reads are left alone, so one odd `Alert-Info` cannot cost a call.
//! [`Request::check_required`] adds the application-layer rules of RFC 3261 §8.1.1 and
//! §7.3.1 (mandatory headers present, single-valued headers not repeated) that a UAS applies
//! before acting on a request.

use super::{
    CSeq, Contact, ContentType, Date, Expires, HeaderName, Headers, MaxForwards, NameAddr,
    ParseError, Request, Response, Uri, ValueError, Via, parse_call_id, tag_param,
};

fn bad(name: HeaderName, error: ValueError) -> ParseError {
    ParseError::Header {
        name: name.as_str(),
        error,
    }
}

impl Headers {
    /// The first Via value: the top of the first Via line's comma list. Framing parsed it
    /// already, so this is a lookup unless the Via lines were edited since.
    pub fn top_via(&self) -> Result<Via<'_>, ParseError> {
        self.top_via_value()
            .ok_or(ParseError::Missing { name: "Via" })?
            .map_err(|e| bad(HeaderName::Via, e))
    }

    /// Every Via value in order, across lines and comma lists.
    pub fn vias(&self) -> impl Iterator<Item = Result<Via<'_>, ParseError>> + '_ {
        self.get_all(HeaderName::Via)
            .flat_map(Via::parse_list)
            .map(|r| r.map_err(|e| bad(HeaderName::Via, e)))
    }

    /// CSeq.
    pub fn cseq(&self) -> Result<CSeq<'_>, ParseError> {
        self.one(HeaderName::CSeq, CSeq::parse)
    }

    /// Call-ID.
    pub fn call_id(&self) -> Result<&str, ParseError> {
        self.one(HeaderName::CallId, parse_call_id)
    }

    /// From.
    pub fn from(&self) -> Result<NameAddr<'_>, ParseError> {
        self.one(HeaderName::From, NameAddr::parse)
    }

    /// To.
    pub fn to(&self) -> Result<NameAddr<'_>, ParseError> {
        self.one(HeaderName::To, NameAddr::parse)
    }

    /// The From tag, read without parsing the address (see [`tag_param`]).
    pub fn from_tag(&self) -> Result<Option<&str>, ParseError> {
        self.one(HeaderName::From, tag_param)
    }

    /// The To tag, read without parsing the address (see [`tag_param`]).
    pub fn to_tag(&self) -> Result<Option<&str>, ParseError> {
        self.one(HeaderName::To, tag_param)
    }

    fn one<'a, T>(
        &'a self,
        name: HeaderName,
        parse: impl FnOnce(&'a str) -> Result<T, ValueError>,
    ) -> Result<T, ParseError> {
        let v = self.get(name).ok_or(ParseError::Missing {
            name: name.as_str(),
        })?;
        parse(v).map_err(|e| bad(name, e))
    }

    fn check_present(&self, depth: Depth) -> Result<(), ParseError> {
        // The top Via was checked when the message was framed; the others (a proxy's) here.
        let mut vias = self.get_all(HeaderName::Via).peekable();
        if self.top_via_checked()
            && vias
                .peek()
                .is_some_and(|line| memchr::memchr(b',', line.as_bytes()).is_none())
        {
            vias.next();
        }
        for line in vias {
            for v in Via::parse_list(line) {
                v.map_err(|e| bad(HeaderName::Via, e))?;
            }
        }
        for name in [HeaderName::From, HeaderName::To] {
            for v in self.get_all(name) {
                match depth {
                    Depth::Full => NameAddr::parse(v).map(drop),
                    Depth::Keys => tag_param(v).map(drop),
                }
                .map_err(|e| bad(name, e))?;
            }
        }
        for v in self.get_all(HeaderName::CallId) {
            parse_call_id(v).map_err(|e| bad(HeaderName::CallId, e))?;
        }
        for v in self.get_all(HeaderName::CSeq) {
            CSeq::parse(v).map_err(|e| bad(HeaderName::CSeq, e))?;
        }
        for v in self.get_all(HeaderName::MaxForwards) {
            MaxForwards::parse(v).map_err(|e| bad(HeaderName::MaxForwards, e))?;
        }
        for v in self.get_all(HeaderName::Contact) {
            Contact::parse(v).map_err(|e| bad(HeaderName::Contact, e))?;
        }
        for name in [HeaderName::Route, HeaderName::RecordRoute] {
            for v in self.get_all(name) {
                for r in NameAddr::parse_list(v) {
                    r.map_err(|e| bad(name, e))?;
                }
            }
        }
        for v in self.get_all(HeaderName::Expires) {
            Expires::parse(v).map_err(|e| bad(HeaderName::Expires, e))?;
        }
        for v in self.get_all(HeaderName::ContentType) {
            ContentType::parse(v).map_err(|e| bad(HeaderName::ContentType, e))?;
        }
        for v in self.get_all(HeaderName::Date) {
            Date::parse(v).map_err(|e| bad(HeaderName::Date, e))?;
        }
        Ok(())
    }
}

/// How much of From and To a check reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Depth {
    /// The whole address, URI included: what [`Message::validate`] promises.
    ///
    /// [`Message::validate`]: super::Message::validate
    Full,
    /// The tags and the address's bounds (quotes and `<…>` balanced): what the transaction and
    /// dialog layers read. The addresses themselves are carried as text and parsed, with a
    /// 400 naming the header, by the layer that needs a URI from them.
    Keys,
}

pub(super) fn request(r: &Request, depth: Depth) -> Result<(), ParseError> {
    Uri::parse_request_uri(r.uri()).map_err(ParseError::RequestUri)?;
    r.headers.check_present(depth)?;
    if let Some(v) = r.headers.get(HeaderName::CSeq) {
        let cseq = CSeq::parse(v).map_err(|e| bad(HeaderName::CSeq, e))?;
        if cseq.method != r.method().as_str() {
            return Err(ParseError::CSeqMethod);
        }
    }
    Ok(())
}

pub(super) fn response(r: &Response, depth: Depth) -> Result<(), ParseError> {
    r.headers.check_present(depth)
}

impl Request {
    /// RFC 3261 §8.1.1 and §7.3.1 at the application layer: To, From, Call-ID, CSeq and Via
    /// are present, and the headers that may appear once do (RFC 4475 §3.3.1 insuf,
    /// §3.3.9 multi01, §3.3.10 mcl01). A UAS answers a failure with 400.
    pub fn check_required(&self) -> Result<(), ParseError> {
        for name in [
            HeaderName::To,
            HeaderName::From,
            HeaderName::CallId,
            HeaderName::CSeq,
            HeaderName::Via,
        ] {
            if !self.headers.contains(name) {
                return Err(ParseError::Missing {
                    name: name.as_str(),
                });
            }
        }
        for name in HeaderName::ALL.into_iter().filter(|n| n.is_single()) {
            if self.headers.count(name) > 1 {
                return Err(ParseError::Repeated {
                    name: name.as_str(),
                });
            }
        }
        Ok(())
    }

    /// The Request-URI, parsed.
    pub fn parsed_uri(&self) -> Result<Uri<'_>, ParseError> {
        Uri::parse_request_uri(self.uri()).map_err(ParseError::RequestUri)
    }
}
