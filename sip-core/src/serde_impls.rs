//! `serde::Serialize` for what the user agent tells the application (feature `serde`): its
//! [`Event`](crate::ua::Event)s, as one flat object each with an `event` field naming the
//! kind — the shape the softphone's `--json` lines have. Handles and causes are written
//! as the strings they display as, durations as seconds (or milliseconds where the field
//! name says so), bodies as text.

use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::publication::PublicationHandle;
use crate::registration::RegistrationCause;
use crate::session::{CallHandle, EndCause, Originator};
use crate::subscription::{SubState, SubscriptionHandle};
use crate::ua::RequestId;

/// Writes a value as the string it displays as.
macro_rules! as_display {
    ($($t:ty),*) => {$(
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    )*};
}

as_display!(
    CallHandle,
    SubscriptionHandle,
    PublicationHandle,
    SubState,
    RequestId,
    EndCause,
    Originator,
    RegistrationCause
);

pub(crate) fn opt_secs<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    d.map(|d| d.as_secs_f64()).serialize(s)
}

pub(crate) fn secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    d.as_secs_f64().serialize(s)
}

pub(crate) fn opt_millis<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    d.map(|d| d.as_millis() as u64).serialize(s)
}

pub(crate) fn text<S: Serializer>(b: &bytes::Bytes, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(b))
}

/// Header lines as `[name, value]` pairs, in order.
pub(crate) fn headers<S: Serializer>(h: &crate::message::Headers, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(h.iter())
}

#[cfg(test)]
mod tests {
    use crate::session::{CallDetails, CallDirection, CallEnd, CallHandle, EndCause, Originator};
    use crate::ua::Event;

    #[test]
    fn events_are_flat_objects_named_by_their_event_field() {
        let mut end = CallEnd::new(EndCause::Bye, Originator::Remote);
        end.status = Some(200);
        let at = crate::test_clock::origin();
        let details = std::sync::Arc::new(CallDetails {
            call: CallHandle(3),
            direction: CallDirection::Incoming,
            call_id: "c3".into(),
            local: "<sip:alice@example.com>".into(),
            remote: "<sip:bob@example.com>".into(),
            asserted: false,
            started: at,
            progressed: Some(at),
            established: None,
            ended: Some(at),
            end: Some(end.clone()),
        });
        let e = Event::CallEnded {
            call: CallHandle(3),
            end,
            details,
        };
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"event": "ended", "call": "call3", "cause": "bye",
                "originator": "remote", "status": 200, "reason": null})
        );
        let e = Event::DtmfReceived {
            call: CallHandle(1),
            tone: '5',
            duration: Some(std::time::Duration::from_millis(160)),
        };
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"event": "dtmf", "call": "call1", "tone": "5", "duration_ms": 160})
        );
        let e = Event::MessageReceived {
            call: None,
            from: "<sip:a@b>".into(),
            content_type: "text/plain".into(),
            body: bytes::Bytes::from_static(b"hi"),
        };
        assert_eq!(serde_json::to_value(&e).unwrap()["body"], "hi");
    }
}
