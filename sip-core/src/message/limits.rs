//! Bounds on what one message may cost.

/// Resource bounds for parsing. Every bound is checked before the work or memory it guards.
///
/// The defaults suit both datagrams and streams: 64 KiB per message, 256 header lines, 8 KiB
/// per header line (folded lines count as one).
///
/// ```
/// use sansip_core::message::Limits;
/// let strict = Limits { max_message_size: 8 * 1024, ..Limits::default() };
/// assert_eq!(strict.max_headers, 256);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest message (start line, headers and body) in bytes. Larger ones are rejected
    /// with 513.
    pub max_message_size: usize,
    /// Most header lines in one message.
    pub max_headers: usize,
    /// Longest header line in bytes, including folded continuation lines.
    pub max_line_length: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_size: 64 * 1024,
            max_headers: 256,
            max_line_length: 8 * 1024,
        }
    }
}
