//! Calls to phone numbers through a gateway to the telephone network. The number is
//! made E.164 by the gateway's [`DialPlan`] and put in the Request-URI as the gateway wants
//! it: `sip:+46…@gateway;user=phone` (RFC 3261 §19.1.6) or `tel:+46…` (RFC 3966). Calls
//! leave on the user agent's outbound flow like any other, so the outbound proxy routes
//! them to the gateway by that Request-URI; a trunk that is the gateway itself is the
//! user agent's server.

use std::time::Instant;

use super::{CallOptions, UaError, UserAgent};
use crate::auth::DigestCredentials;
use crate::e164::{DialPlan, NumberError, PhoneNumber};
use crate::message::{Scheme, Uri};
use crate::session::{CallHandle, SdpHandler};

/// How a phone number goes in the Request-URI.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum NumberForm {
    /// `sip:+46000000000@gateway;user=phone` (RFC 3261 §19.1.6): what most gateways,
    /// trunks and carriers take.
    #[default]
    UserPhone,
    /// `tel:+46000000000` (RFC 3966), for a gateway (or the proxy before it) that routes
    /// `tel:` URIs itself.
    Tel,
}

/// A gateway to the telephone network and how calls to numbers reach it.
///
/// ```
/// use sansip_core::e164::DialPlan;
/// use sansip_core::ua::Gateway;
///
/// let gw = Gateway::new("sip:gw.example.com:5070;transport=udp")
///     .with_dial_plan(DialPlan::national("46", "0", "00"))
///     .with_asserted_identity("<sip:+46812345678@example.com>");
/// let n = gw.number("08-765 432 10").unwrap();
/// assert_eq!(
///     gw.request_uri(&n).unwrap(),
///     "sip:+46876543210@gw.example.com:5070;transport=udp;user=phone"
/// );
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Gateway {
    /// The gateway as a `sip:` or `sips:` URI without a user part, e.g.
    /// `sip:gw.example.com:5070;transport=udp`; its host, port and parameters make each
    /// call's Request-URI.
    pub uri: String,
    /// How the number goes in the Request-URI (default `user=phone`).
    pub form: NumberForm,
    /// How dialled numbers become E.164 ones (default: only `+` numbers).
    pub dial_plan: DialPlan,
    /// Digest credentials for the gateway's (or the carrier's) challenges to our calls,
    /// when they are not the registrar's. They are tried first; the user agent's own
    /// answer the realms they do not (bind them with `DigestCredentials::for_realm` when
    /// both are unbound).
    pub credentials: Option<DigestCredentials>,
    /// The P-Asserted-Identity our calls carry (RFC 3325), e.g.
    /// `<sip:+46812345678@example.com>`: for a trunk in a trust domain that asks for it.
    pub asserted_identity: Option<String>,
    /// The Privacy our calls carry (RFC 3323), e.g. `id` to ask the network to withhold
    /// our number from the callee.
    pub privacy: Option<String>,
}

impl Gateway {
    /// A gateway at `uri`, with the default form, plan, and no identity headers.
    pub fn new(uri: impl Into<String>) -> Self {
        Self {
            uri: uri.into(),
            form: NumberForm::default(),
            dial_plan: DialPlan::default(),
            credentials: None,
            asserted_identity: None,
            privacy: None,
        }
    }

    /// With `form` for the Request-URI.
    pub fn with_form(mut self, form: NumberForm) -> Self {
        self.form = form;
        self
    }

    /// With a dial plan.
    pub fn with_dial_plan(mut self, plan: DialPlan) -> Self {
        self.dial_plan = plan;
        self
    }

    /// With credentials of its own.
    pub fn with_credentials(mut self, credentials: DigestCredentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// With a P-Asserted-Identity on our calls.
    pub fn with_asserted_identity(mut self, identity: impl Into<String>) -> Self {
        self.asserted_identity = Some(identity.into());
        self
    }

    /// With a Privacy header on our calls.
    pub fn with_privacy(mut self, privacy: impl Into<String>) -> Self {
        self.privacy = Some(privacy.into());
        self
    }

    /// What was dialled, as an E.164 number by the dial plan.
    pub fn number(&self, dialled: &str) -> Result<PhoneNumber, NumberError> {
        self.dial_plan.to_e164(dialled)
    }

    /// The Request-URI of a call to `number`. Fails when the gateway's URI is not a
    /// `sip:`/`sips:` URI without user part or headers.
    pub fn request_uri(&self, number: &PhoneNumber) -> Result<String, UaError> {
        let bad = || UaError::InvalidGateway(self.uri.clone());
        if self.form == NumberForm::Tel {
            return Ok(format!("tel:{number}"));
        }
        let gw = Uri::parse(self.uri.trim()).map_err(|_| bad())?;
        if gw.user().is_some() || gw.headers().is_some() {
            return Err(bad());
        }
        let host = gw.host().ok_or_else(bad)?.to_string();
        // `user=phone` replaces whatever `user=` the gateway's URI had.
        let mut params = String::new();
        for (name, value) in gw.params().iter_raw() {
            if name.eq_ignore_ascii_case("user") {
                continue;
            }
            params.push(';');
            params.push_str(name);
            if let Some(v) = value {
                params.push('=');
                params.push_str(v);
            }
        }
        params.push_str(";user=phone");
        let uri = match gw.scheme() {
            Scheme::Sip => Uri::new_sip(Some(number.as_str()), &host, gw.port()),
            Scheme::Sips => Uri::new_sips(Some(number.as_str()), &host, gw.port()),
            _ => return Err(bad()),
        };
        let uri = uri
            .and_then(|u| u.with_params(&params))
            .map_err(|_| bad())?;
        Ok(uri.to_string())
    }
}

impl<S: SdpHandler> UserAgent<S> {
    /// Calls a phone number through [`UaConfig::gateway`](super::UaConfig::gateway):
    /// `dialled` is made E.164 by its dial plan (a typed error says why it cannot be), the
    /// Request-URI takes the gateway's form, and the INVITE carries its P-Asserted-Identity
    /// and Privacy unless `options` has its own. Its challenges are answered with its credentials first. Everything
    /// else is [`UserAgent::call`].
    pub fn call_phone_number(
        &mut self,
        now: Instant,
        dialled: &str,
        mut options: CallOptions,
        sdp: S,
    ) -> Result<CallHandle, UaError> {
        let gw = self.config.gateway.as_ref().ok_or(UaError::NoGateway)?;
        let number = gw.number(dialled)?;
        let uri = gw.request_uri(&number)?;
        // A header the caller gave for this call wins over the gateway's default.
        let given = |name: &str| {
            options
                .headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name))
        };
        let defaults = [
            ("P-Asserted-Identity", &gw.asserted_identity),
            ("Privacy", &gw.privacy),
        ];
        let add: Vec<(String, String)> = defaults
            .into_iter()
            .filter(|(name, _)| !given(name))
            .filter_map(|(name, value)| Some((name.to_string(), value.clone()?)))
            .collect();
        options.headers.extend(add);
        let credentials = gw.credentials.clone();
        self.place_call(now, &uri, options, sdp, credentials)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> PhoneNumber {
        PhoneNumber::parse(s).unwrap()
    }

    #[test]
    fn the_request_uri_takes_the_gateways_host_port_and_parameters() {
        let gw = Gateway::new("sip:10.0.0.9");
        assert_eq!(
            gw.request_uri(&n("+46000000000")).unwrap(),
            "sip:+46000000000@10.0.0.9;user=phone"
        );
        let gw = Gateway::new("sips:[2001:db8::1]:5061;user=ip;lr");
        assert_eq!(
            gw.request_uri(&n("+1 201 555 0123")).unwrap(),
            "sips:+12015550123@[2001:db8::1]:5061;lr;user=phone"
        );
        let tel = Gateway::new("sip:gw.example.com").with_form(NumberForm::Tel);
        assert_eq!(tel.request_uri(&n("+4612")).unwrap(), "tel:+4612");
    }

    #[test]
    fn a_gateway_uri_that_cannot_take_a_number_is_refused() {
        for bad in [
            "gw.example.com",
            "sip:carrier@gw.example.com",
            "sip:gw.example.com?subject=x",
            "tel:+4612",
            "http://gw.example.com",
            "sip:",
        ] {
            assert_eq!(
                Gateway::new(bad).request_uri(&n("+4612")),
                Err(UaError::InvalidGateway(bad.into())),
                "{bad}"
            );
        }
    }
}
