//! The XML the event packages carry (PIDF, dialog-info), read with `quick-xml` into a
//! small bounded tree, and written back with escaping.
//!
//! Names are compared by their local part: servers differ in the prefixes they bind
//! (`<dm:person>`, `<rpid:activities>`, or the default namespace), and no package here
//! has two elements of one local name in different namespaces where it matters.

use std::borrow::Cow;

use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

/// Bounds on a body, so a hostile one costs little: nesting and element count.
const MAX_DEPTH: usize = 32;
const MAX_ELEMENTS: usize = 4096;

/// Why an event body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum XmlBodyError {
    /// Not UTF-8 text.
    #[error("the body is not UTF-8 text")]
    NotText,
    /// Not well-formed XML.
    #[error("the body is not well-formed XML: {0}")]
    Malformed(String),
    /// Nested deeper, or with more elements, than any real document.
    #[error("the body is too large or too deeply nested")]
    TooLarge,
    /// Well-formed, but its root is not the package's.
    #[error("the body's root element is <{found}>, not <{expected}>")]
    WrongRoot {
        /// The package's root, e.g. `presence`.
        expected: &'static str,
        /// What the body has.
        found: String,
    },
    /// A required attribute is missing.
    #[error("<{element}> has no {attribute} attribute")]
    MissingAttribute {
        /// The element.
        element: &'static str,
        /// The attribute.
        attribute: &'static str,
    },
}

/// One element: its local name, attributes (local names), text, and children.
#[derive(Debug, Default)]
pub(crate) struct Element {
    pub(crate) name: String,
    attrs: Vec<(String, String)>,
    text: String,
    pub(crate) children: Vec<Element>,
}

impl Element {
    /// The attribute `name` (local part), if present.
    pub(crate) fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The element's text, trimmed.
    pub(crate) fn text(&self) -> &str {
        self.text.trim()
    }

    /// The first child named `name`.
    pub(crate) fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The children named `name`.
    pub(crate) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The text of the first child named `name`, if it has any.
    pub(crate) fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name)
            .map(Element::text)
            .filter(|t| !t.is_empty())
    }
}

fn local(qname: &str) -> String {
    qname.rsplit(':').next().unwrap_or(qname).to_string()
}

fn malformed(e: impl std::fmt::Display) -> XmlBodyError {
    XmlBodyError::Malformed(e.to_string())
}

fn element(start: &BytesStart<'_>) -> Result<Element, XmlBodyError> {
    let mut attrs = Vec::new();
    for a in start.attributes() {
        let a = a.map_err(malformed)?;
        // Namespace declarations are not data.
        if a.key.as_ref() == "xmlns" || a.key.as_ref().starts_with("xmlns:") {
            continue;
        }
        let value = a
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(malformed)?;
        attrs.push((local(a.key.as_ref()), value.into_owned()));
    }
    Ok(Element {
        name: local(start.name().as_ref()),
        attrs,
        ..Element::default()
    })
}

/// The text an entity or character reference stands for (the five XML predefined
/// entities and `&#…;`); anything else is not well-formed without a DTD.
fn reference(name: &str) -> Result<Cow<'static, str>, XmlBodyError> {
    let s = match name {
        "amp" => "&",
        "lt" => "<",
        "gt" => ">",
        "quot" => "\"",
        "apos" => "'",
        _ => {
            let code = if let Some(hex) = name.strip_prefix("#x") {
                u32::from_str_radix(hex, 16).ok()
            } else if let Some(dec) = name.strip_prefix('#') {
                dec.parse().ok()
            } else {
                None
            };
            let c = code
                .and_then(char::from_u32)
                .ok_or_else(|| malformed(format_args!("unknown reference &{name};")))?;
            return Ok(Cow::Owned(c.to_string()));
        }
    };
    Ok(Cow::Borrowed(s))
}

/// Reads `body` into its root element.
pub(crate) fn parse(body: &[u8]) -> Result<Element, XmlBodyError> {
    let text = std::str::from_utf8(body).map_err(|_| XmlBodyError::NotText)?;
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut count = 0usize;
    loop {
        let event = reader.read_event().map_err(malformed)?;
        match event {
            Event::Start(_) | Event::Empty(_)
                if stack.len() >= MAX_DEPTH || count >= MAX_ELEMENTS =>
            {
                return Err(XmlBodyError::TooLarge);
            }
            Event::Start(start) => {
                count += 1;
                stack.push(element(&start)?);
            }
            Event::Empty(start) => {
                count += 1;
                let e = element(&start)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(e),
                    None => return Ok(e),
                }
            }
            Event::End(_) => {
                // quick-xml checks that end tags match their start.
                let Some(done) = stack.pop() else {
                    return Err(malformed("an end tag without a start"));
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => return Ok(done),
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                let s = reference(&r)?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&s);
                }
            }
            Event::Eof => return Err(malformed("the document ends inside an element")),
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
}

/// Reads `body` and checks that its root is `root`.
pub(crate) fn parse_root(body: &[u8], root: &'static str) -> Result<Element, XmlBodyError> {
    let e = parse(body)?;
    if e.name != root {
        return Err(XmlBodyError::WrongRoot {
            expected: root,
            found: e.name,
        });
    }
    Ok(e)
}

/// `s` escaped for text or a double-quoted attribute. Tabs and line ends go as
/// character references too: a reader normalizes them (to spaces in attributes, CR LF to
/// LF in text), and the value must read back as written.
pub(crate) fn escape(s: &str) -> Cow<'_, str> {
    let e = quick_xml::escape::escape(s);
    if !e.contains(['\t', '\n', '\r']) {
        return e;
    }
    Cow::Owned(
        e.replace('\t', "&#9;")
            .replace('\n', "&#10;")
            .replace('\r', "&#13;"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_tree_with_prefixes_entities_and_bounds() {
        let e = parse(
            br#"<?xml version="1.0"?><a:r xmlns:a="urn:x" id="1 &amp; 2"><a:c>x &lt;&#65;&#x42;</a:c><d/></a:r>"#,
        )
        .unwrap();
        assert_eq!(e.name, "r");
        assert_eq!(e.attr("id"), Some("1 & 2"));
        assert_eq!(e.child_text("c"), Some("x <AB"));
        assert!(e.child("d").is_some());
        assert!(matches!(
            parse(b"<a><b></a>"),
            Err(XmlBodyError::Malformed(_))
        ));
        assert!(matches!(parse(b"<a>"), Err(XmlBodyError::Malformed(_))));
        assert!(matches!(
            parse(b"<a>&bogus;</a>"),
            Err(XmlBodyError::Malformed(_))
        ));
        assert_eq!(parse(b"\xff").err(), Some(XmlBodyError::NotText));
        let deep = "<a>".repeat(40) + &"</a>".repeat(40);
        assert_eq!(parse(deep.as_bytes()).err(), Some(XmlBodyError::TooLarge));
        assert_eq!(escape("<\"&'>"), "&lt;&quot;&amp;&apos;&gt;");
        assert_eq!(escape("a\r\nb"), "a&#13;&#10;b");
    }
}
