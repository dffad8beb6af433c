//! The bounded channel between a [`Session`](crate::Session) and its response body
//! (streamline's patch; upstream uses `tokio::sync::mpsc` with `tokio_util::sync::PollSender`).
//!
//! Why: a tokio mpsc channel allocates its first block of 32 slots when it is created, and
//! `PollSender` boxes a reservation future: about 2.1 KB per WebSocket connection before
//! anything is sent, which an idle connection keeps for its whole life. Here the queue is a
//! `VecDeque` that allocates on first use, under a mutex that is never held across an await.
//!
//! Contract, as the code using it relies on (the same as `PollSender` over a bounded mpsc):
//! - at most `capacity` messages are queued or reserved at once;
//! - `poll_ready` reserves one slot for this sender (a clone has its own reservation), and a
//!   reserved slot is used by the next `start_send` without waiting;
//! - messages are received in the order they were sent;
//! - the receiver sees the end once every sender is gone and the queue is empty;
//! - once the receiver is closed or dropped, senders get an error and queued messages are
//!   dropped.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Poll, Waker},
};

struct State<T> {
    queue: VecDeque<T>,
    capacity: usize,
    /// Slots reserved by senders' `poll_ready` and not yet used.
    reserved: usize,
    senders: usize,
    receiver_closed: bool,
    receiver: Option<Waker>,
    /// Senders waiting for a slot (few: a connection has one writer and one reserved clone).
    waiting: Vec<Waker>,
}

struct Shared<T> {
    state: Mutex<State<T>>,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic while holding the lock leaves the queue consistent (every mutation is one
        // step), so a poisoned lock is used as is.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The send error: the receiver is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendError;

/// A sending half; clones share the queue, each with its own reservation.
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
    has_slot: bool,
}

/// The receiving half.
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

/// A channel holding at most `capacity` messages (at least 1).
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            capacity: capacity.max(1),
            reserved: 0,
            senders: 1,
            receiver_closed: false,
            receiver: None,
            waiting: Vec::new(),
        }),
    });
    (
        Sender {
            shared: shared.clone(),
            has_slot: false,
        },
        Receiver { shared },
    )
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Sender {
            shared: self.shared.clone(),
            has_slot: false,
        }
    }
}

impl<T> Sender<T> {
    /// Reserves a slot for the next [`Sender::start_send`].
    pub fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), SendError>> {
        let mut state = self.shared.lock();
        if state.receiver_closed {
            return Poll::Ready(Err(SendError));
        }
        if self.has_slot {
            return Poll::Ready(Ok(()));
        }
        if state.queue.len() + state.reserved < state.capacity {
            state.reserved += 1;
            self.has_slot = true;
            return Poll::Ready(Ok(()));
        }
        if !state.waiting.iter().any(|w| w.will_wake(cx.waker())) {
            state.waiting.push(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Queues `message` in the slot reserved by [`Sender::poll_ready`].
    pub fn start_send(&mut self, message: T) -> Result<(), SendError> {
        if !self.has_slot {
            return Err(SendError);
        }
        let receiver = {
            let mut state = self.shared.lock();
            self.has_slot = false;
            state.reserved -= 1;
            if state.receiver_closed {
                return Err(SendError);
            }
            state.queue.push_back(message);
            state.receiver.take()
        };
        if let Some(waker) = receiver {
            waker.wake();
        }
        Ok(())
    }

    /// Waits for a slot and queues `message` (the crate's tests send this way, as through
    /// tokio's `Sender::send(&self)`).
    #[cfg(test)]
    pub async fn send(&self, message: T) -> Result<(), SendError> {
        let mut sender = self.clone();
        std::future::poll_fn(|cx| sender.poll_ready(cx)).await?;
        sender.start_send(message)
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let (receiver, waiting) = {
            let mut state = self.shared.lock();
            state.senders -= 1;
            if self.has_slot {
                state.reserved -= 1;
            }
            let waiting = if self.has_slot {
                // The slot is free again for a waiting clone.
                std::mem::take(&mut state.waiting)
            } else {
                Vec::new()
            };
            let receiver = if state.senders == 0 {
                state.receiver.take()
            } else {
                None
            };
            (receiver, waiting)
        };
        waiting.into_iter().for_each(Waker::wake);
        if let Some(waker) = receiver {
            waker.wake();
        }
    }
}

impl<T> Receiver<T> {
    /// The next message; `None` once every sender is gone and nothing is queued.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let (message, waiting) = {
            let mut state = self.shared.lock();
            match state.queue.pop_front() {
                Some(message) => (message, std::mem::take(&mut state.waiting)),
                None if state.senders == 0 || state.receiver_closed => return Poll::Ready(None),
                None => {
                    state.receiver = Some(cx.waker().clone());
                    return Poll::Pending;
                }
            }
        };
        waiting.into_iter().for_each(Waker::wake);
        Poll::Ready(Some(message))
    }

    /// Waits for the next message (the crate's tests receive this way).
    #[cfg(test)]
    pub async fn recv(&mut self) -> Option<T> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Refuses every further send and drops what is queued.
    pub fn close(&mut self) {
        let (queued, waiting) = {
            let mut state = self.shared.lock();
            state.receiver_closed = true;
            (
                std::mem::take(&mut state.queue),
                std::mem::take(&mut state.waiting),
            )
        };
        drop(queued);
        waiting.into_iter().for_each(Waker::wake);
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use super::*;

    fn cx() -> Context<'static> {
        Context::from_waker(Waker::noop())
    }

    #[test]
    fn capacity_counts_queued_and_reserved_slots() {
        let (mut tx, mut rx) = channel::<u32>(2);
        let mut reserved = tx.clone();
        assert_eq!(reserved.poll_ready(&mut cx()), Poll::Ready(Ok(())));
        assert_eq!(tx.poll_ready(&mut cx()), Poll::Ready(Ok(())));
        tx.start_send(1).unwrap();
        assert!(tx.poll_ready(&mut cx()).is_pending(), "one queued + one reserved = 2");
        reserved.start_send(2).unwrap();
        assert_eq!(rx.poll_recv(&mut cx()), Poll::Ready(Some(1)));
        assert_eq!(tx.poll_ready(&mut cx()), Poll::Ready(Ok(())));
        tx.start_send(3).unwrap();
        assert_eq!(rx.poll_recv(&mut cx()), Poll::Ready(Some(2)));
        assert_eq!(rx.poll_recv(&mut cx()), Poll::Ready(Some(3)));
        assert!(rx.poll_recv(&mut cx()).is_pending());
        drop((tx, reserved));
        assert_eq!(rx.poll_recv(&mut cx()), Poll::Ready(None));
    }

    #[test]
    fn a_closed_receiver_refuses_sends() {
        let (mut tx, mut rx) = channel::<u32>(4);
        assert_eq!(tx.poll_ready(&mut cx()), Poll::Ready(Ok(())));
        rx.close();
        assert_eq!(tx.start_send(1), Err(SendError));
        assert_eq!(tx.poll_ready(&mut cx()), Poll::Ready(Err(SendError)));
        assert_eq!(rx.poll_recv(&mut cx()), Poll::Ready(None));
    }

    #[test]
    fn start_send_without_a_slot_fails() {
        let (mut tx, _rx) = channel::<u32>(4);
        assert_eq!(tx.start_send(1), Err(SendError));
    }
}
