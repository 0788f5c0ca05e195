//! The live tail: rows added after a starting point, oldest first, each exactly once, with
//! one poller per caller and query however many watches share it.
//!
//! A poller asks Coder for what is newer than its last position every interval (a walk from
//! the top that stops at that position, see [`crate::walker`]) and broadcasts the new rows.
//! Every watch keeps its *own* position and lets through only what is newer than it, so a
//! watch can join a poller that is ahead of it or behind it: it first subscribes, then reads
//! what is newer than its own starting point itself, and from then on every row recorded
//! later reaches it through the poller. A watch that falls behind the broadcast reads the
//! difference again from its own position. Pollers are keyed by the caller's whole token,
//! the compiled `q` and the interval, never by less: nothing crosses callers.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast};
use tokio_util::sync::CancellationToken;

use crate::{
    auth::SessionToken,
    call::{CallContext, RequestInfo},
    cursor::{self, Position},
    error::{Error, Validation},
    model::Row,
    query::AuditLogFilter,
    source::{PageSource, Retry},
    walker::{rows_since, top},
};

/// The most rows a watch reads in one catch-up (a resumed cursor far behind): they are held
/// in memory until delivered oldest first.
pub(crate) const MAX_BACKLOG: usize = 20_000;
/// Broadcast batches a poller keeps for watches that are slow to take them.
const BROADCAST_DEPTH: usize = 64;

/// A watch's request, as every surface describes it.
#[derive(Debug, Clone, Default)]
pub struct WatchRequest {
    pub q: String,
    pub filter: AuditLogFilter,
    /// A watch cursor (an export's `watch_cursor` or a watch message's `cursor`); `None`
    /// means from now.
    pub after: Option<String>,
    /// How often to ask Coder; never faster than `--watch-interval`.
    pub poll_interval: Option<Duration>,
}

/// Rows for a watch, oldest first.
#[derive(Debug)]
pub struct WatchBatch {
    pub rows: Vec<Arc<Row>>,
    /// Resumes the watch right after this batch.
    pub cursor: String,
    /// Where the watch stood before this batch, for cursors inside it.
    before: Position,
    q: String,
}

impl WatchBatch {
    /// Resumes the watch right after the batch's row `index`: what a surface hands out when
    /// that row cannot be delivered, so that a resume goes on past it.
    #[must_use]
    pub fn cursor_after(&self, index: usize) -> String {
        let mut at = self.before.clone();
        for row in self.rows.iter().take(index + 1) {
            at.advance(row);
        }
        cursor::encode_watch(&self.q, &at)
    }
}

/// Watches and their pollers, shared by every surface.
#[derive(Debug)]
pub(crate) struct Watches {
    interval: Duration,
    permits: Arc<Semaphore>,
    limit: usize,
    pollers: Mutex<HashMap<PollerKey, PollerEntry>>,
    next_id: std::sync::atomic::AtomicU64,
}

/// The whole token is part of the key (its `Debug` prints no token).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PollerKey {
    token: SessionToken,
    q: String,
    interval: Duration,
}

#[derive(Debug)]
struct PollerEntry {
    id: u64,
    tx: broadcast::Sender<Arc<Event>>,
    watchers: usize,
    stop: CancellationToken,
}

#[derive(Debug)]
enum Event {
    Rows(Vec<Arc<Row>>),
    Failed(Error),
}

impl Watches {
    pub(crate) fn new(interval: Duration, max_watches: usize) -> Self {
        Self {
            interval,
            permits: Arc::new(Semaphore::new(max_watches)),
            limit: max_watches,
            pollers: Mutex::new(HashMap::new()),
            next_id: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PollerKey, PollerEntry>> {
        self.pollers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running watch; see the module documentation.
pub struct Watch {
    source: PageSource,
    call: CallContext,
    q: String,
    /// After the last row handed out: what the cursor says.
    delivered: Position,
    /// After the last row queued: what incoming rows are compared with.
    queued: Position,
    pending: VecDeque<Arc<Row>>,
    events: broadcast::Receiver<Arc<Event>>,
    _membership: Membership,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("q", &self.q)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

/// Holds a watch's place: its permit under `--max-watches` and its share of a poller, which
/// stops when its last watch leaves.
struct Membership {
    watches: Arc<Watches>,
    key: PollerKey,
    poller: u64,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Membership {
    fn drop(&mut self) {
        let mut pollers = self.watches.lock();
        if let Some(entry) = pollers.get_mut(&self.key)
            && entry.id == self.poller
        {
            entry.watchers -= 1;
            if entry.watchers == 0 {
                entry.stop.cancel();
                pollers.remove(&self.key);
            }
        }
        metrics::gauge!("gateway_watches_open").decrement(1);
    }
}

impl Watch {
    /// Validates the request, fixes the starting point and joins (or starts) the caller's
    /// poller. A bad `q` or cursor, a refused token or a full gateway is an error at once.
    pub(crate) async fn start(
        source: &PageSource,
        watches: &Arc<Watches>,
        call: CallContext,
        request: WatchRequest,
    ) -> Result<Self, Error> {
        let q = source
            .compile(&request.q, &request.filter)
            .map_err(Error::invalid)?;
        let resumed = (request.after.as_deref())
            .filter(|a| !a.is_empty())
            .map(|text| cursor::decode_watch(&q, text))
            .transpose()
            .map_err(|e| Error::invalid(vec![Validation::new("after", e.to_string())]))?;
        let permit = watches.permits.clone().try_acquire_owned().map_err(|_| {
            Error::Overloaded(format!(
                "the gateway already serves {} watches (--max-watches); retry later",
                watches.limit
            ))
        })?;
        let interval = request
            .poll_interval
            .map_or(watches.interval, |i| i.max(watches.interval));
        // From now: the newest rows are the starting point. Reading them also checks the
        // token and `q` with Coder before the watch is accepted.
        let resumed_from_cursor = resumed.is_some();
        let from = match resumed {
            Some(position) => position,
            None => top(source, &call, &q).await?,
        };
        let key = PollerKey {
            token: call.token.clone(),
            q: q.clone(),
            interval,
        };
        let (events, poller, joined) = {
            let mut pollers = watches.lock();
            if let Some(entry) = pollers.get_mut(&key) {
                entry.watchers += 1;
                (entry.tx.subscribe(), entry.id, true)
            } else {
                let id = watches
                    .next_id
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let (tx, events) = broadcast::channel(BROADCAST_DEPTH);
                let stop = CancellationToken::new();
                // The poller outlives this call, so it must not inherit its deadline.
                let mut poller_call = call.clone();
                poller_call.deadline = None;
                let poller = Poller {
                    source: source.clone(),
                    watches: watches.clone(),
                    call: poller_call,
                    key: key.clone(),
                    id,
                    tx: tx.clone(),
                    stop: stop.clone(),
                };
                tokio::spawn(poll(poller, from.clone()));
                pollers.insert(
                    key.clone(),
                    PollerEntry {
                        id,
                        tx,
                        watchers: 1,
                        stop,
                    },
                );
                (events, id, false)
            }
        };
        metrics::gauge!("gateway_watches_open").increment(1);
        let mut watch = Self {
            source: source.clone(),
            call,
            q,
            delivered: from.clone(),
            queued: from,
            pending: VecDeque::new(),
            events,
            _membership: Membership {
                watches: watches.clone(),
                key,
                poller,
                _permit: permit,
            },
        };
        // A poller that was already running may be past this watch's starting point, and a
        // resumed cursor is behind now: read the difference once, having subscribed first.
        if joined || resumed_from_cursor {
            watch.catch_up().await?;
        }
        Ok(watch)
    }

    /// Queues what is newer than the queued position, read from Coder directly.
    async fn catch_up(&mut self) -> Result<(), Error> {
        let rows = rows_since(&self.source, &self.call, &self.q, &self.queued, MAX_BACKLOG).await?;
        for row in rows {
            self.queue(Arc::new(row));
        }
        Ok(())
    }

    fn queue(&mut self, row: Arc<Row>) {
        if self.queued.is_before(&row) {
            self.queued.advance(&row);
            self.pending.push_back(row);
        }
    }

    /// The next rows, oldest first, at most `max` of them; waits until there are some.
    pub async fn next(&mut self, max: usize) -> Result<WatchBatch, Error> {
        let mut retry = Retry::walk(u32::MAX);
        loop {
            if !self.pending.is_empty() {
                let take = self.pending.len().min(max.max(1));
                let rows: Vec<Arc<Row>> = self.pending.drain(..take).collect();
                let before = self.delivered.clone();
                for row in &rows {
                    self.delivered.advance(row);
                }
                metrics::counter!("gateway_watch_rows_delivered_total", "protocol" => self.call.protocol.as_str())
                    .increment(rows.len() as u64);
                return Ok(WatchBatch {
                    rows,
                    cursor: cursor::encode_watch(&self.q, &self.delivered),
                    before,
                    q: self.q.clone(),
                });
            }
            let closing = self.source.closing().clone();
            let deadline = self.call.deadline;
            let event = tokio::select! {
                () = closing.cancelled() => return Err(Error::ShuttingDown),
                () = async {
                    match deadline {
                        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
                        None => std::future::pending().await,
                    }
                } => return Err(Error::DeadlineExceeded),
                event = self.events.recv() => event,
            };
            match event {
                Ok(event) => match &*event {
                    Event::Rows(rows) => {
                        for row in rows {
                            self.queue(row.clone());
                        }
                    }
                    Event::Failed(error) => return Err(error.clone()),
                },
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Too slow for the broadcast: read what was missed from Coder directly.
                    if let Err(error) = self.catch_up().await {
                        self.source.retry(&mut retry, &self.call, error).await?;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return Err(Error::ShuttingDown),
            }
        }
    }
}

/// What a poller reads with, whom it tells and what stops it.
struct Poller {
    source: PageSource,
    watches: Arc<Watches>,
    call: CallContext,
    key: PollerKey,
    id: u64,
    tx: broadcast::Sender<Arc<Event>>,
    stop: CancellationToken,
}

/// One poller: every interval, what is newer than its position goes to its watches. Passing
/// failures are retried with backoff (honouring `Retry-After`) while the watches stay open; a
/// refusal (401, 403, a bad `q`) ends every watch of the poller with that error.
async fn poll(poller: Poller, mut position: Position) {
    let Poller {
        source,
        watches,
        call,
        key,
        id,
        tx,
        stop,
    } = poller;
    let pollers = metrics::gauge!("gateway_watch_pollers");
    pollers.increment(1);
    let mut retry = Retry::walk(u32::MAX);
    let mut wait = key.interval;
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = source.closing().cancelled() => break,
            () = tokio::time::sleep(wait) => {}
        }
        let mut call = call.clone();
        call.info = RequestInfo::generate();
        let result = tokio::select! {
            () = stop.cancelled() => break,
            result = rows_since(&source, &call, &key.q, &position, MAX_BACKLOG) => result,
        };
        match result {
            Ok(rows) => {
                retry.reset();
                wait = key.interval;
                if rows.is_empty() {
                    continue;
                }
                for row in &rows {
                    position.advance(row);
                }
                let _ = tx.send(Arc::new(Event::Rows(
                    rows.into_iter().map(Arc::new).collect(),
                )));
            }
            Err(error) => {
                if let Some(delay) = retry.delay(&error) {
                    metrics::counter!("gateway_watch_poll_failures_total").increment(1);
                    tracing::warn!(code = error.codes().graphql, %error, "watch poll failed; retrying");
                    wait = delay.max(key.interval);
                } else {
                    tracing::info!(code = error.codes().graphql, %error, "watch poll refused; ending its watches");
                    let _ = tx.send(Arc::new(Event::Failed(error)));
                    let mut pollers = watches.lock();
                    if pollers.get(&key).is_some_and(|entry| entry.id == id) {
                        pollers.remove(&key);
                    }
                    break;
                }
            }
        }
    }
    pollers.decrement(1);
}
