//! [`Phone`]'s event subscriptions (RFC 6665) and publications (RFC 3903): subscribing,
//! notifying as the notifier of a package, sharing our calls as a busy lamp (RFC 4235),
//! and publishing our presence.

use bytes::Bytes;
use sansip_core::publication::PublicationHandle;
use sansip_core::subscription::{SubState, SubscriptionHandle};
use sansip_core::ua::{Event, PublishOptions, SubscribeOptions};

use super::{Phone, PhoneError, Session, UaEngine};

impl<S: Session> Phone<S> {
    /// Subscribes to `target`'s events (RFC 6665) and returns once the SUBSCRIBE is sent;
    /// its NOTIFYs and its end come as [`Event::Notified`] and
    /// [`Event::SubscriptionEnded`] on the phone's event stream.
    pub async fn subscribe(
        &self,
        target: &str,
        options: SubscribeOptions,
    ) -> Result<SubscriptionHandle, PhoneError> {
        let target = target.to_string();
        Ok(self
            .with(move |ua, now| ua.subscribe(now, &target, options))
            .await??)
    }

    /// Ends our subscription and waits until it is over (the notifier's final NOTIFY, or
    /// 64·T1 without one).
    pub async fn unsubscribe(&self, id: SubscriptionHandle) -> Result<(), PhoneError> {
        self.act_and_wait(move |e, now, w| {
            let rx = w.wait(move |e| {
                matches!(e, Event::SubscriptionEnded { subscription, .. } if *subscription == id)
            });
            e.ua_mut().unsubscribe(now, id)?;
            Ok(rx)
        })
        .await?;
        Ok(())
    }

    /// As notifier (for the packages in [`UaConfig::event_packages`](sansip_core::ua::UaConfig::event_packages)): sends `state` with
    /// a body (`(content type, bytes)`), or the last one again, to subscription `id`.
    pub async fn notify(
        &self,
        id: SubscriptionHandle,
        state: SubState,
        body: Option<(String, Vec<u8>)>,
    ) -> Result<(), PhoneError> {
        Ok(self
            .with(move |ua, now| {
                let body = body.as_ref().map(|(ct, b)| (ct.as_str(), b.as_slice()));
                ua.notify(now, id, state, body)
            })
            .await??)
    }

    /// As notifier: ends subscription `id` with `reason` (`rejected` refuses it).
    pub async fn terminate_subscription(
        &self,
        id: SubscriptionHandle,
        reason: &str,
    ) -> Result<(), PhoneError> {
        let reason = reason.to_string();
        Ok(self
            .with(move |ua, now| ua.terminate_subscription(now, id, &reason))
            .await??)
    }

    /// As notifier of the `dialog` package: accepts subscription `id` and shares our calls
    /// with it (RFC 4235), a new document each time a call starts, rings, is answered or
    /// ends; see [`UserAgent::share_calls`](sansip_core::ua::UserAgent::share_calls).
    pub async fn share_calls(&self, id: SubscriptionHandle) -> Result<(), PhoneError> {
        Ok(self.with(move |ua, now| ua.share_calls(now, id)).await??)
    }

    /// Publishes our state (RFC 3903) and waits for the first answer: `Ok` with the
    /// publication once the state compositor took it (refreshed by itself from then on),
    /// the refusal otherwise.
    pub async fn publish(&self, options: PublishOptions) -> Result<PublicationHandle, PhoneError> {
        let (id, rx) = self
            .exec(move |e, now, w| {
                let id = e.ua_mut().publish(now, options)?;
                let rx = w.wait(move |e| {
                    matches!(e, Event::Published { publication, .. }
                        | Event::PublicationEnded { publication, .. } if *publication == id)
                });
                Ok::<_, sansip_core::ua::UaError>((id, rx))
            })
            .await??;
        match rx.await.map_err(|_| PhoneError::Stopped)? {
            Event::Published { .. } => Ok(id),
            Event::PublicationEnded { status: 408, .. } => Err(PhoneError::TimedOut),
            Event::PublicationEnded { status, reason, .. } => {
                Err(PhoneError::Rejected { status, reason })
            }
            _ => Err(PhoneError::Stopped),
        }
    }

    /// Publishes new state in place of the old (RFC 3903 §4.4); returns once sent.
    pub async fn republish(
        &self,
        id: PublicationHandle,
        content_type: &str,
        body: impl Into<Bytes>,
    ) -> Result<(), PhoneError> {
        let (content_type, body) = (content_type.to_string(), body.into());
        Ok(self
            .with(move |ua, now| ua.republish(now, id, &content_type, body))
            .await??)
    }

    /// Removes the published state and waits until the compositor confirms (or the
    /// request fails).
    pub async fn unpublish(&self, id: PublicationHandle) -> Result<(), PhoneError> {
        self.act_and_wait(move |e, now, w| {
            let rx = w.wait(move |e| {
                matches!(e, Event::PublicationEnded { publication, .. } if *publication == id)
            });
            e.ua_mut().unpublish(now, id)?;
            Ok(rx)
        })
        .await?;
        Ok(())
    }
}
