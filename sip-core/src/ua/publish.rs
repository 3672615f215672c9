//! The user agent's side of publications (RFC 3903): the application's commands, and
//! routing to each [`Publication`] what is its. The machine itself is in
//! [`crate::publication`].

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;

use super::{Output, Pending, Purpose, UaError, UserAgent};
use crate::message::{Event as EventHeader, Headers, Request, Response};
use crate::publication::{Action, Ctx, Outgoing, Publication, PublicationHandle};
use crate::session::SdpHandler;

/// Options for [`UserAgent::publish`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PublishOptions {
    /// The Event header value: the package, e.g. `presence`.
    pub event: String,
    /// The body's type, e.g. `application/pidf+xml`.
    pub content_type: String,
    /// The state.
    pub body: Bytes,
    /// The interval we ask for, in seconds.
    pub expires: u32,
    /// The presentity (Request-URI and To); our address-of-record when `None`.
    pub target: Option<String>,
    /// Extra headers for every PUBLISH.
    pub headers: Vec<(String, String)>,
}

impl PublishOptions {
    /// Publishing `body` of type `content_type` for package `event`, for an hour.
    pub fn new(
        event: impl Into<String>,
        content_type: impl Into<String>,
        body: impl Into<Bytes>,
    ) -> Self {
        Self {
            event: event.into(),
            content_type: content_type.into(),
            body: body.into(),
            expires: 3600,
            target: None,
            headers: Vec::new(),
        }
    }

    /// Our presence as a PIDF document (RFC 3863), to our presence server.
    ///
    /// ```
    /// use sansip_core::subscription::pidf::Presence;
    /// use sansip_core::ua::PublishOptions;
    ///
    /// let me = Presence::basic("sip:alice@example.com", true, Some("At my desk"));
    /// let options = PublishOptions::presence(&me).expires(600);
    /// assert_eq!(options.content_type, "application/pidf+xml");
    /// ```
    pub fn presence(presence: &crate::subscription::pidf::Presence) -> Self {
        Self::new(
            "presence",
            crate::subscription::pidf::CONTENT_TYPE,
            presence.to_xml(),
        )
    }

    /// Sets the interval.
    #[must_use]
    pub fn expires(mut self, secs: u32) -> Self {
        self.expires = secs;
        self
    }

    /// Publishes for another presentity than our address-of-record.
    #[must_use]
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// Adds an extra header.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

impl<S: SdpHandler> UserAgent<S> {
    /// Publishes our state (RFC 3903), kept alive by itself until
    /// [`unpublish`](Self::unpublish). Each 2xx comes as
    /// [`Event::Published`](super::Event::Published), the end as
    /// [`Event::PublicationEnded`](super::Event::PublicationEnded).
    pub fn publish(
        &mut self,
        now: Instant,
        options: PublishOptions,
    ) -> Result<PublicationHandle, UaError> {
        self.now = now;
        let flow = self.outbound.ok_or(UaError::NotConnected)?;
        let uri = match &options.target {
            Some(t) => self.target_uri(t)?,
            None => self.config.aor.clone(),
        };
        if EventHeader::parse(&options.event).is_err() {
            return Err(UaError::InvalidHeader("Event".into()));
        }
        if options.body.is_empty() {
            return Err(UaError::InvalidState("a first PUBLISH carries the state"));
        }
        Headers::check_named("Content-Type", &options.content_type)
            .map_err(|_| UaError::InvalidHeader("Content-Type".into()))?;
        super::call::checked(&options.headers)?;
        let from = self.our_from(None);
        self.next_publication += 1;
        let id = PublicationHandle(self.next_publication);
        let mut out = VecDeque::new();
        let local = self.local_for(flow);
        let mut ctx = Ctx {
            now,
            ids: &mut self.ids,
            config: &self.config,
            local,
            reliable: self.flows.is_reliable(flow),
            out: &mut out,
        };
        let p = Publication::outgoing(
            &mut ctx,
            Outgoing {
                id,
                flow,
                uri: &uri,
                from,
                event: &options.event,
                content_type: &options.content_type,
                body: options.body,
                expires: options.expires,
                headers: &options.headers,
            },
        );
        self.publications.insert(id, Box::new(p));
        self.run_pub_actions(now, id, out);
        Ok(id)
    }

    /// Publishes new state in place of the old (a modification, RFC 3903 §4.4).
    pub fn republish(
        &mut self,
        now: Instant,
        id: PublicationHandle,
        content_type: &str,
        body: impl Into<Bytes>,
    ) -> Result<(), UaError> {
        self.now = now;
        self.live_publication(id)?;
        Headers::check_named("Content-Type", content_type)
            .map_err(|_| UaError::InvalidHeader("Content-Type".into()))?;
        let body = body.into();
        if body.is_empty() {
            return Err(UaError::InvalidState("new state needs a body"));
        }
        self.with_publication(now, id, |p, ctx| p.modify(ctx, content_type, body));
        Ok(())
    }

    /// Removes the published state (`Expires: 0`, RFC 3903 §4.5); the publication ends
    /// with the 2xx.
    pub fn unpublish(&mut self, now: Instant, id: PublicationHandle) -> Result<(), UaError> {
        self.now = now;
        self.live_publication(id)?;
        self.with_publication(now, id, |p, ctx| p.remove(ctx));
        Ok(())
    }

    /// The entity-tag the compositor gave the publication last (none before its first
    /// 2xx).
    pub fn publication_etag(&self, id: PublicationHandle) -> Result<Option<&str>, UaError> {
        Ok(self.live_publication(id)?.etag())
    }

    /// The live publications.
    pub fn publications(&self) -> impl Iterator<Item = PublicationHandle> + '_ {
        self.publications.keys().copied()
    }

    fn live_publication(&self, id: PublicationHandle) -> Result<&Publication, UaError> {
        self.publications
            .get(&id)
            .map(|p| &**p)
            .ok_or(UaError::NoSuchPublication(id))
    }

    /// Runs one step of publication `id` and carries out what it asked.
    fn with_publication(
        &mut self,
        now: Instant,
        id: PublicationHandle,
        step: impl FnOnce(&mut Publication, &mut Ctx<'_>),
    ) {
        let Some(p) = self.publications.get(&id) else {
            return;
        };
        let flow = self.live_flow(p.flow());
        let local = self.local_for(flow);
        let reliable = self.flows.is_reliable(flow);
        let mut out = VecDeque::new();
        let Some(p) = self.publications.get_mut(&id) else {
            return;
        };
        let mut ctx = Ctx {
            now,
            ids: &mut self.ids,
            config: &self.config,
            local,
            reliable,
            out: &mut out,
        };
        step(p, &mut ctx);
        self.run_pub_actions(now, id, out);
    }

    fn run_pub_actions(&mut self, now: Instant, id: PublicationHandle, actions: VecDeque<Action>) {
        for action in actions {
            match action {
                Action::Send(req, ()) => {
                    match self.publications.get(&id).map(|p| self.live_flow(p.flow())) {
                        Some(flow) => self.send_on(now, flow, req, Purpose::Publication(id)),
                        None => self.pub_request_failed(now, id, false),
                    }
                }
                Action::Timer(at, kind) => self.pub_timers.push(at, id, kind),
                Action::Event(e) => self.out.push_back(Output::Event(e)),
                // A publication answers no requests and sends nothing outside transactions.
                Action::Respond(..)
                | Action::Transmit { .. }
                | Action::Cancel(..)
                | Action::Abandon(_) => {}
            }
        }
        if self.publications.get(&id).is_some_and(|p| p.is_finished()) {
            self.publications.remove(&id);
        }
    }

    pub(super) fn next_pub_timer(&self) -> Option<Instant> {
        self.pub_timers.next()
    }

    pub(super) fn fire_pub_timers(&mut self, now: Instant) {
        while let Some((at, id, _)) = self.pub_timers.pop_due(now) {
            if self
                .publications
                .get(&id)
                .is_some_and(|p| p.refresh_at() == Some(at))
            {
                self.with_publication(now, id, |p, ctx| p.handle_timeout(ctx, at));
            }
        }
    }

    /// Our PUBLISH went out again (with credentials).
    pub(super) fn publish_resent(&mut self, id: PublicationHandle, req: &Request) {
        if let Some(p) = self.publications.get_mut(&id) {
            p.resent(req);
        }
    }

    pub(super) fn pub_request_failed(
        &mut self,
        now: Instant,
        id: PublicationHandle,
        timed_out: bool,
    ) {
        self.with_publication(now, id, |p, ctx| p.request_failed(ctx, timed_out));
    }

    /// A response to publication `id`'s PUBLISH; `pending` is given for final ones.
    pub(super) fn pub_response(
        &mut self,
        now: Instant,
        id: PublicationHandle,
        pending: Option<Pending>,
        resp: &Response,
    ) {
        let code = resp.status().code();
        if (code == 401 || code == 407)
            && let Some(p) = pending
            && self.retry_with_auth(now, p, resp)
        {
            return;
        }
        self.with_publication(now, id, |p, ctx| p.handle_response(ctx, resp));
    }
}
