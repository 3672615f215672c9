//! Our Via sent-by and Contact on each flow (RFC 3261 §18.1.1, RFC 7118 §5): computed once
//! when a flow is added, and handed to every request built for it.

use super::UserAgent;
use crate::dialog::Local;
use crate::message::Uri;
use crate::transport::{FlowId, Transport};

impl<S> UserAgent<S> {
    pub(super) fn local_for_outbound(&self) -> Option<Local> {
        let flow = self.outbound?;
        Some(self.local_for(flow))
    }

    /// Via sent-by and Contact for requests on `flow` (RFC 3261 §18.1.1, RFC 7118 §5).
    pub(super) fn local_for(&self, flow: FlowId) -> Local {
        self.locals.get(&flow).cloned().unwrap_or_else(Local::none)
    }

    /// Computes a flow's Via and Contact once, when the flow is added.
    pub(super) fn remember_local(&mut self, flow: FlowId) {
        let Some(state) = self.flows.get(flow) else {
            return;
        };
        let t = state.info.transport;
        let host = match &state.invalid_host {
            Some(h) => h.clone(),
            None => state.info.local.to_string(),
        };
        let user = Uri::parse(&self.config.aor)
            .ok()
            .and_then(|u| u.user().map(str::to_string))
            .unwrap_or_default();
        let scheme = if t == Transport::Tls || t == Transport::Wss {
            "sips"
        } else {
            "sip"
        };
        let param = match t {
            Transport::Udp => String::new(),
            other => format!(";transport={}", other.via_token().to_ascii_lowercase()),
        };
        let local = Local {
            via: format!("SIP/2.0/{t} {host}").into(),
            contact: format!("<{scheme}:{user}@{host}{param}>").into(),
        };
        self.locals.insert(flow, local);
    }
}
