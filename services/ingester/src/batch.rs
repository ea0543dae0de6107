//! Batching: decoded frames become batches of at most `size` events, flushed when full or when
//! `timeout` has passed since the batch's first frame. A [`Input::DropCursor`] closes the batch
//! it arrives in.

use std::time::Duration;

use rsky_common::event::StreamEvent;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::decode::Decoded;

/// What a socket's task hands its writer, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// A decoded frame.
    Frame(Decoded),
    /// The subscription dropped its cursor (the relay answered `FutureCursor`): once the frames
    /// before this are written, the stored cursor is deleted, so the frames after it (a new
    /// sequence, lower seqs) are not taken for frames already written.
    DropCursor,
}

/// Events to write together, and the cursor that covers them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    /// The events, in stream order.
    pub events: Vec<StreamEvent>,
    /// The highest seq of the frames in the batch (those without events included).
    pub cursor: Option<i64>,
    /// Whether the stored cursor is deleted once the batch is written.
    pub drop_cursor: bool,
}

impl Batch {
    fn add(&mut self, decoded: Decoded) {
        self.events.extend(decoded.events);
        if decoded.seq.is_some() {
            self.cursor = decoded.seq.max(self.cursor);
        }
    }
}

/// The next batch from `rx`: waits for a first frame, then takes frames until `size` events or
/// `timeout`. `None` once the channel is closed and empty.
pub async fn next_batch(
    rx: &mut mpsc::Receiver<Input>,
    size: usize,
    timeout: Duration,
) -> Option<Batch> {
    let mut batch = Batch::default();
    match rx.recv().await? {
        Input::Frame(decoded) => batch.add(decoded),
        Input::DropCursor => {
            batch.drop_cursor = true;
            return Some(batch);
        }
    }
    let deadline = Instant::now() + timeout;
    while batch.events.len() < size {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(Input::Frame(decoded))) => batch.add(decoded),
            Ok(Some(Input::DropCursor)) => {
                batch.drop_cursor = true;
                break;
            }
            Ok(None) | Err(_) => break,
        }
    }
    Some(batch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsky_common::event::IdentityEvent;

    fn frame(seq: i64, events: usize) -> Input {
        Input::Frame(Decoded {
            seq: Some(seq),
            events: (0..events)
                .map(|_| {
                    StreamEvent::Identity(IdentityEvent {
                        seq,
                        time: "t".into(),
                        did: "did:plc:a".into(),
                        handle: None,
                    })
                })
                .collect(),
            ..Decoded::default()
        })
    }

    #[tokio::test]
    async fn a_batch_closes_when_it_reaches_the_size() {
        let (tx, mut rx) = mpsc::channel(10);
        for seq in 1..=4 {
            tx.send(frame(seq, 1)).await.unwrap();
        }
        let batch = next_batch(&mut rx, 3, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(batch.events.len(), 3);
        assert_eq!(batch.cursor, Some(3));
    }

    #[tokio::test]
    async fn a_partial_batch_closes_at_the_timeout() {
        let (tx, mut rx) = mpsc::channel(10);
        tx.send(frame(1, 1)).await.unwrap();
        let batch = next_batch(&mut rx, 500, Duration::from_millis(50))
            .await
            .unwrap();
        assert_eq!(batch.events.len(), 1);
        drop(tx);
    }

    #[tokio::test]
    async fn frames_without_events_still_advance_the_cursor() {
        let (tx, mut rx) = mpsc::channel(10);
        tx.send(frame(1, 1)).await.unwrap();
        tx.send(frame(2, 0)).await.unwrap();
        drop(tx);
        let batch = next_batch(&mut rx, 500, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!((batch.events.len(), batch.cursor), (1, Some(2)));
        assert!(next_batch(&mut rx, 500, Duration::from_secs(60))
            .await
            .is_none());
    }

    #[tokio::test]
    async fn dropping_the_cursor_closes_the_batch_before_the_frames_after_it() {
        let (tx, mut rx) = mpsc::channel(10);
        tx.send(frame(7, 1)).await.unwrap();
        tx.send(Input::DropCursor).await.unwrap();
        tx.send(frame(1, 1)).await.unwrap();
        drop(tx);
        let first = next_batch(&mut rx, 500, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!((first.cursor, first.drop_cursor), (Some(7), true));
        let second = next_batch(&mut rx, 500, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!((second.cursor, second.drop_cursor), (Some(1), false));
    }
}
