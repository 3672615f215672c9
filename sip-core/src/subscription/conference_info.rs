//! The `conference` event package body (RFC 4575): who is in a conference room. A focus
//! sends the full document to each subscriber of the room when someone joins or leaves.
//!
//! ```text
//! <conference-info xmlns="urn:ietf:params:xml:ns:conference-info"
//!     entity="sip:room-sync@example.com" state="full" version="2">
//!   <conference-description><subject>sync</subject></conference-description>
//!   <conference-state><user-count>1</user-count></conference-state>
//!   <users>
//!     <user entity="sip:alice@example.com" state="full">
//!       <display-text>Alice</display-text>
//!       <endpoint entity="sip:alice@example.com"><status>connected</status></endpoint>
//!     </user>
//!   </users>
//! </conference-info>
//! ```
//!
//! [`ConferenceInfo::parse`] never panics; `version` and `state` are required (a
//! subscriber orders documents by version, RFC 4575 §4.1), the rest is read leniently.
//!
//! ```
//! use sansip_core::subscription::conference_info::{ConferenceInfo, ConferenceUser};
//!
//! let mut info = ConferenceInfo::new("sip:room-sync@example.com", 2);
//! info.subject = Some("sync".into());
//! info.users.push(ConferenceUser::connected("sip:alice@example.com", Some("Alice")));
//! let back = ConferenceInfo::parse(info.to_xml().as_bytes()).unwrap();
//! assert_eq!((back.version, &back.subject, &back.users), (2, &info.subject, &info.users));
//! assert_eq!(back.user_count, Some(1), "written from the users listed");
//! ```

use std::fmt::Write;

use super::xml::{self, XmlBodyError};

/// The media type of the body.
pub const CONTENT_TYPE: &str = "application/conference-info+xml";

/// The package name, for the Event header.
pub const PACKAGE: &str = "conference";

/// One participant of the conference (RFC 4575 §5.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConferenceUser {
    /// Its URI.
    pub entity: String,
    /// Its display name.
    pub display: Option<String>,
    /// Its endpoint's status: `connected`, `disconnected`, `on-hold`… (§5.7.1).
    pub status: String,
}

impl ConferenceUser {
    /// A participant in the room.
    pub fn connected(entity: impl Into<String>, display: Option<&str>) -> Self {
        Self {
            entity: entity.into(),
            display: display.map(str::to_string),
            status: "connected".into(),
        }
    }
}

/// A `conference-info` document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConferenceInfo {
    /// The conference's URI.
    pub entity: String,
    /// Grows by one with each document for the same subscription.
    pub version: u32,
    /// A whole document (`full`), or changes to the last one (`partial`).
    pub full: bool,
    /// The conference's subject.
    pub subject: Option<String>,
    /// How many are in it (`<user-count>`, RFC 4575 §5.5.1), as read; a document written
    /// counts its `users`.
    pub user_count: Option<u32>,
    /// Who is in it.
    pub users: Vec<ConferenceUser>,
}

impl ConferenceInfo {
    /// A full document for conference `entity`, with no users yet.
    pub fn new(entity: impl Into<String>, version: u32) -> Self {
        Self {
            entity: entity.into(),
            version,
            full: true,
            subject: None,
            user_count: None,
            users: Vec::new(),
        }
    }

    /// Reads a document.
    pub fn parse(body: &[u8]) -> Result<Self, XmlBodyError> {
        let root = xml::parse_root(body, "conference-info")?;
        let version = root
            .attr("version")
            .and_then(|v| v.trim().parse().ok())
            .ok_or(XmlBodyError::MissingAttribute {
                element: "conference-info",
                attribute: "version",
            })?;
        let full = match root.attr("state") {
            Some(s) if s.eq_ignore_ascii_case("full") => true,
            Some(s) if s.eq_ignore_ascii_case("partial") => false,
            _ => {
                return Err(XmlBodyError::MissingAttribute {
                    element: "conference-info",
                    attribute: "state",
                });
            }
        };
        let users = root
            .child("users")
            .map(|u| {
                u.all("user")
                    .map(|user| ConferenceUser {
                        entity: user.attr("entity").unwrap_or_default().to_string(),
                        display: user.child_text("display-text").map(str::to_string),
                        status: user
                            .child("endpoint")
                            .and_then(|e| e.child_text("status"))
                            .unwrap_or("connected")
                            .to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(ConferenceInfo {
            entity: root.attr("entity").unwrap_or_default().to_string(),
            version,
            full,
            subject: root
                .child("conference-description")
                .and_then(|d| d.child_text("subject"))
                .map(str::to_string),
            user_count: root
                .child("conference-state")
                .and_then(|s| s.child_text("user-count"))
                .and_then(|n| n.trim().parse().ok()),
            users,
        })
    }

    /// The document as XML; `user-count` is the number of users listed.
    pub fn to_xml(&self) -> String {
        let mut s = String::from(concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            "\n",
            r#"<conference-info xmlns="urn:ietf:params:xml:ns:conference-info""#,
        ));
        let _ = writeln!(
            s,
            r#" entity="{}" state="{}" version="{}">"#,
            xml::escape(&self.entity),
            if self.full { "full" } else { "partial" },
            self.version
        );
        if let Some(subject) = &self.subject {
            let _ = writeln!(
                s,
                "<conference-description><subject>{}</subject></conference-description>",
                xml::escape(subject)
            );
        }
        let _ = writeln!(
            s,
            "<conference-state><user-count>{}</user-count></conference-state>",
            self.users.len()
        );
        s.push_str("<users>\n");
        for u in &self.users {
            let entity = xml::escape(&u.entity);
            let _ = write!(s, r#"<user entity="{entity}" state="full">"#);
            if let Some(d) = &u.display {
                let _ = write!(s, "<display-text>{}</display-text>", xml::escape(d));
            }
            let _ = writeln!(
                s,
                r#"<endpoint entity="{entity}"><status>{}</status></endpoint></user>"#,
                xml::escape(&u.status)
            );
        }
        s.push_str("</users>\n</conference-info>\n");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_from_rfc_4575_reads() {
        // RFC 4575 §6's example, shortened to what a participant list shows.
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<conference-info xmlns="urn:ietf:params:xml:ns:conference-info"
    entity="sips:conf233@example.com" state="full" version="1">
  <conference-description><subject>Agenda: This month's goals</subject></conference-description>
  <conference-state><user-count>33</user-count></conference-state>
  <users>
    <user entity="sip:bob@example.com" state="full">
      <display-text>Bob Hoskins</display-text>
      <endpoint entity="sip:bob@pc33.example.com"><status>connected</status></endpoint>
    </user>
    <user entity="sip:alice@example.com" state="full">
      <endpoint entity="sip:alice@pc33.example.com"><status>on-hold</status></endpoint>
    </user>
  </users>
</conference-info>"#;
        let info = ConferenceInfo::parse(body).unwrap();
        assert_eq!((info.version, info.full), (1, true));
        assert_eq!(info.entity, "sips:conf233@example.com");
        assert_eq!(info.subject.as_deref(), Some("Agenda: This month's goals"));
        assert_eq!(info.user_count, Some(33));
        assert_eq!(info.users.len(), 2);
        assert_eq!(info.users[0].display.as_deref(), Some("Bob Hoskins"));
        assert_eq!(info.users[1].status, "on-hold");
    }

    #[test]
    fn what_is_not_a_conference_document_is_an_error() {
        for bad in [
            &b"<dialog-info version=\"1\" state=\"full\"/>"[..],
            b"<conference-info state=\"full\"/>",
            b"<conference-info version=\"1\"/>",
            b"<conference-info",
            b"",
        ] {
            assert!(
                ConferenceInfo::parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn names_with_markup_are_escaped() {
        let mut info = ConferenceInfo::new("sip:room-a&b@example.com", 3);
        info.users.push(ConferenceUser::connected(
            "sip:x@example.com",
            Some("<Eve> & \"co\""),
        ));
        let back = ConferenceInfo::parse(info.to_xml().as_bytes()).unwrap();
        assert_eq!(back.entity, "sip:room-a&b@example.com");
        assert_eq!(back.users[0].display.as_deref(), Some("<Eve> & \"co\""));
    }
}
