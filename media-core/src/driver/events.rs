//! Bounded event streams: what the driver hands the application, a phone's and each call's.
//!
//! The driver never waits for the application, and an application that never reads its
//! events must not make the phone's memory grow without limit. So every stream is a ring of
//! at most `capacity` events: when it is full, the **oldest** event is dropped to make room
//! for the new one (the newest news is the most useful: a call's end matters more than its
//! ringing a minute ago), [`EventStream::dropped`] counts what was lost, and a warning is
//! logged at the first loss and at every power of two after it. A stream nobody holds any
//! more takes nothing at all.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use futures::Stream;

/// How many events a stream holds by default before it drops the oldest.
pub const DEFAULT_EVENT_CAPACITY: usize = 1_024;

struct Ring<T> {
    items: VecDeque<T>,
    capacity: usize,
    dropped: u64,
    waker: Option<Waker>,
    /// The sending side is gone: the stream ends once drained.
    closed: bool,
    /// The stream was dropped: pushing is pointless.
    abandoned: bool,
}

fn lock<T>(m: &Mutex<Ring<T>>) -> MutexGuard<'_, Ring<T>> {
    // A panic while holding this lock leaves the ring consistent (every step is one
    // VecDeque call), so a poisoned lock is still good to use.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A bounded stream of events (see the [module documentation](self) for what happens when it
/// is full). It ends when the phone (or the call, for a call's stream) is gone and every
/// event it held has been read.
pub struct EventStream<T> {
    ring: Arc<Mutex<Ring<T>>>,
}

impl<T> std::fmt::Debug for EventStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ring = lock(&self.ring);
        f.debug_struct("EventStream")
            .field("queued", &ring.items.len())
            .field("capacity", &ring.capacity)
            .field("dropped", &ring.dropped)
            .finish()
    }
}

/// The driver's end of an [`EventStream`].
pub(crate) struct EventSender<T> {
    ring: Arc<Mutex<Ring<T>>>,
}

/// A stream holding at most `capacity` events (at least one), and its sender.
pub(crate) fn channel<T>(capacity: usize) -> (EventSender<T>, EventStream<T>) {
    let ring = Arc::new(Mutex::new(Ring {
        items: VecDeque::new(),
        capacity: capacity.max(1),
        dropped: 0,
        waker: None,
        closed: false,
        abandoned: false,
    }));
    (EventSender { ring: ring.clone() }, EventStream { ring })
}

impl<T> EventSender<T> {
    /// Queues `item`, dropping the oldest when full. `false` once the stream is gone.
    pub(crate) fn push(&self, item: T) -> bool {
        let mut ring = lock(&self.ring);
        if ring.abandoned {
            return false;
        }
        if ring.items.len() >= ring.capacity {
            ring.items.pop_front();
            ring.dropped += 1;
            if ring.dropped.is_power_of_two() {
                tracing::warn!(
                    dropped = ring.dropped,
                    capacity = ring.capacity,
                    "event stream full: the oldest events are being dropped (read the stream, or drop it)"
                );
            }
        }
        ring.items.push_back(item);
        if let Some(w) = ring.waker.take() {
            w.wake();
        }
        true
    }

    /// Whether the stream is gone.
    pub(crate) fn is_abandoned(&self) -> bool {
        lock(&self.ring).abandoned
    }
}

impl<T> Drop for EventSender<T> {
    fn drop(&mut self) {
        let mut ring = lock(&self.ring);
        ring.closed = true;
        if let Some(w) = ring.waker.take() {
            w.wake();
        }
    }
}

impl<T> EventStream<T> {
    /// How many events were dropped because the stream was full.
    pub fn dropped(&self) -> u64 {
        lock(&self.ring).dropped
    }

    /// How many events wait to be read.
    pub fn len(&self) -> usize {
        lock(&self.ring).items.len()
    }

    /// Whether no event waits to be read.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most events it holds.
    pub fn capacity(&self) -> usize {
        lock(&self.ring).capacity
    }

    /// The next event without waiting, if one is queued.
    pub fn try_next(&mut self) -> Option<T> {
        lock(&self.ring).items.pop_front()
    }
}

impl<T> Stream for EventStream<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut ring = lock(&self.ring);
        if let Some(item) = ring.items.pop_front() {
            return Poll::Ready(Some(item));
        }
        if ring.closed {
            return Poll::Ready(None);
        }
        ring.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl<T> Drop for EventStream<T> {
    fn drop(&mut self) {
        let mut ring = lock(&self.ring);
        ring.abandoned = true;
        ring.items.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[test]
    fn a_full_stream_drops_the_oldest_and_counts() {
        let (tx, mut rx) = channel(3);
        for i in 0..10 {
            assert!(tx.push(i));
        }
        assert_eq!(rx.len(), 3);
        assert_eq!(rx.dropped(), 7);
        assert_eq!(rx.try_next(), Some(7));
        drop(tx);
        let rest: Vec<i32> = futures::executor::block_on(rx.by_ref().collect());
        assert_eq!(rest, vec![8, 9]);
    }

    #[test]
    fn a_dropped_stream_takes_nothing() {
        let (tx, rx) = channel(3);
        drop(rx);
        assert!(!tx.push(1));
        assert!(tx.is_abandoned());
    }

    #[test]
    fn the_reader_is_woken() {
        let (tx, mut rx) = channel::<u8>(2);
        let reader = std::thread::spawn(move || futures::executor::block_on(rx.next()));
        std::thread::sleep(std::time::Duration::from_millis(20));
        tx.push(5);
        assert_eq!(reader.join().unwrap(), Some(5));
    }
}
