//! The relay's in-memory event log: frames in order, the sequenced ones resumable by cursor.

use std::collections::VecDeque;
use std::sync::{Arc, RwLock};

use axum::body::Bytes;

use tokio::sync::watch;

/// One frame of a log: a sequenced event, or an unsequenced frame (error, info, malformed)
/// that is sent in its place in the order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// The event's `seq`; `None` for unsequenced frames.
    pub seq: Option<i64>,
    /// The websocket binary message.
    pub frame: Bytes,
}

impl Item {
    /// A sequenced event.
    pub fn event(seq: i64, frame: Vec<u8>) -> Self {
        Item {
            seq: Some(seq),
            frame: Bytes::from(frame),
        }
    }

    /// A frame without a seq.
    pub fn unsequenced(frame: Vec<u8>) -> Self {
        Item {
            seq: None,
            frame: Bytes::from(frame),
        }
    }
}

struct Inner {
    items: VecDeque<Item>,
    /// Absolute position of `items[0]` (positions keep counting when old items are dropped).
    base: u64,
    capacity: usize,
}

/// An append-only log shared by the relay's connections; subscribers follow it live.
#[derive(Clone)]
pub struct FrameLog {
    inner: Arc<RwLock<Inner>>,
    appended: watch::Sender<u64>,
}

impl FrameLog {
    /// A log keeping the last `capacity` frames (older ones are dropped, as a relay's window).
    pub fn new(capacity: usize) -> Self {
        FrameLog {
            inner: Arc::new(RwLock::new(Inner {
                items: VecDeque::new(),
                base: 0,
                capacity: capacity.max(1),
            })),
            appended: watch::Sender::new(0),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        // A panic while holding the lock leaves the data consistent (pushes are single calls).
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends frames and wakes the subscribers.
    pub fn extend(&self, items: impl IntoIterator<Item = Item>) {
        let end = {
            let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
            inner.items.extend(items);
            while inner.items.len() > inner.capacity {
                inner.items.pop_front();
                inner.base += 1;
            }
            inner.base + inner.items.len() as u64
        };
        self.appended.send_replace(end);
    }

    /// The absolute position where a subscriber with `cursor` starts: after the last event
    /// whose seq is at most the cursor; the oldest kept frame without a cursor.
    pub fn start_position(&self, cursor: Option<i64>) -> u64 {
        let inner = self.read();
        let Some(cursor) = cursor else {
            return inner.base;
        };
        let after = inner
            .items
            .iter()
            .rposition(|item| item.seq.is_some_and(|seq| seq <= cursor))
            .map(|i| i + 1)
            .unwrap_or(0);
        inner.base + after as u64
    }

    /// Up to `max` frames from absolute position `pos` (clamped to the oldest kept frame);
    /// returns the position after them.
    pub fn read_from(&self, pos: u64, max: usize) -> (Vec<Item>, u64) {
        let inner = self.read();
        let pos = pos.max(inner.base);
        let start = (pos - inner.base) as usize;
        let items: Vec<Item> = inner.items.iter().skip(start).take(max).cloned().collect();
        let next = pos + items.len() as u64;
        (items, next)
    }

    /// Waits until the log has frames at or beyond `pos`.
    pub async fn wait_beyond(&self, pos: u64) {
        let mut rx = self.appended.subscribe();
        let _ = rx.wait_for(|end| *end > pos).await;
    }

    /// The highest seq in the log, if any.
    pub fn last_seq(&self) -> Option<i64> {
        self.read().items.iter().rev().find_map(|item| item.seq)
    }

    /// The number of frames kept.
    pub fn len(&self) -> usize {
        self.read().items.len()
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_with(seqs: &[Option<i64>]) -> FrameLog {
        let log = FrameLog::new(100);
        log.extend(seqs.iter().map(|seq| Item {
            seq: *seq,
            frame: Bytes::new(),
        }));
        log
    }

    #[test]
    fn a_cursor_resumes_after_the_last_event_it_covers() {
        let log = log_with(&[Some(1), Some(2), None, Some(3)]);
        assert_eq!(log.start_position(None), 0);
        assert_eq!(log.start_position(Some(2)), 2);
        assert_eq!(log.start_position(Some(3)), 4);
        assert_eq!(log.start_position(Some(0)), 0);
    }

    #[test]
    fn the_oldest_frames_are_dropped_beyond_capacity() {
        let log = FrameLog::new(2);
        log.extend((1..=3).map(|seq| Item::event(seq, vec![])));
        let (items, next) = log.read_from(0, 10);
        assert_eq!(
            items.iter().map(|i| i.seq).collect::<Vec<_>>(),
            [Some(2), Some(3)]
        );
        assert_eq!(next, 3);
    }
}
