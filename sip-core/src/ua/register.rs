//! Our registration (RFC 3261 §10, RFC 5626 outbound, RFC 5627 GRUU): the application's
//! commands and the [`Registration`] machine's events. The machine itself is in
//! [`crate::registration`].

use std::time::Instant;

use super::{Event, Output, Purpose, UaError, UserAgent};
use crate::message::{Headers, Uri};
use crate::registration::{Registration, RegistrationConfig, RegistrationEvent};
use crate::session::SdpHandler;

/// Options for [`UserAgent::register_with`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RegisterOptions {
    /// Requested expiry in seconds.
    pub expires: u32,
    /// Extra headers for every REGISTER.
    pub headers: Vec<(String, String)>,
    /// Extra Contact parameters, e.g. `+sip.ice`.
    pub contact_params: Vec<String>,
    /// RFC 5626 instance id (`urn:uuid:…`), sent as `+sip.instance`.
    pub instance_id: Option<String>,
    /// RFC 5626 `reg-id`; with `instance_id` it asks for outbound.
    pub reg_id: Option<u32>,
}

impl RegisterOptions {
    /// Registering for `expires` seconds with nothing extra.
    pub fn new(expires: u32) -> Self {
        Self {
            expires,
            ..Self::default()
        }
    }

    /// Names this phone's instance (`urn:uuid:…`, kept across restarts) in `+sip.instance`:
    /// a registrar then grants it a GRUU (RFC 5627), which becomes our calls' Contact.
    #[must_use]
    pub fn instance(mut self, instance_id: impl Into<String>) -> Self {
        self.instance_id = Some(instance_id.into());
        self
    }

    /// Asks for SIP outbound (RFC 5626) with this instance id and `reg-id`.
    #[must_use]
    pub fn outbound(mut self, instance_id: impl Into<String>, reg_id: u32) -> Self {
        self.instance_id = Some(instance_id.into());
        self.reg_id = Some(reg_id);
        self
    }
}

impl<S: SdpHandler> UserAgent<S> {
    /// Registers our address-of-record at the registrar its domain names (RFC 3261 §10.2)
    /// for `expires` seconds, refreshed by itself; see [`UserAgent::register_with`] for
    /// headers, Contact parameters and outbound.
    pub fn register(&mut self, now: Instant, expires: u32) -> Result<(), UaError> {
        self.register_with(now, RegisterOptions::new(expires))
    }

    /// Registers with options.
    pub fn register_with(&mut self, now: Instant, options: RegisterOptions) -> Result<(), UaError> {
        self.now = now;
        let local = self.local_for_outbound().ok_or(UaError::NotConnected)?;
        let aor = self.config.aor.clone();
        let uri = Uri::parse(&aor).map_err(|_| UaError::InvalidTarget(aor.clone()))?;
        let host = uri.host().ok_or(UaError::InvalidTarget(aor.clone()))?;
        let mut config = RegistrationConfig::new(format!("{}:{host}", uri.scheme().as_str()), aor);
        config.expires = options.expires;
        for (name, value) in &options.headers {
            Headers::check_named(name, value).map_err(|_| UaError::InvalidHeader(name.clone()))?;
        }
        config.extra_headers = self.config.extra_headers.clone();
        config.extra_headers.extend(options.headers);
        config.contact_params = options.contact_params;
        config.instance_id = options.instance_id;
        config.reg_id = options.reg_id;
        self.registration_span = tracing::debug_span!(
            target: "sansip::registration",
            "registration",
            aor = %self.config.aor,
            registrar = %config.registrar,
        );
        let mut reg = Registration::new(config, self.config.credentials.clone(), &mut self.ids);
        let req = reg.register(&local, &mut self.ids);
        self.registration = Some(reg);
        self.send(now, req, Purpose::Register);
        Ok(())
    }

    /// Removes our binding, or every binding of the address-of-record (`Contact: *`).
    pub fn unregister(&mut self, now: Instant, all: bool) -> Result<(), UaError> {
        let local = self.local_for_outbound().ok_or(UaError::NotConnected)?;
        let reg = self.registration.as_mut().ok_or(UaError::NotRegistered)?;
        let req = reg.unregister(all, &local, &mut self.ids);
        self.send(now, req, Purpose::Register);
        Ok(())
    }

    /// Whether the registration is live.
    pub fn is_registered(&self) -> bool {
        self.registration
            .as_ref()
            .is_some_and(|r| r.is_registered(self.now))
    }

    pub(super) fn forward_registration_events(&mut self) {
        let Some(reg) = self.registration.as_mut() else {
            return;
        };
        while let Some(e) = reg.poll_event() {
            self.registration_span.in_scope(|| {
                tracing::debug!(target: "sansip::registration", event = ?e);
            });
            self.out.push_back(Output::Event(match e {
                RegistrationEvent::Registered { expires, gruu } => {
                    Event::Registered { expires, gruu }
                }
                RegistrationEvent::Unregistered { cause } => Event::Unregistered { cause },
                RegistrationEvent::Expiring { expires_in } => {
                    Event::RegistrationExpiring { expires_in }
                }
                RegistrationEvent::Failed { cause, retry_in } => {
                    Event::RegistrationFailed { cause, retry_in }
                }
            }));
        }
    }
}
