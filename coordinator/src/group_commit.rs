//! Group commit: lease calls and result reports that arrive while the database is busy wait in a
//! queue and go to the store together, as one transaction, when it is free again.
//!
//! Under light load a call runs alone at once, so nothing waits for a timer; under heavy load the
//! batches grow by themselves, and the cost per trial falls to a share of one transaction.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::store::StoreError;

/// The most calls one batch carries.
pub const MAX_BATCH: usize = 256;

type Reply<Response> = oneshot::Sender<Result<Response, StoreError>>;

/// A queue in front of one batched store operation.
pub struct GroupCommit<Request, Response> {
    queue: mpsc::UnboundedSender<(Request, Reply<Response>)>,
}

impl<Request, Response> GroupCommit<Request, Response>
where
    Request: Send + 'static,
    Response: Send + 'static,
{
    /// Starts the queue's task; `run` executes one batch and answers each request in order, and
    /// up to `concurrent` batches run at once. The task ends when the queue is dropped.
    pub fn spawn<Run, Batch>(concurrent: usize, run: Run) -> Self
    where
        Run: Fn(Vec<Request>) -> Batch + Send + Sync + 'static,
        Batch:
            Future<Output = Result<Vec<Result<Response, StoreError>>, StoreError>> + Send + 'static,
    {
        let (queue, mut waiting) = mpsc::unbounded_channel::<(Request, Reply<Response>)>();
        let slots = Arc::new(Semaphore::new(concurrent.max(1)));
        tokio::spawn(async move {
            while let Some(first) = waiting.recv().await {
                // Wait for a free slot first: calls that arrive meanwhile join this batch.
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match waiting.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let (requests, replies): (Vec<Request>, Vec<Reply<Response>>) =
                    batch.into_iter().unzip();
                let execution = run(requests);
                tokio::spawn(async move {
                    let outcome = execution.await;
                    drop(slot);
                    answer(replies, outcome);
                });
            }
        });
        Self { queue }
    }

    /// Queues one request and waits for its batch's answer.
    pub async fn call(&self, request: Request) -> Result<Response, StoreError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Batch(Arc::new(StoreError::Stopped));
        self.queue.send((request, reply)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn answer<Response>(
    replies: Vec<Reply<Response>>,
    outcome: Result<Vec<Result<Response, StoreError>>, StoreError>,
) {
    match outcome {
        Ok(responses) => {
            for (reply, response) in replies.into_iter().zip(responses) {
                // A caller that gave up (its RPC was cancelled) no longer needs the answer.
                let _ = reply.send(response);
            }
        }
        Err(error) => {
            let error = Arc::new(error);
            for reply in replies {
                let _ = reply.send(Err(StoreError::Batch(error.clone())));
            }
        }
    }
}
