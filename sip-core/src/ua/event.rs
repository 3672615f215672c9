//! What the user agent tells the application.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::message::Headers;

use crate::publication::PublicationHandle;
use crate::registration::RegistrationCause;
use crate::session::{CallDetails, CallEnd, CallHandle, Originator};
use crate::subscription::{SubState, SubscriptionHandle};

/// The handle of an out-of-dialog request sent with
/// [`UserAgent::request`](super::UserAgent::request) or
/// [`UserAgent::message`](super::UserAgent::message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub(crate) u64);

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "req{}", self.0)
    }
}

/// News for the application, in the order it happened. With the `serde` feature it
/// serializes as one flat object whose `event` field names the kind (`incoming_call`,
/// `answered`, `ended`, …), as the softphone's `--json` lines show.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(tag = "event", rename_all = "snake_case"))]
#[non_exhaustive]
pub enum Event {
    /// The connection to a server is up (after [`UserAgent::connect`](super::UserAgent::connect)
    /// or a reconnect); the registration, if any, is being renewed on it.
    Connected {
        /// The flow now used for out-of-dialog requests.
        #[cfg_attr(feature = "serde", serde(skip))]
        flow: crate::transport::FlowId,
    },
    /// The connection failed or was lost; `retry_in` says when the next attempt goes out,
    /// `None` when the reconnect policy gave up.
    Disconnected {
        /// Time to the next attempt.
        #[cfg_attr(
            feature = "serde",
            serde(serialize_with = "crate::serde_impls::opt_secs")
        )]
        retry_in: Option<Duration>,
        /// What failed: the runtime's reason for a failed attempt, or "connection lost".
        reason: String,
    },
    /// Registered for `expires` seconds (refreshed by itself before then).
    Registered {
        /// Granted expiry in seconds.
        expires: u32,
        /// The public GRUU the registrar assigned, if any (RFC 5627).
        gruu: Option<String>,
    },
    /// No longer registered.
    Unregistered {
        /// Why.
        cause: RegistrationCause,
    },
    /// The registration is due for its refresh, which goes out now (JsSIP's
    /// `registrationExpiring`); it lapses in `expires_in` unless the refresh succeeds.
    RegistrationExpiring {
        /// Time left on the current binding.
        #[cfg_attr(feature = "serde", serde(serialize_with = "crate::serde_impls::secs"))]
        expires_in: Duration,
    },
    /// A REGISTER failed; `retry_in` says when it is tried again, if ever.
    RegistrationFailed {
        /// Why.
        cause: RegistrationCause,
        /// When the next attempt goes out by itself.
        #[cfg_attr(
            feature = "serde",
            serde(serialize_with = "crate::serde_impls::opt_secs")
        )]
        retry_in: Option<Duration>,
    },
    /// A MESSAGE arrived (it has been answered 200).
    #[cfg_attr(feature = "serde", serde(rename = "message"))]
    MessageReceived {
        /// The call it arrived in, or `None` out of dialog.
        call: Option<CallHandle>,
        /// The From header as received.
        from: String,
        /// Its Content-Type.
        content_type: String,
        /// The body.
        #[cfg_attr(feature = "serde", serde(serialize_with = "crate::serde_impls::text"))]
        body: Bytes,
    },
    /// An INFO inside a call that is not DTMF (RFC 6086 legacy usage: any body); it has
    /// been answered 200.
    #[cfg_attr(feature = "serde", serde(rename = "info"))]
    InfoReceived {
        /// Which call.
        call: CallHandle,
        /// Its Content-Type (empty without a body).
        content_type: String,
        /// The body.
        #[cfg_attr(feature = "serde", serde(serialize_with = "crate::serde_impls::text"))]
        body: Bytes,
    },
    /// An out-of-dialog request got its final response, or failed: 408 after a timeout,
    /// 503 when the flow failed (RFC 3261 §8.1.3.1).
    RequestCompleted {
        /// Which request.
        id: RequestId,
        /// The final status.
        status: u16,
        /// Its reason phrase.
        reason: String,
    },
    /// A call arrived and is ringing (180 sent). Answer it with
    /// [`answer`](super::UserAgent::answer) or refuse it with
    /// [`decline`](super::UserAgent::decline); unanswered, it is refused with 480 after
    /// [`UaConfig::no_answer_timeout`](super::UaConfig::no_answer_timeout).
    IncomingCall {
        /// Its handle.
        call: CallHandle,
        /// The From header as received.
        from: String,
        /// The To header as received.
        to: String,
        /// Every header of the INVITE, name and value as received ([`Headers::iter`]):
        /// the INVITE's own index, shared, not a copy.
        #[cfg_attr(
            feature = "serde",
            serde(serialize_with = "crate::serde_impls::headers")
        )]
        headers: Arc<Headers>,
        /// The call of ours it replaces (RFC 3891: an attended transfer's target gets
        /// the transferee this way); answering it ends that call as `Replaced`.
        replaces: Option<CallHandle>,
    },
    /// Our call is progressing: a provisional response other than 100.
    #[cfg_attr(feature = "serde", serde(rename = "progress"))]
    CallProgress {
        /// Which call.
        call: CallHandle,
        /// 180, 183…
        status: u16,
        /// Its reason phrase.
        reason: String,
        /// Whether it carried a session description (early media).
        early_media: bool,
    },
    /// The call is established: we got (caller) or sent (callee) a 2xx.
    #[cfg_attr(feature = "serde", serde(rename = "answered"))]
    CallAnswered {
        /// Which call.
        call: CallHandle,
        /// The far end as it named itself: the To of the 2xx (caller) or the From of the
        /// INVITE (callee), as received.
        remote: String,
        /// The identity a trusted proxy asserted for it (P-Asserted-Identity, RFC 3325).
        asserted: Option<String>,
    },
    /// The call is over; its handle is no longer valid.
    #[cfg_attr(feature = "serde", serde(rename = "ended"))]
    CallEnded {
        /// Which call.
        call: CallHandle,
        /// Why, who, and the SIP that said so.
        #[cfg_attr(feature = "serde", serde(flatten))]
        end: CallEnd,
        /// The whole call: who, which way, its Call-ID, when it started, rang, was
        /// answered and ended (the same as [`UserAgent::call_details`] now gives).
        ///
        /// [`UserAgent::call_details`]: crate::ua::UserAgent::call_details
        /// Shared with the user agent's history, so the event costs no copy.
        #[cfg_attr(feature = "serde", serde(skip))]
        details: Arc<CallDetails>,
    },
    /// Who holds whom changed (RFC 6337): `local` when we hold, `remote` when the peer does.
    #[cfg_attr(feature = "serde", serde(rename = "hold"))]
    HoldChanged {
        /// Which call.
        call: CallHandle,
        /// We hold the peer.
        local: bool,
        /// The peer holds us.
        remote: bool,
    },
    /// An offer changed the call's media beyond hold and was answered: ours
    /// ([`UserAgent::renegotiate`](super::UserAgent::renegotiate), `Local`) or the peer's
    /// (`Remote`: a stream added or removed, another codec or transport).
    Renegotiated {
        /// Which call.
        call: CallHandle,
        /// Whose offer it was.
        originator: Originator,
    },
    /// The peer offers to change the call's media and, with
    /// [`ReofferPolicy::Ask`](super::ReofferPolicy::Ask), waits for
    /// [`UserAgent::accept_reoffer`](super::UserAgent::accept_reoffer) or
    /// [`UserAgent::refuse_reoffer`](super::UserAgent::refuse_reoffer).
    ReofferReceived {
        /// Which call.
        call: CallHandle,
        /// The peer's offer (SDP).
        #[cfg_attr(feature = "serde", serde(serialize_with = "crate::serde_impls::text"))]
        offer: Bytes,
    },
    /// Our re-INVITE or UPDATE (a hold, an unhold, a renegotiation) was refused; the call
    /// goes on as it was before it.
    RenegotiationFailed {
        /// Which call.
        call: CallHandle,
        /// The refusing status.
        status: u16,
    },
    /// Someone subscribes to a package we serve (RFC 6665): the subscription is accepted as
    /// `pending` until [`UserAgent::notify`](super::UserAgent::notify) sends its state, or
    /// [`UserAgent::terminate_subscription`](super::UserAgent::terminate_subscription)
    /// refuses it (`rejected`).
    SubscriptionRequested {
        /// Which subscription.
        subscription: SubscriptionHandle,
        /// The subscriber's From as received.
        from: String,
        /// The resource subscribed to: the SUBSCRIBE's To as received (a conference
        /// focus serves each room's own).
        to: String,
        /// The Event header value: the package, and its `id` if any.
        package: String,
        /// The bodies the subscriber takes (its Accept), empty when it said none.
        accept: String,
        /// The interval granted, in seconds.
        expires: u32,
    },
    /// A NOTIFY for one of our subscriptions (it has been answered 200).
    #[cfg_attr(feature = "serde", serde(rename = "notify"))]
    Notified {
        /// Which subscription.
        subscription: SubscriptionHandle,
        /// Where it stands now.
        state: SubState,
        /// The body's type (empty without a body).
        content_type: String,
        /// The package's body.
        #[cfg_attr(feature = "serde", serde(serialize_with = "crate::serde_impls::text"))]
        body: Bytes,
    },
    /// A subscription is over: the notifier ended it (with a `reason` and maybe a
    /// `retry-after`), it was refused or failed (`status`), it expired, or it was
    /// unsubscribed. Its handle is no longer valid.
    SubscriptionEnded {
        /// Which subscription.
        subscription: SubscriptionHandle,
        /// The reason given (`timeout`, `rejected`, `noresource`, `deactivated`…).
        reason: Option<String>,
        /// Seconds before subscribing again makes sense, when the notifier said.
        retry_after: Option<u32>,
        /// The status that ended it: a refusal of the SUBSCRIBE or of our NOTIFY, 408.
        status: Option<u16>,
    },
    /// A NOTIFY outside any subscription of ours, taken because voicemail servers send
    /// `message-summary` so (unsolicited MWI, as Asterisk does); read its body with
    /// [`MessageSummary::parse`](crate::subscription::message_summary::MessageSummary::parse).
    UnsolicitedNotify {
        /// The notifier's From as received.
        from: String,
        /// The Event package.
        package: String,
        /// The body's type (empty without a body).
        content_type: String,
        /// The body.
        #[cfg_attr(feature = "serde", serde(serialize_with = "crate::serde_impls::text"))]
        body: Bytes,
    },
    /// The state compositor took our PUBLISH (RFC 3903): the first, a refresh or new
    /// state.
    Published {
        /// Which publication.
        publication: PublicationHandle,
        /// The entity-tag it now has (`SIP-ETag`).
        etag: String,
        /// The interval granted, in seconds.
        expires: u32,
    },
    /// A publication is over: removed (2xx), refused, or no answer came (408). Its handle
    /// is no longer valid.
    PublicationEnded {
        /// Which publication.
        publication: PublicationHandle,
        /// The final status.
        status: u16,
        /// Its reason phrase.
        reason: String,
    },
    /// The peer asks us to transfer this call to `target` (RFC 3515 REFER, accepted with
    /// 202): place the new call with
    /// [`UserAgent::accept_transfer`](super::UserAgent::accept_transfer), or refuse with
    /// [`UserAgent::refuse_transfer`](super::UserAgent::refuse_transfer).
    TransferRequested {
        /// The call the REFER came in.
        call: CallHandle,
        /// Where to call.
        target: String,
        /// Who asks, as the Referred-By header gave it (RFC 3892).
        referred_by: Option<String>,
    },
    /// We accepted the transfer asked of `call` and placed `new_call` to its target (by
    /// [`UserAgent::accept_transfer`](super::UserAgent::accept_transfer), or a media layer
    /// that accepts transfers by itself, as desk phones do).
    TransferAccepted {
        /// The call the REFER came in.
        call: CallHandle,
        /// The new call.
        new_call: CallHandle,
    },
    /// How our transfer of `call` goes: the status of the transferee's new call (100, 180,
    /// 200…), or the refusal of our REFER. A 2xx ends our call as `Transferred`; a final
    /// failure leaves it as it was.
    TransferProgress {
        /// The call we transfer.
        call: CallHandle,
        /// The status.
        status: u16,
        /// Its reason phrase.
        reason: String,
    },
    /// A DTMF tone arrived in an INFO.
    #[cfg_attr(feature = "serde", serde(rename = "dtmf"))]
    DtmfReceived {
        /// Which call.
        call: CallHandle,
        /// `0`–`9`, `*`, `#`, `A`–`D`.
        tone: char,
        /// How long the tone lasts, if the sender said.
        #[cfg_attr(
            feature = "serde",
            serde(
                rename = "duration_ms",
                serialize_with = "crate::serde_impls::opt_millis"
            )
        )]
        duration: Option<Duration>,
    },
    /// The group server listed us as a member of `group` (joined with a media phone's
    /// `call_group`): our local audio goes to every member's leg from now on (Sinch's
    /// `onGroupLocalMediaAdded`).
    GroupLocalMediaReady {
        /// The group's name.
        group: String,
    },
    /// A leg to another member of `group` is up: we hear them (Sinch's
    /// `onGroupRemoteCallAdded`).
    GroupMemberAdded {
        /// The group's name.
        group: String,
        /// The member's URI.
        member: String,
        /// The leg: a call of ours, placed or answered by the group.
        call: CallHandle,
    },
    /// A leg of `group` that was up ended: the member left, dropped, or hung up (Sinch's
    /// `onGroupRemoteCallRemoved`).
    GroupMemberRemoved {
        /// The group's name.
        group: String,
        /// The member's URI.
        member: String,
        /// The leg, ended.
        call: CallHandle,
    },
    /// We are out of `group`: we left, or the server ended our membership (`reason`, as
    /// its final NOTIFY gave it). Every leg is hung up.
    GroupLeft {
        /// The group's name.
        group: String,
        /// The server's reason, when it ended the membership.
        reason: Option<String>,
    },
}

impl Event {
    /// A short name of the kind of event (`incoming_call`, `call_ended`, …), for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Connected { .. } => "connected",
            Event::Disconnected { .. } => "disconnected",
            Event::Registered { .. } => "registered",
            Event::Unregistered { .. } => "unregistered",
            Event::RegistrationExpiring { .. } => "registration_expiring",
            Event::RegistrationFailed { .. } => "registration_failed",
            Event::MessageReceived { .. } => "message_received",
            Event::InfoReceived { .. } => "info_received",
            Event::RequestCompleted { .. } => "request_completed",
            Event::IncomingCall { .. } => "incoming_call",
            Event::CallProgress { .. } => "call_progress",
            Event::CallAnswered { .. } => "call_answered",
            Event::CallEnded { .. } => "call_ended",
            Event::HoldChanged { .. } => "hold_changed",
            Event::Renegotiated { .. } => "renegotiated",
            Event::ReofferReceived { .. } => "reoffer_received",
            Event::RenegotiationFailed { .. } => "renegotiation_failed",
            Event::DtmfReceived { .. } => "dtmf_received",
            Event::TransferRequested { .. } => "transfer_requested",
            Event::TransferProgress { .. } => "transfer_progress",
            Event::TransferAccepted { .. } => "transfer_accepted",
            Event::SubscriptionRequested { .. } => "subscription_requested",
            Event::Notified { .. } => "notified",
            Event::SubscriptionEnded { .. } => "subscription_ended",
            Event::UnsolicitedNotify { .. } => "unsolicited_notify",
            Event::Published { .. } => "published",
            Event::PublicationEnded { .. } => "publication_ended",
            Event::GroupLocalMediaReady { .. } => "group_local_media_ready",
            Event::GroupMemberAdded { .. } => "group_member_added",
            Event::GroupMemberRemoved { .. } => "group_member_removed",
            Event::GroupLeft { .. } => "group_left",
        }
    }

    /// The call the event is about, if it is about one.
    pub fn call(&self) -> Option<CallHandle> {
        match self {
            Event::IncomingCall { call, .. }
            | Event::CallProgress { call, .. }
            | Event::CallAnswered { call, .. }
            | Event::CallEnded { call, .. }
            | Event::HoldChanged { call, .. }
            | Event::Renegotiated { call, .. }
            | Event::ReofferReceived { call, .. }
            | Event::RenegotiationFailed { call, .. }
            | Event::TransferRequested { call, .. }
            | Event::TransferProgress { call, .. }
            | Event::TransferAccepted { call, .. }
            | Event::DtmfReceived { call, .. }
            | Event::InfoReceived { call, .. } => Some(*call),
            Event::MessageReceived { call, .. } => *call,
            _ => None,
        }
    }
}
