//! Which header values must parse for a message to be accepted, and the typed getters the
//! transaction and dialog layers use.
//!
//! [`Message::validate`](super::Message::validate) checks the syntax of the headers the stack
//! acts on (RFC 4475 §3.1.2 shows what goes wrong in practice); unknown headers and headers
//! nobody reads are left alone, so one odd `Alert-Info` cannot cost a call.
//! [`Request::check_required`] adds the application-layer rules of RFC 3261 §8.1.1 and
//! §7.3.1 (mandatory headers present, single-valued headers not repeated) that a UAS applies
//! before acting on a request.

use super::keys::{self, Span};
use super::{
    CSeq, Contact, ContentType, Date, Expires, HeaderName, Headers, MaxForwards, NameAddr,
    ParseError, Request, Response, Scheme, Uri, ValueError, Via, parse_call_id, tag_param,
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
        let cached = self.keys().top_via;
        self.one(HeaderName::Via, |line| {
            keys::read(cached, line, Via::from_spans, keys::first_via)
        })
    }

    /// Every Via value in order, across lines and comma lists.
    pub fn vias(&self) -> impl Iterator<Item = Result<Via<'_>, ParseError>> + '_ {
        self.get_all(HeaderName::Via)
            .flat_map(Via::parse_list)
            .map(|r| r.map_err(|e| bad(HeaderName::Via, e)))
    }

    /// CSeq.
    pub fn cseq(&self) -> Result<CSeq<'_>, ParseError> {
        let cached = self.keys().cseq;
        self.one(HeaderName::CSeq, |line| {
            let from_cache = |line, (seq, method): (u32, Span)| CSeq {
                seq,
                method: method.get(line),
            };
            keys::read(cached, line, from_cache, CSeq::parse)
        })
    }

    /// Call-ID.
    pub fn call_id(&self) -> Result<&str, ParseError> {
        let cached = self.keys().call_id;
        self.one(HeaderName::CallId, |line| {
            keys::read(cached, line, |line, ()| line, parse_call_id)
        })
    }

    /// The first Contact's URI as written, the remote target a dialog takes (RFC 3261
    /// §12.1); `None` without a Contact. Framing checked the line and found it; a `*`
    /// names no target and is refused here.
    pub(crate) fn contact_target(&self) -> Result<Option<&str>, ParseError> {
        let Some(line) = self.get(HeaderName::Contact) else {
            return Ok(None);
        };
        let read = |line, span: Option<Span>| span.map(|s| s.get(line));
        let target = keys::read(self.keys().contact, line, read, keys::contact_span_text)
            .map_err(|e| bad(HeaderName::Contact, e))?;
        target.map(Some).ok_or_else(|| {
            bad(
                HeaderName::Contact,
                ValueError::new("'*' names no target", 0),
            )
        })
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
        let cached = self.keys().from_tag;
        self.one(HeaderName::From, |line| {
            keys::read(cached, line, read_tag, tag_param)
        })
    }

    /// The To tag, read without parsing the address (see [`tag_param`]).
    pub fn to_tag(&self) -> Result<Option<&str>, ParseError> {
        let cached = self.keys().to_tag;
        self.one(HeaderName::To, |line| {
            keys::read(cached, line, read_tag, tag_param)
        })
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

    /// One pass over the lines: each header the stack acts on must parse. The first line of
    /// each key header was parsed by framing, and only its verdict is read here.
    fn check_present(&self, depth: Depth) -> Result<(), ParseError> {
        let keys = self.keys();
        let mut first = [true; keys::KEYED];
        for (name, value) in self.known_lines() {
            let slot = keys::Keys::slot(name);
            let is_first = slot.is_some_and(|i| std::mem::replace(&mut first[i], false));
            let known_good = is_first && keys.checked(name);
            let checked = match name {
                // A framed Via key covers its line only when the line holds one value.
                HeaderName::Via
                    if known_good && memchr::memchr(b',', value().as_bytes()).is_none() =>
                {
                    Ok(())
                }
                HeaderName::Via => Via::parse_list(value()).try_for_each(|r| r.map(drop)),
                HeaderName::From | HeaderName::To => match depth {
                    Depth::Full => NameAddr::parse(value()).map(drop),
                    Depth::Tags | Depth::Keys if known_good => Ok(()),
                    Depth::Tags | Depth::Keys => tag_param(value()).map(drop),
                },
                HeaderName::CallId | HeaderName::CSeq if known_good => Ok(()),
                HeaderName::CallId => parse_call_id(value()).map(drop),
                HeaderName::CSeq => CSeq::parse(value()).map(drop),
                HeaderName::MaxForwards => MaxForwards::parse(value()).map(drop),
                // Left to the layer that reads them, which answers 400 naming the header.
                HeaderName::Route | HeaderName::RecordRoute if depth == Depth::Keys => Ok(()),
                HeaderName::Contact if known_good => Ok(()),
                HeaderName::Contact => Contact::parse(value()).map(drop),
                HeaderName::Route | HeaderName::RecordRoute => {
                    NameAddr::parse_list(value()).try_for_each(|r| r.map(drop))
                }
                HeaderName::Expires => Expires::parse(value()).map(drop),
                HeaderName::ContentType => ContentType::parse(value()).map(drop),
                HeaderName::Date => Date::parse(value()).map(drop),
                _ => Ok(()),
            };
            checked.map_err(|e| bad(name, e))?;
        }
        Ok(())
    }
}

fn read_tag(line: &str, tag: Option<Span>) -> Option<&str> {
    tag.map(|t| t.get(line))
}

/// How much of From and To a check reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Depth {
    /// The whole address, URI included: what [`Message::validate`] promises.
    ///
    /// [`Message::validate`]: super::Message::validate
    Full,
    /// The tags and the address's outline (see [`tag_param`]): what the transaction and
    /// dialog layers read. The addresses themselves are carried as text and parsed, with a
    /// 400 naming the header, by the layer that needs a URI from them.
    Tags,
    /// [`Depth::Tags`], and Route and Record-Route not read at all: a request's route
    /// headers are checked by the layer that reads them (the dialog, when a request creates
    /// one), which answers 400 naming the header. A request nothing reads them from (a BYE,
    /// a MESSAGE) is not refused for them.
    Keys,
}

pub(super) fn request(r: &Request, depth: Depth) -> Result<(), ParseError> {
    Uri::parse_request_uri(r.uri()).map_err(ParseError::RequestUri)?;
    r.headers.check_present(depth)?;
    if r.headers.contains(HeaderName::CSeq) {
        let cseq = r.headers.cseq()?;
        if cseq.method != r.method().as_str() {
            return Err(ParseError::CSeqMethod);
        }
    }
    Ok(())
}

pub(super) fn response(r: &Response, depth: Depth) -> Result<(), ParseError> {
    r.headers.check_present(depth)
}

// `check_required` keeps a bit per known name in a `u128`.
const _: () = {
    let mut i = 0;
    while i < HeaderName::ALL.len() {
        assert!((HeaderName::ALL[i] as u8) < 128);
        i += 1;
    }
};

impl Request {
    /// RFC 3261 §8.1.1 and §7.3.1 at the application layer: To, From, Call-ID, CSeq and Via
    /// are present, and the headers that may appear once do (RFC 4475 §3.3.1 insuf,
    /// §3.3.9 multi01, §3.3.10 mcl01). A UAS answers a failure with 400.
    pub fn check_required(&self) -> Result<(), ParseError> {
        // One pass over the lines: every known name is a bit (there are fewer than 128).
        let bit = |n: HeaderName| 1u128 << (n as u8);
        let (mut seen, mut repeated) = (0u128, 0u128);
        for name in self.headers.names().flatten() {
            if name.is_single() && seen & bit(name) != 0 {
                repeated |= bit(name);
            }
            seen |= bit(name);
        }
        for name in [
            HeaderName::To,
            HeaderName::From,
            HeaderName::CallId,
            HeaderName::CSeq,
            HeaderName::Via,
        ] {
            if seen & bit(name) == 0 {
                return Err(ParseError::Missing {
                    name: name.as_str(),
                });
            }
        }
        if repeated == 0 {
            return Ok(());
        }
        // Named in the order of `HeaderName::ALL`, as before.
        match HeaderName::ALL
            .into_iter()
            .find(|n| repeated & bit(*n) != 0)
        {
            Some(name) => Err(ParseError::Repeated {
                name: name.as_str(),
            }),
            None => Ok(()),
        }
    }

    /// The Request-URI's scheme, read from its text without parsing the rest: enough for
    /// the layers that ask only whether a request came to a `sips:` URI or one of ours, on
    /// a request whose URI a check has already parsed.
    pub fn scheme(&self) -> Scheme<'_> {
        let uri = self.uri();
        let end = memchr::memchr(b':', uri.as_bytes()).unwrap_or(uri.len());
        Scheme::from_str(&uri[..end])
    }

    /// The Request-URI, parsed.
    pub fn parsed_uri(&self) -> Result<Uri<'_>, ParseError> {
        Uri::parse_request_uri(self.uri()).map_err(ParseError::RequestUri)
    }
}
