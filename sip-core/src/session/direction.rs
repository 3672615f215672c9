//! Media directions and the hold rules of RFC 3264 §6.1, §8.4 and RFC 6337 §5.
//!
//! A direction is a set: may we send, may we receive. Hold is a direction too — holding the
//! peer means we stop receiving from them (we offer `sendonly`, or `inactive` when they
//! already hold us) — so local and remote hold are tracked separately and combined by set
//! intersection, which is what makes "resume while the peer still holds us" come out right.

use std::fmt;

/// `a=sendrecv`, `a=sendonly`, `a=recvonly` or `a=inactive`, from the point of view of the
/// side that wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Send and receive.
    SendRecv,
    /// Send only.
    SendOnly,
    /// Receive only.
    RecvOnly,
    /// Neither.
    Inactive,
}

impl Direction {
    /// From the two permissions.
    pub const fn new(send: bool, recv: bool) -> Self {
        match (send, recv) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// Whether the writer may send.
    pub const fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether the writer may receive.
    pub const fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The same stream seen from the other end: what one side sends the other receives.
    pub const fn reversed(self) -> Self {
        Direction::new(self.receives(), self.sends())
    }

    /// Both sets' common permissions.
    pub const fn intersect(self, other: Direction) -> Self {
        Direction::new(
            self.sends() && other.sends(),
            self.receives() && other.receives(),
        )
    }

    /// The attribute name, e.g. `sendonly`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// Reads an attribute name.
    pub fn from_attribute(s: &str) -> Option<Self> {
        [
            Direction::SendRecv,
            Direction::SendOnly,
            Direction::RecvOnly,
            Direction::Inactive,
        ]
        .into_iter()
        .find(|d| d.as_str() == s)
    }

    /// The direction we answer an offer with (RFC 3264 §6.1): at most the reverse of what
    /// was offered, and at most what we want (`local`).
    pub const fn answer(offered: Direction, local: Direction) -> Direction {
        offered.reversed().intersect(local)
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who holds whom in one call (RFC 6337 §5). The two flags move independently: we hold or
/// resume with our own offers; the peer does so with theirs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct HoldState {
    /// We put the call on hold.
    pub local: bool,
    /// The peer put the call on hold.
    pub remote: bool,
}

impl HoldState {
    /// What we want, before looking at the peer: `sendonly` while we hold (we keep sending
    /// music or silence if we like, but ask not to receive), `sendrecv` otherwise.
    pub const fn intent(self) -> Direction {
        if self.local {
            Direction::SendOnly
        } else {
            Direction::SendRecv
        }
    }

    /// The direction of an offer we make: our intent, minus sending when the peer holds us
    /// (RFC 6337 §5.3: a hold while held is `inactive`, not `sendonly`).
    pub const fn offer(self) -> Direction {
        let intent = self.intent();
        if self.remote {
            intent.intersect(Direction::RecvOnly)
        } else {
            intent
        }
    }

    /// Reads the peer's hold from a direction it offered: an offer that does not let the
    /// peer receive (`sendonly` or `inactive`) holds us.
    pub const fn with_remote_offer(self, offered: Direction) -> HoldState {
        HoldState {
            local: self.local,
            remote: !offered.receives(),
        }
    }

    /// Our answer to an offer: the offer reversed, intersected with our intent.
    pub const fn answer(self, offered: Direction) -> Direction {
        Direction::answer(offered, self.intent())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::*;

    #[test]
    fn answers_follow_rfc_3264_table() {
        // RFC 3264 §6.1: sendonly → recvonly (or inactive); recvonly → sendonly (or inactive);
        // inactive → inactive; sendrecv → anything.
        for (offer, want) in [
            (SendRecv, SendRecv),
            (SendOnly, RecvOnly),
            (RecvOnly, SendOnly),
            (Inactive, Inactive),
        ] {
            assert_eq!(Direction::answer(offer, SendRecv), want, "{offer}");
        }
    }

    #[test]
    fn hold_offers_and_answers_rfc_6337() {
        let idle = HoldState::default();
        assert_eq!(idle.offer(), SendRecv);
        let holding = HoldState {
            local: true,
            remote: false,
        };
        assert_eq!(holding.offer(), SendOnly);
        let both = HoldState {
            local: true,
            remote: true,
        };
        assert_eq!(both.offer(), Inactive, "a hold while held is inactive");
        // Resuming while the peer still holds us must not answer or offer sendrecv.
        let resumed_but_held = HoldState {
            local: false,
            remote: true,
        };
        assert_eq!(resumed_but_held.offer(), RecvOnly);
        // The peer re-offers sendrecv while we hold: our answer stays sendonly.
        assert_eq!(holding.answer(SendRecv), SendOnly);
        // The peer holds us (sendonly): we answer recvonly, or inactive while we hold too.
        assert_eq!(idle.answer(SendOnly), RecvOnly);
        assert_eq!(holding.answer(SendOnly), Inactive);
        // Detecting the peer's hold from its offers.
        assert!(idle.with_remote_offer(SendOnly).remote);
        assert!(idle.with_remote_offer(Inactive).remote);
        assert!(!both.with_remote_offer(SendRecv).remote);
        assert!(
            both.with_remote_offer(SendRecv).local,
            "our own hold is untouched"
        );
    }

    #[test]
    fn reverse_and_intersect_are_consistent() {
        for a in [SendRecv, SendOnly, RecvOnly, Inactive] {
            assert_eq!(a.reversed().reversed(), a);
            assert_eq!(a.intersect(SendRecv), a);
            assert_eq!(a.intersect(Inactive), Inactive);
            assert_eq!(Direction::from_attribute(a.as_str()), Some(a));
        }
    }
}
