//! Joining a conference room by its id (see [`crate::conference`]).

use std::time::Instant;

use super::{CallOptions, UaError, UserAgent};
use crate::conference::RoomId;
use crate::message::Uri;
use crate::session::{CallHandle, SdpHandler};

impl<S: SdpHandler> UserAgent<S> {
    /// Joins conference room `room` on our server: a call to `sip:room-<id>@<our domain>`,
    /// which the server's conference focus answers. An id that is empty, longer than 64
    /// characters or holds a control character is refused with
    /// [`UaError::InvalidRoom`]; other characters are escaped.
    pub fn call_conference(
        &mut self,
        now: Instant,
        room: &str,
        options: CallOptions,
        sdp: S,
    ) -> Result<CallHandle, UaError> {
        let room = RoomId::new(room)?;
        let aor = Uri::parse(&self.config.aor)
            .map_err(|_| UaError::InvalidTarget(self.config.aor.clone()))?;
        let host = aor
            .host()
            .ok_or_else(|| UaError::InvalidTarget(self.config.aor.clone()))?;
        let uri = format!("sip:{}@{host}", room.user());
        self.place_call(now, &uri, options, sdp, None)
    }
}
