//! Races run on purpose: [`TASKS`] Tokio tasks released together behind a barrier, for
//! [`ROUNDS`] rounds, on a backend whose pool has several connections (see
//! [`on_pooled_backends!`](crate::on_pooled_backends)), so their transactions really
//! overlap. A guard that is missing (a spent-marker insert, a version check) then lets
//! more than one task through in some round.

use std::future::Future;
use std::sync::Arc;

use identa::Error;
use identa::store::StoreError;
use tokio::sync::Barrier;

use super::form_message_ids;

/// How many tasks race in one round.
pub const TASKS: usize = 8;
/// How many rounds a race test runs.
pub const ROUNDS: usize = 5;

/// Runs `make(i)` for `i` in `0..TASKS`, each on its own task, all released at once by a
/// barrier; the results in the order of `i`. The futures are built first and do nothing
/// until released (so set-up such as creating flows belongs before this call).
pub async fn released_together<T, F, Fut>(make: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let barrier = Arc::new(Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| {
            let barrier = barrier.clone();
            let work = make(i);
            tokio::spawn(async move {
                barrier.wait().await;
                work.await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(TASKS);
    for task in tasks {
        results.push(task.await.expect("a racing task panicked"));
    }
    results
}

/// Whether `result` is how a flow refuses a code that another racing task already used:
/// the flow was completed before this submission read it (the form message `completed`,
/// "already completed"), or while this one was judged, so the version check refused its
/// write.
pub fn refused_as_completed<T>(result: &Result<T, Error>, completed: u32) -> bool {
    match result {
        Err(Error::Flow(identa::flow::FlowError::Invalid(flow))) => {
            form_message_ids(flow) == vec![completed]
        }
        Err(Error::Store(StoreError::Stale { what: "flow" })) => true,
        _ => false,
    }
}
