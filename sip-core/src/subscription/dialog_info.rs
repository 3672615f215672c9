//! The `dialog` event package body (RFC 4235), behind the busy lamp field of desk
//! phones: a user's calls and where each stands.
//!
//! ```text
//! <dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="3" state="full"
//!     entity="sip:alice@example.com">
//!   <dialog id="d1" call-id="a84b4c76e66710" local-tag="1928301774" direction="initiator">
//!     <state>confirmed</state>
//!     <remote><identity>sip:bob@example.com</identity></remote>
//!   </dialog>
//! </dialog-info>
//! ```
//!
//! [`DialogInfo::parse`] never panics; `version` and `state` are required (a subscriber
//! orders documents by version and merges partial ones, RFC 4235 §4.1), the rest is
//! read leniently.

use std::fmt::Write;

use super::xml::{self, Element, XmlBodyError};

/// The media type of the body.
pub const CONTENT_TYPE: &str = "application/dialog-info+xml";

/// Where one dialog stands (RFC 4235 §3.7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryState {
    /// An INVITE went out or came in; no provisional yet.
    Trying,
    /// A provisional without a To tag.
    Proceeding,
    /// Ringing: an early dialog.
    Early,
    /// Answered.
    Confirmed,
    /// Over.
    Terminated,
}

impl EntryState {
    /// The token written in `<state>`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trying => "trying",
            Self::Proceeding => "proceeding",
            Self::Early => "early",
            Self::Confirmed => "confirmed",
            Self::Terminated => "terminated",
        }
    }

    fn from_token(t: &str) -> Option<Self> {
        [
            Self::Trying,
            Self::Proceeding,
            Self::Early,
            Self::Confirmed,
            Self::Terminated,
        ]
        .into_iter()
        .find(|s| s.as_str().eq_ignore_ascii_case(t))
    }
}

/// Whether the user placed the call or received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The user called (sent the INVITE).
    Initiator,
    /// The user was called.
    Recipient,
}

impl Direction {
    /// The token written in `direction`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initiator => "initiator",
            Self::Recipient => "recipient",
        }
    }
}

/// One end of a dialog: who (`identity`) and where (`target`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Participant {
    /// The URI, e.g. `sip:bob@example.com`.
    pub identity: String,
    /// Its display name, when given.
    pub display: Option<String>,
    /// The contact (`<target uri=…>`), when given.
    pub target: Option<String>,
}

/// One dialog of the user (RFC 4235 §4.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialogEntry {
    /// The entry's `id`, stable for the dialog's life.
    pub id: String,
    /// The SIP Call-ID, when the notifier tells it.
    pub call_id: Option<String>,
    /// The user's tag.
    pub local_tag: Option<String>,
    /// The peer's tag.
    pub remote_tag: Option<String>,
    /// Who called.
    pub direction: Option<Direction>,
    /// Where it stands.
    pub state: EntryState,
    /// Why it got there (`cancelled`, `rejected`, `replaced`, `local-bye`…).
    pub event: Option<String>,
    /// The response code that ended or moved it.
    pub code: Option<u16>,
    /// Seconds since it was created.
    pub duration: Option<u64>,
    /// The user's end.
    pub local: Option<Participant>,
    /// The peer's end.
    pub remote: Option<Participant>,
}

impl DialogEntry {
    /// An entry `id` in `state`, nothing else known yet.
    pub fn new(id: impl Into<String>, state: EntryState) -> Self {
        Self {
            id: id.into(),
            call_id: None,
            local_tag: None,
            remote_tag: None,
            direction: None,
            state,
            event: None,
            code: None,
            duration: None,
            local: None,
            remote: None,
        }
    }
}

/// A dialog-info document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialogInfo {
    /// Counts the documents of one subscription, from 0 (RFC 4235 §4.1).
    pub version: u32,
    /// `true` for the full state, `false` for a partial one (changes only).
    pub full: bool,
    /// The user whose dialogs these are.
    pub entity: String,
    /// The dialogs.
    pub dialogs: Vec<DialogEntry>,
}

impl DialogInfo {
    /// Whether any dialog is ringing or up: the lamp of a busy lamp field.
    pub fn busy(&self) -> bool {
        self.dialogs
            .iter()
            .any(|d| d.state != EntryState::Terminated)
    }

    /// Parses a body.
    ///
    /// ```
    /// use sansip_core::subscription::dialog_info::{DialogInfo, EntryState};
    ///
    /// let d = DialogInfo::parse(br#"<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info"
    ///     version="1" state="full" entity="sip:alice@example.com">
    ///   <dialog id="x" direction="recipient"><state>early</state></dialog>
    /// </dialog-info>"#).unwrap();
    /// assert_eq!(d.dialogs[0].state, EntryState::Early);
    /// assert!(d.busy());
    /// ```
    pub fn parse(body: &[u8]) -> Result<Self, XmlBodyError> {
        let root = xml::parse_root(body, "dialog-info")?;
        let version = root
            .attr("version")
            .and_then(|v| v.trim().parse().ok())
            .ok_or(XmlBodyError::MissingAttribute {
                element: "dialog-info",
                attribute: "version",
            })?;
        let full = match root.attr("state") {
            Some(s) if s.eq_ignore_ascii_case("full") => true,
            Some(s) if s.eq_ignore_ascii_case("partial") => false,
            _ => {
                return Err(XmlBodyError::MissingAttribute {
                    element: "dialog-info",
                    attribute: "state",
                });
            }
        };
        let mut info = DialogInfo {
            version,
            full,
            entity: root.attr("entity").unwrap_or_default().to_string(),
            dialogs: Vec::new(),
        };
        for d in root.all("dialog") {
            // A dialog without a state we know says nothing a lamp can show.
            let Some(state) = d
                .child("state")
                .and_then(|s| EntryState::from_token(s.text()))
            else {
                continue;
            };
            let st = d.child("state");
            info.dialogs.push(DialogEntry {
                id: d.attr("id").unwrap_or_default().to_string(),
                call_id: d.attr("call-id").map(str::to_string),
                local_tag: d.attr("local-tag").map(str::to_string),
                remote_tag: d.attr("remote-tag").map(str::to_string),
                direction: match d.attr("direction") {
                    Some(x) if x.eq_ignore_ascii_case("initiator") => Some(Direction::Initiator),
                    Some(x) if x.eq_ignore_ascii_case("recipient") => Some(Direction::Recipient),
                    _ => None,
                },
                state,
                event: st.and_then(|s| s.attr("event")).map(str::to_string),
                code: st
                    .and_then(|s| s.attr("code"))
                    .and_then(|c| c.trim().parse().ok()),
                duration: d.child_text("duration").and_then(|t| t.parse().ok()),
                local: d.child("local").map(participant),
                remote: d.child("remote").map(participant),
            });
        }
        Ok(info)
    }

    /// The document as XML.
    pub fn to_xml(&self) -> String {
        let mut s = String::from(concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            "\n",
            r#"<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info""#,
        ));
        let _ = writeln!(
            s,
            r#" version="{}" state="{}" entity="{}">"#,
            self.version,
            if self.full { "full" } else { "partial" },
            xml::escape(&self.entity)
        );
        for d in &self.dialogs {
            let _ = write!(s, r#"<dialog id="{}""#, xml::escape(&d.id));
            for (name, v) in [
                ("call-id", &d.call_id),
                ("local-tag", &d.local_tag),
                ("remote-tag", &d.remote_tag),
            ] {
                if let Some(v) = v {
                    let _ = write!(s, r#" {name}="{}""#, xml::escape(v));
                }
            }
            if let Some(dir) = d.direction {
                let _ = write!(s, r#" direction="{}""#, dir.as_str());
            }
            s.push_str("><state");
            if let Some(e) = &d.event {
                let _ = write!(s, r#" event="{}""#, xml::escape(e));
            }
            if let Some(c) = d.code {
                let _ = write!(s, r#" code="{c}""#);
            }
            let _ = write!(s, ">{}</state>", d.state.as_str());
            if let Some(t) = d.duration {
                let _ = write!(s, "<duration>{t}</duration>");
            }
            for (name, p) in [("local", &d.local), ("remote", &d.remote)] {
                let Some(p) = p else { continue };
                let _ = write!(s, "<{name}><identity");
                if let Some(n) = &p.display {
                    let _ = write!(s, r#" display="{}""#, xml::escape(n));
                }
                let _ = write!(s, ">{}</identity>", xml::escape(&p.identity));
                if let Some(t) = &p.target {
                    let _ = write!(s, r#"<target uri="{}"/>"#, xml::escape(t));
                }
                let _ = write!(s, "</{name}>");
            }
            s.push_str("</dialog>\n");
        }
        s.push_str("</dialog-info>\n");
        s
    }
}

fn participant(e: &Element) -> Participant {
    let identity = e.child("identity");
    Participant {
        identity: identity.map(Element::text).unwrap_or_default().to_string(),
        display: identity.and_then(|i| i.attr("display")).map(str::to_string),
        target: e
            .child("target")
            .and_then(|t| t.attr("uri"))
            .map(str::to_string),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_what_it_reads() {
        let mut d = DialogEntry::new("a\"1", EntryState::Terminated);
        d.call_id = Some("c@h".into());
        d.local_tag = Some("l".into());
        d.remote_tag = Some("r".into());
        d.direction = Some(Direction::Initiator);
        d.event = Some("rejected".into());
        d.code = Some(486);
        d.duration = Some(12);
        d.local = Some(Participant {
            identity: "sip:alice@example.com".into(),
            display: Some("Alice & co".into()),
            target: Some("sip:alice@192.0.2.1;transport=tcp".into()),
        });
        d.remote = Some(Participant {
            identity: "sip:bob@example.com".into(),
            ..Participant::default()
        });
        let info = DialogInfo {
            version: 7,
            full: false,
            entity: "sip:alice@example.com".into(),
            dialogs: vec![d, DialogEntry::new("b", EntryState::Confirmed)],
        };
        let back = DialogInfo::parse(info.to_xml().as_bytes()).unwrap();
        assert_eq!(back, info);
        assert!(back.busy());
    }

    #[test]
    fn version_and_state_are_required_and_unknown_states_skipped() {
        assert_eq!(
            DialogInfo::parse(br#"<dialog-info state="full"/>"#).err(),
            Some(XmlBodyError::MissingAttribute {
                element: "dialog-info",
                attribute: "version"
            })
        );
        assert!(DialogInfo::parse(br#"<dialog-info version="1"/>"#).is_err());
        let d = DialogInfo::parse(
            br#"<dialog-info version="0" state="full" entity="x">
                <dialog id="1"><state>bogus</state></dialog>
                <dialog id="2"><state>terminated</state></dialog></dialog-info>"#,
        )
        .unwrap();
        assert_eq!(d.dialogs.len(), 1);
        assert!(!d.busy());
    }
}
