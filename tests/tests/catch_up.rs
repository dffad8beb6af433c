//! Issue 18, point 1, end to end: lossless catch-up. A client that sent `caps=merge` and
//! falls behind (here: it reads nothing until the whole answer is written, through a 4 KiB
//! receive buffer) is not cut off: the gateway keeps the backlog in the socket's queue (the
//! kernel holds at most `TCP_NOTSENT_LOWAT` unsent) and merges consecutive chunks into frames
//! covering `first_seq..=seq`. Its text equals the stored text, every seq arrives once, in
//! order, and it got fewer frames than chunks. A client without `caps=merge` gets one frame
//! per chunk, without `first_seq`.

use e2e_tests::client::{absorb, Transcript};
use e2e_tests::{Stack, WsClient};
use shared_proto::{FinalStatus, ServerFrame};
use uuid::Uuid;

/// A long answer written as fast as the store takes it: about 120 KB of text.
const LONG: &str = "!demo tokens=20000 rate=0\nall at once";

/// Reads `id` to its `done`; returns the transcript and the number of chunk frames, and
/// whether any frame carried `first_seq`.
async fn read_all(c: &mut WsClient, id: Uuid) -> (Transcript, usize, bool) {
    let mut t = Transcript::new(id);
    let (mut frames, mut merged) = (0, false);
    while t.done.is_none() {
        let f = c.frame().await;
        if let ServerFrame::Chunk { first_seq, .. } = &f {
            frames += 1;
            merged |= first_seq.is_some();
        }
        if !matches!(f, ServerFrame::Ack { .. }) {
            assert!(absorb(&mut t, &f), "unexpected frame {f:?}");
        }
    }
    (t, frames, merged)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merging_client_that_falls_behind_gets_its_backlog_merged_and_whole() {
    // A write may wait for this client's reads longer than usual on a loaded machine.
    let stack = Stack::start_with(&[], &[("SEND_TIMEOUT", "60s")]).await;
    let url = format!("{}?caps=merge", stack.gateway.ws_url());
    let mut slow = WsClient::connect_small_buffer(&url, stack.gateway.port).await;
    let id = slow.chat(LONG).await;
    // It reads nothing until the answer is completely written (an event of the ai-service).
    let stored = stack.ai.wait_terminal(slow.session_id, id).await;
    assert_eq!(stored.state, shared_proto::MessageState::Completed);
    let (t, frames, merged) = read_all(&mut slow, id).await;
    t.assert_well_formed();
    assert_eq!(t.status(), Some(FinalStatus::Completed));
    assert_eq!(t.text, stored.text, "every delta, once, in order");
    assert_eq!(t.seqs, (1..=stored.last_seq).collect::<Vec<_>>());
    assert!(
        merged,
        "no frame was merged ({frames} frames, {} seqs)",
        stored.last_seq
    );
    assert!(
        (frames as u64) < stored.last_seq,
        "{frames} frames for {} seqs",
        stored.last_seq
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_caps_gets_one_frame_per_chunk() {
    let stack = Stack::start().await;
    let mut c = WsClient::connect(&stack.gateway.ws_url()).await;
    let id = c.chat("!demo tokens=300 rate=0\nplain").await;
    let stored = stack.ai.wait_terminal(c.session_id, id).await;
    let (t, frames, merged) = read_all(&mut c, id).await;
    assert_eq!(t.text, stored.text);
    assert!(
        !merged,
        "first_seq sent to a client that did not ask for merging"
    );
    assert_eq!(frames as u64, stored.last_seq);
}
