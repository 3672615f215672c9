//! The `presence` event package body (RFC 3856): a PIDF document (RFC 3863), with the
//! person's activities and notes of RPID (RFC 4480) that desk phones and softphones show.
//!
//! ```text
//! <presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@example.com">
//!   <tuple id="t1"><status><basic>open</basic></status>
//!     <contact>sip:alice@192.0.2.1</contact><note>At my desk</note></tuple>
//!   <dm:person id="p1"><rpid:activities><rpid:on-the-phone/></rpid:activities></dm:person>
//! </presence>
//! ```
//!
//! [`Presence::parse`] is lenient where servers differ (prefixes, a tuple without a
//! status, elements it does not know) and never panics; [`Presence::to_xml`] writes what
//! Kamailio's presence server, Asterisk and SIP.js read.

use std::fmt::Write;

use super::xml::{self, Element, XmlBodyError};

/// The media type of the body.
pub const CONTENT_TYPE: &str = "application/pidf+xml";

/// A tuple's basic status (RFC 3863 §4.1.4): whether it can take communication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Basic {
    /// Willing and able to communicate.
    Open,
    /// Not.
    Closed,
}

impl Basic {
    /// The token written in `<basic>`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
        }
    }
}

/// One way of reaching the presentity (RFC 3863 §4.1.2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tuple {
    /// The tuple's `id`.
    pub id: String,
    /// Its basic status, when it gives one.
    pub basic: Option<Basic>,
    /// The contact address, e.g. `sip:alice@192.0.2.1`.
    pub contact: Option<String>,
    /// Free text notes.
    pub notes: Vec<String>,
    /// When it was last changed, as written (RFC 3339).
    pub timestamp: Option<String>,
}

/// A PIDF presence document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Presence {
    /// The presentity, e.g. `sip:alice@example.com` (or `pres:`).
    pub entity: String,
    /// Its tuples.
    pub tuples: Vec<Tuple>,
    /// The person's activities (RFC 4480 §3.2), as element names: `on-the-phone`,
    /// `away`, `busy`, `meeting`…; `other` gives its text instead.
    pub activities: Vec<String>,
    /// Notes of the document and of the person.
    pub notes: Vec<String>,
}

impl Presence {
    /// A document for `entity` with one tuple, open or closed, and an optional note:
    /// what a phone publishes for itself.
    ///
    /// ```
    /// use sansip_core::subscription::pidf::Presence;
    ///
    /// let me = Presence::basic("sip:alice@example.com", true, Some("At my desk"));
    /// let back = Presence::parse(me.to_xml().as_bytes()).unwrap();
    /// assert!(back.is_open());
    /// assert_eq!(back.note(), Some("At my desk"));
    /// ```
    pub fn basic(entity: impl Into<String>, open: bool, note: Option<&str>) -> Self {
        Self {
            entity: entity.into(),
            tuples: vec![Tuple {
                id: "t1".into(),
                basic: Some(if open { Basic::Open } else { Basic::Closed }),
                contact: None,
                notes: note.map(str::to_string).into_iter().collect(),
                timestamp: None,
            }],
            activities: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Adds an activity (`on-the-phone`, `away`, …).
    #[must_use]
    pub fn activity(mut self, activity: impl Into<String>) -> Self {
        self.activities.push(activity.into());
        self
    }

    /// Whether any tuple is open.
    pub fn is_open(&self) -> bool {
        self.tuples.iter().any(|t| t.basic == Some(Basic::Open))
    }

    /// The first note: the document's or person's, else a tuple's.
    pub fn note(&self) -> Option<&str> {
        self.notes
            .iter()
            .chain(self.tuples.iter().flat_map(|t| &t.notes))
            .map(String::as_str)
            .next()
    }

    /// Parses a body.
    ///
    /// ```
    /// use sansip_core::subscription::pidf::{Basic, Presence};
    ///
    /// let p = Presence::parse(br#"<?xml version="1.0"?>
    ///   <presence xmlns="urn:ietf:params:xml:ns:pidf"
    ///       xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
    ///       xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:bob@example.com">
    ///     <tuple id="a"><status><basic>closed</basic></status></tuple>
    ///     <dm:person id="p"><rpid:activities><rpid:away/></rpid:activities>
    ///       <dm:note>Lunch</dm:note></dm:person>
    ///   </presence>"#).unwrap();
    /// assert_eq!(p.tuples[0].basic, Some(Basic::Closed));
    /// assert_eq!(p.activities, ["away"]);
    /// assert_eq!(p.note(), Some("Lunch"));
    /// ```
    pub fn parse(body: &[u8]) -> Result<Self, XmlBodyError> {
        let root = xml::parse_root(body, "presence")?;
        let mut p = Presence {
            entity: root.attr("entity").unwrap_or_default().to_string(),
            ..Self::default()
        };
        for child in &root.children {
            match child.name.as_str() {
                "tuple" => p.tuples.push(tuple(child)),
                "note" => push_text(&mut p.notes, child),
                "person" => {
                    for a in child.all("activities") {
                        for act in &a.children {
                            let name = match act.name.as_str() {
                                "other" => act.text(),
                                // An activity is a word (RFC 4480 §3.2 names them all
                                // so); anything else is not one.
                                n if n.bytes().all(|b| {
                                    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
                                }) =>
                                {
                                    n
                                }
                                _ => "",
                            };
                            if !name.is_empty() {
                                p.activities.push(name.to_string());
                            }
                        }
                    }
                    for n in child.all("note") {
                        push_text(&mut p.notes, n);
                    }
                }
                _ => {}
            }
        }
        Ok(p)
    }

    /// The document as XML.
    pub fn to_xml(&self) -> String {
        let mut s = String::from(concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            "\n",
            r#"<presence xmlns="urn:ietf:params:xml:ns:pidf""#,
            r#" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model""#,
            r#" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid""#,
        ));
        let _ = writeln!(s, r#" entity="{}">"#, xml::escape(&self.entity));
        for t in &self.tuples {
            let _ = write!(s, r#"<tuple id="{}"><status>"#, xml::escape(&t.id));
            if let Some(b) = t.basic {
                let _ = write!(s, "<basic>{}</basic>", b.as_str());
            }
            s.push_str("</status>");
            if let Some(c) = &t.contact {
                let _ = write!(s, "<contact>{}</contact>", xml::escape(c));
            }
            for n in &t.notes {
                let _ = write!(s, "<note>{}</note>", xml::escape(n));
            }
            if let Some(ts) = &t.timestamp {
                let _ = write!(s, "<timestamp>{}</timestamp>", xml::escape(ts));
            }
            s.push_str("</tuple>\n");
        }
        if !self.activities.is_empty() || !self.notes.is_empty() {
            s.push_str(r#"<dm:person id="p1">"#);
            if !self.activities.is_empty() {
                s.push_str("<rpid:activities>");
                for a in &self.activities {
                    if is_activity_name(a) {
                        let _ = write!(s, "<rpid:{a}/>");
                    } else {
                        let _ = write!(s, "<rpid:other>{}</rpid:other>", xml::escape(a));
                    }
                }
                s.push_str("</rpid:activities>");
            }
            for n in &self.notes {
                let _ = write!(s, "<dm:note>{}</dm:note>", xml::escape(n));
            }
            s.push_str("</dm:person>\n");
        }
        s.push_str("</presence>\n");
        s
    }
}

/// Whether `a` can be written as an element name: the RPID activities are lower-case
/// words joined by `-`; anything else goes in `<rpid:other>`.
fn is_activity_name(a: &str) -> bool {
    !a.is_empty()
        && a != "other"
        && a.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
        && !a.starts_with('-')
}

fn push_text(to: &mut Vec<String>, e: &Element) {
    if !e.text().is_empty() {
        to.push(e.text().to_string());
    }
}

fn tuple(e: &Element) -> Tuple {
    let basic = e
        .child("status")
        .and_then(|s| s.child_text("basic"))
        .and_then(|b| {
            if b.eq_ignore_ascii_case("open") {
                Some(Basic::Open)
            } else if b.eq_ignore_ascii_case("closed") {
                Some(Basic::Closed)
            } else {
                None
            }
        });
    let mut t = Tuple {
        id: e.attr("id").unwrap_or_default().to_string(),
        basic,
        contact: e.child_text("contact").map(str::to_string),
        notes: Vec::new(),
        timestamp: e.child_text("timestamp").map(str::to_string),
    };
    for n in e.all("note") {
        push_text(&mut t.notes, n);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_what_it_reads_with_escapes_and_other_activities() {
        let mut p = Presence::basic("sip:a&b@example.com", false, Some("<gone>"))
            .activity("on-the-phone")
            .activity("Walking the dog");
        p.notes.push("Back at 5".into());
        p.tuples[0].contact = Some("sip:a@192.0.2.1".into());
        p.tuples[0].timestamp = Some("2026-12-05T10:00:00Z".into());
        let back = Presence::parse(p.to_xml().as_bytes()).unwrap();
        assert_eq!(back, p);
        assert!(!back.is_open());
        assert_eq!(back.note(), Some("Back at 5"));
    }

    #[test]
    fn reads_what_kamailio_and_phones_send_and_refuses_other_roots() {
        // Kamailio's presence server, aggregating two publications.
        let body = br#"<?xml version='1.0' encoding='UTF-8'?>
<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='sip:bob@example.com'>
  <tuple xmlns='urn:ietf:params:xml:ns:pidf' id='0x1'>
    <status><basic>OPEN</basic></status></tuple>
  <tuple id='0x2'><status/><note xml:lang="en">Idle</note></tuple>
</presence>"#;
        let p = Presence::parse(body).unwrap();
        assert_eq!(p.tuples.len(), 2);
        assert_eq!(p.tuples[0].basic, Some(Basic::Open));
        assert_eq!(p.tuples[1].basic, None);
        assert_eq!(p.note(), Some("Idle"));
        assert!(matches!(
            Presence::parse(b"<dialog-info/>"),
            Err(XmlBodyError::WrongRoot { .. })
        ));
    }
}
