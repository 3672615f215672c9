//! Response status codes and their reason phrases (RFC 3261 §7.2, §21).

use std::fmt;

use smol_str::SmolStr;

/// A status code with the reason phrase it was given.
///
/// Received responses keep the peer's phrase; [`StatusCode::new`] fills in the RFC's default.
///
/// ```
/// use sansip_core::message::StatusCode;
/// let s = StatusCode::new(486);
/// assert_eq!(s.reason(), "Busy Here");
/// assert!(s.is_final() && !s.is_success());
/// let custom = StatusCode::with_reason(404, "No Such Bot").unwrap();
/// assert_eq!(custom.to_string(), "404 No Such Bot");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StatusCode {
    code: u16,
    reason: SmolStr,
}

impl StatusCode {
    /// A status code with the default reason phrase. Codes outside 100..=699 are clamped to
    /// 500 so a builder can never emit an invalid start line.
    pub fn new(code: u16) -> Self {
        let code = if (100..=699).contains(&code) {
            code
        } else {
            500
        };
        Self {
            code,
            reason: SmolStr::new_static(default_reason(code)),
        }
    }

    /// A status code with a reason phrase of the caller's. `None` when the code is outside
    /// 100..=699 or the phrase holds a line break.
    pub fn with_reason(code: u16, reason: &str) -> Option<Self> {
        if !(100..=699).contains(&code) || reason.contains(['\r', '\n']) {
            return None;
        }
        Some(Self {
            code,
            reason: SmolStr::new(reason),
        })
    }

    /// The numeric code.
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The reason phrase.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// 1xx.
    pub fn is_provisional(&self) -> bool {
        self.code < 200
    }

    /// 200..=699.
    pub fn is_final(&self) -> bool {
        self.code >= 200
    }

    /// 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.code)
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.reason)
    }
}

/// The reason phrases of RFC 3261 §21 and the extensions a UA sends.
pub fn default_reason(code: u16) -> &'static str {
    known_reason(code).unwrap_or(match code {
        100..=199 => "Progress",
        200..=299 => "Success",
        300..=399 => "Redirection",
        400..=499 => "Client Error",
        500..=599 => "Server Error",
        _ => "Global Failure",
    })
}

fn known_reason(code: u16) -> Option<&'static str> {
    Some(match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        199 => "Early Dialog Terminated",
        200 => "OK",
        202 => "Accepted",
        204 => "No Notification",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        305 => "Use Proxy",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        412 => "Conditional Request Failed",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        421 => "Extension Required",
        422 => "Session Interval Too Small",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        485 => "Ambiguous",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        489 => "Bad Event",
        491 => "Request Pending",
        493 => "Undecipherable",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => return None,
    })
}
