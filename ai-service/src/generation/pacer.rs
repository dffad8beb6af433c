//! When one generation writes a chunk (`CHUNK_LINGER`): a token that follows the previous
//! token by less than the linger is held for up to the linger, so that the tokens right behind
//! it go out in the same chunk; a token after a longer pause is written at once.
//!
//! Why: every chunk costs the same whole pipeline (a log entry and a publish in Redis, a frame
//! per subscribed socket in each gateway, a read and a parse in each client) whatever text it
//! holds, so the cost of an answer follows its chunks, not its tokens. With a 25 ms linger, a
//! model streaming 50 tokens/s costs half the chunks, and one at 200 tokens/s about a sixth,
//! while no token waits more than 25 ms. The rule looks at the model's pace only (the gap
//! between two tokens), never at when the previous write happened: a model slower than one
//! token per linger (the first token of every answer included) sees no added latency at all,
//! and a held write cannot push the next one later and later. The chunk's `ts` is its first
//! token's arrival (`pending`), so the wait shows in every latency measured from it.
//!
//! Contract: with a zero linger every write is due at once (the behaviour before the
//! setting). Otherwise the tokens that arrive while nothing is waiting start a batch; the
//! batch is due at its first token's arrival when that token came at least a linger after the
//! token before it (or is the answer's first), else a linger after its arrival. [`Pacer::ready`]
//! says whether it is due, and when it is not, arms [`Pacer::wait`] to resolve when it is. While
//! a write is in flight tokens accumulate regardless. Without a linger the clock is never read.

use std::pin::Pin;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// One generation's write timing.
pub struct Pacer {
    linger: Duration,
    /// When the latest token arrived.
    previous: Option<Instant>,
    /// When the unwritten tokens are due (None: nothing waits, or there is no linger).
    batch_due: Option<Instant>,
    /// Set to `batch_due` by [`Pacer::ready`] when that is still to come; allocated on the
    /// first wait only, and reused (re-arming a timer per token would be per-token work).
    hold: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

impl Pacer {
    pub fn new(linger: Duration) -> Self {
        Pacer {
            linger,
            previous: None,
            batch_due: None,
            hold: None,
            armed: false,
        }
    }

    /// A token arrived (the clock is not read when there is no linger).
    pub fn arrived(&mut self) {
        if !self.linger.is_zero() {
            self.arrived_at(Instant::now());
        }
    }

    /// A token arrived at `now`.
    fn arrived_at(&mut self, now: Instant) {
        if self.batch_due.is_none() {
            let fast = self
                .previous
                .is_some_and(|previous| now.duration_since(previous) < self.linger);
            self.batch_due = Some(if fast { now + self.linger } else { now });
        }
        self.previous = Some(now);
    }

    /// When the unwritten tokens are due, if that is after `now`.
    fn due_after(&self, now: Instant) -> Option<Instant> {
        self.batch_due.filter(|&at| at > now)
    }

    /// Whether the unwritten tokens may be written now; if not, [`Pacer::wait`] resolves when
    /// they may.
    pub fn ready(&mut self) -> bool {
        if self.batch_due.is_none() {
            return true;
        }
        let Some(at) = self.due_after(Instant::now()) else {
            return true;
        };
        if !self.armed {
            match self.hold.as_mut() {
                Some(sleep) => sleep.as_mut().reset(at),
                None => self.hold = Some(Box::pin(tokio::time::sleep_until(at))),
            }
            self.armed = true;
        }
        false
    }

    /// A write started with every token that had arrived.
    pub fn wrote(&mut self) {
        self.batch_due = None;
        self.armed = false;
    }

    /// Resolves when the tokens [`Pacer::ready`] held back are due; pending for ever if it held
    /// none back.
    pub async fn wait(&mut self) {
        match (self.armed, self.hold.as_mut()) {
            (true, Some(sleep)) => {
                sleep.as_mut().await;
                self.armed = false;
            }
            _ => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_linger_is_always_due() {
        let mut p = Pacer::new(Duration::ZERO);
        let t0 = Instant::now();
        p.arrived_at(t0);
        assert_eq!(p.due_after(t0), None);
        p.wrote();
        p.arrived_at(t0);
        assert_eq!(p.due_after(t0), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_model_is_never_held() {
        // 25 tokens/s against a 25 ms linger, with 1 ms of jitter either way.
        let mut p = Pacer::new(ms(25));
        let t0 = Instant::now();
        for (i, jitter) in [0i64, 1, -1, 1, -1, 0].into_iter().enumerate() {
            let at = t0 + ms(40 * i as u64 + 1);
            let at = if jitter < 0 {
                at - ms(1)
            } else {
                at + ms(jitter as u64)
            };
            p.arrived_at(at);
            assert_eq!(p.due_after(at), None, "token {i}");
            p.wrote();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_fast_model_goes_out_in_pairs_and_nobody_waits_more_than_the_linger() {
        // 50 tokens/s against a 25 ms linger: the first at once, then two per chunk.
        let mut p = Pacer::new(ms(25));
        let t0 = Instant::now();
        p.arrived_at(t0);
        assert_eq!(p.due_after(t0), None, "the answer's first token");
        p.wrote();
        let mut written = Vec::new();
        let mut pending: Vec<u64> = Vec::new();
        for i in 1..=9u64 {
            let at = t0 + ms(20 * i);
            // A batch due by now is written before this token arrives.
            if !pending.is_empty() && p.due_after(at).is_none() {
                written.push(std::mem::take(&mut pending));
                p.wrote();
            }
            p.arrived_at(at);
            pending.push(i);
            match p.due_after(at) {
                Some(due) => assert!(due - at <= ms(25), "token {i} waits {:?}", due - at),
                None => panic!("token {i} follows the previous by 20 ms: held"),
            }
        }
        assert_eq!(
            written,
            vec![vec![1, 2], vec![3, 4], vec![5, 6], vec![7, 8]]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn wait_resolves_when_the_held_tokens_are_due_and_only_then() {
        let mut p = Pacer::new(ms(25));
        let t0 = Instant::now();
        p.arrived_at(t0);
        assert!(p.ready(), "the answer's first token");
        p.wrote();
        p.arrived_at(t0 + ms(5));
        assert_eq!(p.due_after(t0 + ms(5)), Some(t0 + ms(30)));
        assert!(!p.ready(), "a token 5 ms after the previous one is held");
        p.wait().await;
        assert!(Instant::now() >= t0 + ms(30));
        assert!(p.ready());
        p.wrote();
        // Nothing held back: it never resolves.
        let never = tokio::time::timeout(Duration::from_secs(60), p.wait()).await;
        assert!(never.is_err());
    }
}
