//! A loopback TCP proxy in front of an S3 server (moto) that injects storage faults, switchable
//! at run time: pass through; answer `500 InternalError` / `503 SlowDown`, reset the connection
//! before or after the server saw the request, or delay the answer, for a fraction of requests;
//! hang every request; refuse everything (full outage).
//!
//! How it works: each client connection carries one request. The proxy reads the whole request
//! (head + body, see [`super::http1`]), decides what to do with it, and when it forwards, opens a
//! fresh upstream connection, sends the request with `Connection: close`, and relays the answer
//! (its head rewritten to `Connection: close`) until the server closes. So a client's pooled
//! connection is never reused and every request gets its own decision.
//!
//! What must stay true: a request is forwarded byte for byte (apart from the `Connection`
//! header); every decision is counted under its [`Fault`] kind (or as forwarded) before it takes
//! effect; the proxy's threads end when the [`Proxy`] is dropped.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

use super::http1::{self, Request};

/// Longest a hung request is held when the client never gives up.
const HANG_CAP: Duration = Duration::from_secs(300);

/// A kind of injected fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// `500 Internal Server Error` with S3's `InternalError` body; the server never sees it.
    Error500,
    /// `503 Service Unavailable` with S3's `SlowDown` body (throttling).
    SlowDown503,
    /// Connection reset after the request was read, before the server saw it.
    ResetBefore,
    /// The server handled the request, then the connection is reset instead of answering (the
    /// client cannot know whether it took effect).
    ResetAfter,
    /// The server's answer is delivered after a delay.
    Slow,
    /// The request is read and never answered until the client gives up.
    Hang,
    /// Connection reset as soon as it is accepted (outage).
    Refused,
}

/// Relative weights of the failing kinds within a burst.
#[derive(Clone, Copy, Debug)]
pub struct Weights {
    pub error_500: u32,
    pub slow_down_503: u32,
    pub reset_before: u32,
    pub reset_after: u32,
}

/// Random faults at a modest rate. Failures come in bursts of consecutive requests, as
/// throttling and flaky links do: `object_store` retries each request twice by itself, so only
/// a burst of three or more reaches walstream's own retry layer.
#[derive(Clone, Copy, Debug)]
pub struct FaultPlan {
    /// Probability that a request starts a burst of failures.
    pub burst_rate: f64,
    /// Burst length is uniform in `1..=burst_max` consecutive requests.
    pub burst_max: u32,
    pub weights: Weights,
    /// Probability that a request outside a burst is answered late.
    pub slow_rate: f64,
    /// Delay of a slow answer: uniform in `[slow_delay / 2, slow_delay)`.
    pub slow_delay: Duration,
}

/// What the proxy does with requests from now on.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    Pass,
    Faults(FaultPlan),
    /// Every request hangs.
    Hang,
    /// The next `count` requests with this method (e.g. `"PUT"`: WAL uploads) hang; every other
    /// request passes.
    HangNext {
        method: &'static str,
        count: u32,
    },
    /// Every connection is reset on accept.
    Outage,
}

/// Counters of the proxy's decisions.
#[derive(Clone, Debug, Default)]
pub struct Counts {
    /// Requests read completely (refused connections are not requests).
    pub requests: u64,
    /// Requests forwarded to the server and answered normally (slow ones included).
    pub forwarded: u64,
    pub faults: BTreeMap<String, u64>,
    /// Faulted requests (slow ones included) by HTTP method.
    pub faulted_methods: BTreeMap<String, u64>,
    /// Hung requests whose client closed the connection (gave up waiting).
    pub hangs_abandoned: u64,
    /// Forwarding failures (server unreachable or closed early): the client saw a reset.
    pub upstream_errors: u64,
}

impl Counts {
    pub fn of(&self, fault: Fault) -> u64 {
        self.faults.get(&format!("{fault:?}")).copied().unwrap_or(0)
    }
}

struct State {
    mode: Mode,
    burst_left: u32,
    counts: Counts,
}

struct Shared {
    state: Mutex<State>,
    upstream: String,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn count(&self, f: impl FnOnce(&mut Counts)) {
        f(&mut self.lock().counts);
    }

    fn count_fault(&self, fault: Fault) {
        self.count(|c| *c.faults.entry(format!("{fault:?}")).or_default() += 1);
    }
}

/// What to do with one request.
enum Action {
    Forward { delay: Option<Duration> },
    Fail(Fault),
}

/// A running proxy; stops when dropped.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    runtime: Option<Runtime>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream` (`http://HOST:PORT`).
    pub fn start(upstream: &str) -> Proxy {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fault-proxy")
            .enable_all()
            .build()
            .expect("proxy runtime");
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                mode: Mode::Pass,
                burst_left: 0,
                counts: Counts::default(),
            }),
            upstream,
        });
        runtime.spawn(accept_loop(listener, shared.clone()));
        Proxy {
            addr,
            shared,
            runtime: Some(runtime),
        }
    }

    /// `http://127.0.0.1:PORT`, the endpoint to give the client.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_mode(&self, mode: Mode) {
        let mut st = self.shared.lock();
        st.mode = mode;
        st.burst_left = 0;
    }

    pub fn counts(&self) -> Counts {
        self.shared.lock().counts.clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((conn, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(handle(conn, shared.clone()));
    }
}

async fn handle(mut client: TcpStream, shared: Arc<Shared>) {
    if matches!(shared.lock().mode, Mode::Outage) {
        shared.count_fault(Fault::Refused);
        reset(client);
        return;
    }
    let req = match http1::read_request(&mut client).await {
        Ok(Some(req)) => req,
        Ok(None) | Err(_) => return,
    };
    match decide(&shared, &req) {
        Action::Forward { delay } => {
            if forward(&mut client, &req, &shared.upstream, delay, false)
                .await
                .is_ok()
            {
                shared.count(|c| c.forwarded += 1);
            } else {
                shared.count(|c| c.upstream_errors += 1);
                reset(client);
            }
        }
        Action::Fail(Fault::Error500) => {
            answer(client, "500 Internal Server Error", "InternalError").await
        }
        Action::Fail(Fault::SlowDown503) => {
            answer(client, "503 Service Unavailable", "SlowDown").await
        }
        Action::Fail(Fault::ResetAfter) => {
            // Whether or not the server answered, the client only sees a reset.
            let _ = forward(&mut client, &req, &shared.upstream, None, true).await;
            reset(client);
        }
        Action::Fail(Fault::Hang) => hang(client, &shared).await,
        Action::Fail(Fault::ResetBefore | Fault::Refused | Fault::Slow) => reset(client),
    }
}

/// Decides the fate of one request and counts it.
fn decide(shared: &Shared, req: &Request) -> Action {
    let mut st = shared.lock();
    st.counts.requests += 1;
    let action = match st.mode {
        Mode::Pass => Action::Forward { delay: None },
        Mode::Hang => Action::Fail(Fault::Hang),
        Mode::HangNext { method, count } => {
            if count > 0 && req.line().starts_with(&format!("{method} ")) {
                st.mode = Mode::HangNext {
                    method,
                    count: count - 1,
                };
                Action::Fail(Fault::Hang)
            } else {
                Action::Forward { delay: None }
            }
        }
        Mode::Outage => Action::Fail(Fault::Refused),
        Mode::Faults(plan) => {
            if st.burst_left == 0 && chance(plan.burst_rate) {
                st.burst_left = rand::random_range(1..=plan.burst_max.max(1));
            }
            if st.burst_left > 0 {
                st.burst_left -= 1;
                Action::Fail(pick(&plan.weights))
            } else if chance(plan.slow_rate) {
                let half = plan.slow_delay / 2;
                let delay = half + half.mul_f64(rand::random_range(0.0..1.0));
                Action::Forward { delay: Some(delay) }
            } else {
                Action::Forward { delay: None }
            }
        }
    };
    let kind = match &action {
        Action::Forward { delay: Some(_) } => Some(Fault::Slow),
        Action::Forward { delay: None } => None,
        Action::Fail(f) => Some(*f),
    };
    if let Some(kind) = kind {
        *st.counts.faults.entry(format!("{kind:?}")).or_default() += 1;
        let method = req.line().split(' ').next().unwrap_or_default().to_string();
        *st.counts.faulted_methods.entry(method).or_default() += 1;
    }
    action
}

fn chance(p: f64) -> bool {
    p > 0.0 && rand::random_range(0.0..1.0) < p
}

fn pick(w: &Weights) -> Fault {
    let table = [
        (Fault::Error500, w.error_500),
        (Fault::SlowDown503, w.slow_down_503),
        (Fault::ResetBefore, w.reset_before),
        (Fault::ResetAfter, w.reset_after),
    ];
    let total: u32 = table.iter().map(|(_, n)| n).sum();
    let mut roll = rand::random_range(0..total.max(1));
    for (fault, n) in table {
        if roll < n {
            return fault;
        }
        roll -= n;
    }
    Fault::Error500
}

/// Sends `req` to the server on a fresh connection and relays the answer (after `delay`). With
/// `swallow`, stops once the server's answer head arrived (the request took effect) and relays
/// nothing.
async fn forward(
    client: &mut TcpStream,
    req: &Request,
    upstream: &str,
    delay: Option<Duration>,
    swallow: bool,
) -> std::io::Result<()> {
    let mut up = TcpStream::connect(upstream).await?;
    up.write_all(&http1::close_head(&req.head)).await?;
    up.write_all(&req.body).await?;
    let mut buf = Vec::new();
    let Some(head_len) = http1::read_head(&mut up, &mut buf).await? else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("server closed before answering {}", req.line()),
        ));
    };
    if swallow {
        return Ok(());
    }
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    client
        .write_all(&http1::close_head(&buf[..head_len]))
        .await?;
    client.write_all(&buf[head_len..]).await?;
    tokio::io::copy(&mut up, client).await?;
    client.shutdown().await
}

/// A canned S3 error answer, then close.
async fn answer(mut client: TcpStream, status: &str, code: &str) {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
         <Message>injected by the fault proxy</Message><RequestId>fault-proxy</RequestId></Error>"
    );
    let text = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = client.write_all(text.as_bytes()).await;
    let _ = client.shutdown().await;
}

/// Holds the connection without answering until the client closes it (or [`HANG_CAP`]).
async fn hang(mut client: TcpStream, shared: &Shared) {
    let mut sink = [0u8; 4096];
    let gave_up = tokio::time::timeout(HANG_CAP, async {
        loop {
            match client.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok();
    if gave_up {
        shared.count(|c| c.hangs_abandoned += 1);
    }
}

/// Closes with a TCP reset (RST) instead of an orderly shutdown.
fn reset(client: TcpStream) {
    let _ = client.set_zero_linger();
    drop(client);
}
