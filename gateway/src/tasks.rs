//! Every task the gateway starts, tracked, so that shutdown can wait for all of them (a
//! connection's read loop and writer, its requests to the ai-service, its backfills, the
//! watchdog). Nothing the gateway spawns is detached.

use std::future::Future;
use std::time::Duration;

use tokio_util::task::TaskTracker;

/// The gateway's tasks. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Tasks(TaskTracker);

/// How a wait for the tasks ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// Every task has ended.
    All,
    /// The deadline came first; this many were still running.
    TimedOut { running: usize },
}

impl Tasks {
    /// Runs `f` on the current actix worker: a connection's own tasks (its read loop, its
    /// writer, its requests) stay on the thread that serves its socket. Call it from a worker.
    pub fn spawn_local<F: Future<Output = ()> + 'static>(&self, f: F) {
        actix_web::rt::spawn(self.0.track_future(f));
    }

    /// Runs `f` on the current Tokio runtime (callable from anywhere: the feed's reader runs
    /// outside the actix workers).
    pub fn spawn<F: Future<Output = ()> + Send + 'static>(&self, f: F) {
        self.0.spawn(f);
    }

    /// Tasks running now.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Waits for every task to end, up to `deadline` (shutdown).
    pub async fn wait(&self, deadline: Duration) -> Drained {
        self.0.close();
        match tokio::time::timeout(deadline, self.0.wait()).await {
            Ok(()) => Drained::All,
            Err(_) => Drained::TimedOut {
                running: self.0.len(),
            },
        }
    }
}
