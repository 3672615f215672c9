//! The sans-IO machines the driver can run: a user agent (signalling only, or later a
//! `Phone` with media) or the embedded registrar.

use std::time::Instant;

use sansip_core::registrar::Registrar;
use sansip_core::session::SdpHandler;
use sansip_core::transport::{FlowId, FlowInfo};
use sansip_core::ua::{Input, Output, UserAgent};

/// One sans-IO machine driven by the driver loop (DESIGN.md §2).
pub trait Engine: Send + 'static {
    /// The flow for a datagram or connection described by `info`.
    fn flow_for(&mut self, info: FlowInfo) -> FlowId;
    /// A flow for a connection a peer opened to us.
    fn accept_flow(&mut self, info: FlowInfo) -> FlowId;
    /// Feeds one input.
    fn handle_input(&mut self, now: Instant, input: Input);
    /// Fires what is due.
    fn handle_timeout(&mut self, now: Instant);
    /// The next output.
    fn poll_output(&mut self) -> Option<Output>;
    /// The next deadline.
    fn poll_timeout(&self) -> Option<Instant>;
}

impl<S: SdpHandler + Send + 'static> Engine for UserAgent<S> {
    fn flow_for(&mut self, info: FlowInfo) -> FlowId {
        UserAgent::flow_for(self, info)
    }
    fn accept_flow(&mut self, info: FlowInfo) -> FlowId {
        UserAgent::add_accepted_flow(self, info)
    }
    fn handle_input(&mut self, now: Instant, input: Input) {
        UserAgent::handle_input(self, now, input);
    }
    fn handle_timeout(&mut self, now: Instant) {
        UserAgent::handle_timeout(self, now);
    }
    fn poll_output(&mut self) -> Option<Output> {
        UserAgent::poll_output(self)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        UserAgent::poll_timeout(self)
    }
}

impl Engine for Registrar {
    fn flow_for(&mut self, info: FlowInfo) -> FlowId {
        Registrar::flow_for(self, info)
    }
    fn accept_flow(&mut self, info: FlowInfo) -> FlowId {
        // Every flow of the registrar is one a peer opened.
        Registrar::flow_for(self, info)
    }
    fn handle_input(&mut self, now: Instant, input: Input) {
        Registrar::handle_input(self, now, input);
    }
    fn handle_timeout(&mut self, now: Instant) {
        Registrar::handle_timeout(self, now);
    }
    fn poll_output(&mut self) -> Option<Output> {
        Registrar::poll_output(self)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Registrar::poll_timeout(self)
    }
}
