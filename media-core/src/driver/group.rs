//! Group calls on the async [`Phone`] (see [`sansip_core::group`]): join a group, hear
//! every member through one sink, leave.

use sansip_core::session::CallHandle;

use super::{Phone, PhoneError};
use crate::RtcSession;
use crate::audio::{AudioSink, AudioSource};

/// Group commands of a phone with real media.
impl Phone<RtcSession> {
    /// Joins group `name` on our server: every other member gets a call of its own (a
    /// mesh), `source` is what they all hear, and `sink` hears all of them mixed. The
    /// phone's events tell the rest: [`Event::GroupLocalMediaReady`] once the server
    /// lists us, [`Event::GroupMemberAdded`] and [`Event::GroupMemberRemoved`] per
    /// member, [`Event::GroupLeft`] at the end. An unusable name is refused with
    /// [`UaError::InvalidRoom`]. See [`crate::MediaAgent::call_group`].
    ///
    /// [`Event::GroupLocalMediaReady`]: sansip_core::ua::Event::GroupLocalMediaReady
    /// [`Event::GroupMemberAdded`]: sansip_core::ua::Event::GroupMemberAdded
    /// [`Event::GroupMemberRemoved`]: sansip_core::ua::Event::GroupMemberRemoved
    /// [`Event::GroupLeft`]: sansip_core::ua::Event::GroupLeft
    /// [`UaError::InvalidRoom`]: sansip_core::ua::UaError::InvalidRoom
    pub async fn call_group(
        &self,
        name: &str,
        source: impl AudioSource + 'static,
        sink: impl AudioSink + 'static,
    ) -> Result<(), PhoneError> {
        let name = name.to_string();
        let (source, sink): (Box<dyn AudioSource>, Box<dyn AudioSink>) =
            (Box::new(source), Box::new(sink));
        Ok(self
            .with_engine(move |p, now| p.call_group(now, &name, source, sink))
            .await??)
    }

    /// Leaves group `name`: every leg is hung up and the membership ends.
    pub async fn leave_group(&self, name: &str) -> Result<(), PhoneError> {
        let name = name.to_string();
        Ok(self
            .with_engine(move |p, now| p.leave_group(now, &name))
            .await??)
    }

    /// The members of group `name` we hear now, each with its leg.
    pub async fn group_members(&self, name: &str) -> Result<Vec<(String, CallHandle)>, PhoneError> {
        let name = name.to_string();
        self.with_engine(move |p, _| p.group_members(&name)).await
    }

    /// Sends what the member on leg `call` says to `sink` too: each stream on its own.
    pub async fn record_group_member(
        &self,
        call: CallHandle,
        sink: impl AudioSink + 'static,
    ) -> Result<(), PhoneError> {
        let sink: Box<dyn AudioSink> = Box::new(sink);
        Ok(self
            .with_engine(move |p, _| p.set_group_member_sink(call, sink))
            .await??)
    }
}
