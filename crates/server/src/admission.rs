//! Admission control: how many new connections a listener works on at once.
//!
//! In a storm of logins, every connection the server has accepted and not yet answered competes for the same core,
//! and the more there are, the dearer each one gets: each waits longer for its turn, the clients' delayed
//! acknowledgements and tail-loss probes fire meanwhile, the open files and the sockets' buffers grow, and so a
//! backlog feeds itself (BENCHMARKS.md, "The fifth machine, a third session": a storm bounded to 100 logins under way
//! cost both sides a tenth less per login). A [`Gate`] lets a listener hand a new connection on only while fewer
//! than its limit are *opening* (handed on, not yet answered); the rest wait unread (the listener parks them, then
//! the kernel's accept queue holds them), where a connection whose request has arrived costs nothing but its
//! buffers, and they are taken in the order they came.
//!
//! A connection stops counting as opening
//! - when it writes anything (its first answer: an HTTP response, a WebSocket's `101 Switching Protocols`);
//! - when its first read finds nothing to read: a client that connects and says nothing is waiting on itself, not
//!   on the server, so it cannot hold the gate shut (hyper closes it when its request's head is overdue:
//!   `crate::serve`);
//! - when it closes;
//! - [`OVERDUE`] after it was accepted, whatever it is doing: a client that sends half a request and stalls, or a
//!   request the server takes long over, lets the next connection in.
//!
//! Connections that have been answered (long-lived WebSockets, idle keep-alive HTTP connections) never count: the
//! gate bounds the work under way, not the connections held. What it did to login storms, at rates below and past
//! what one core carries: BENCHMARKS.md, "The fifth machine, a fourth session".

use std::{
    collections::VecDeque,
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    sync::Notify,
};

/// How long an accepted connection counts as opening at most. Far beyond a request's handling (a login's requests
/// take a fraction of a millisecond of CPU each), short enough that stalled clients hold the gate for little:
/// to keep a gate of `limit` shut, a client must open `limit / OVERDUE` such connections every second.
pub(crate) const OVERDUE: Duration = Duration::from_millis(250);

/// One listener's bound on its opening connections. Owned by the listener's accept loop; the connections it
/// admits hold [`Ticket`]s that give their place back.
pub(crate) struct Gate {
    /// Most connections opening at once; 0: no bound.
    limit: usize,
    shared: Arc<Shared>,
    /// The tickets handed out, oldest first, with when; a ticket leaves once it has settled and reached the front,
    /// or on turning [`OVERDUE`].
    issued: VecDeque<(Instant, Arc<Ticket>)>,
}

/// What the gate and its connections share.
#[derive(Default)]
struct Shared {
    /// Connections opening now.
    opening: AtomicUsize,
    /// Woken when one settles.
    settled: Notify,
}

/// One admitted connection's place at the gate.
pub(crate) struct Ticket {
    settled: AtomicBool,
    shared: Arc<Shared>,
}

impl Ticket {
    /// Gives the place back, once (the connection's answer, its silence, its close and the gate's deadline may
    /// each try).
    fn settle(&self) {
        if !self.settled.swap(true, Ordering::AcqRel) {
            self.shared.opening.fetch_sub(1, Ordering::AcqRel);
            self.shared.settled.notify_one();
        }
    }

    fn is_settled(&self) -> bool {
        self.settled.load(Ordering::Acquire)
    }
}

impl Gate {
    /// A gate letting `limit` connections open at once (0: any number).
    pub(crate) fn new(limit: usize) -> Self {
        Self { limit, shared: Arc::default(), issued: VecDeque::new() }
    }

    /// Whether a connection may be admitted now.
    pub(crate) fn is_open(&mut self) -> bool {
        if self.limit == 0 {
            return true;
        }
        let now = Instant::now();
        while let Some((at, ticket)) = self.issued.front() {
            if now.duration_since(*at) >= OVERDUE {
                ticket.settle();
            } else if !ticket.is_settled() {
                break;
            }
            self.issued.pop_front();
        }
        self.shared.opening.load(Ordering::Acquire) < self.limit
    }

    /// Waits until a connection may be admitted.
    pub(crate) async fn room(&mut self) {
        let shared = self.shared.clone();
        loop {
            // Registered before the count is read, so that a ticket settling in between still wakes this wait.
            let settled = shared.settled.notified();
            if self.is_open() {
                return;
            }
            let oldest = self.issued.front().map_or_else(Instant::now, |(at, _)| *at);
            tokio::select! {
                () = settled => {}
                () = tokio::time::sleep_until((oldest + OVERDUE).into()) => {}
            }
        }
    }

    /// A place for a connection handed on now, counted as opening until it settles (none without a limit).
    pub(crate) fn ticket(&mut self) -> Option<Arc<Ticket>> {
        if self.limit == 0 {
            return None;
        }
        self.shared.opening.fetch_add(1, Ordering::AcqRel);
        let ticket = Arc::new(Ticket { settled: AtomicBool::new(false), shared: self.shared.clone() });
        self.issued.push_back((Instant::now(), ticket.clone()));
        Some(ticket)
    }

    /// Connections opening now.
    #[cfg(test)]
    pub(crate) fn opening(&self) -> usize {
        self.shared.opening.load(Ordering::Acquire)
    }
}

/// An accepted connection, counted at its listener's gate until it settles.
pub(crate) struct Admitted {
    tcp: TcpStream,
    /// Until the connection settles.
    ticket: Option<Arc<Ticket>>,
    /// Whether a read has found anything. Until then, a read that finds nothing means the client is silent; after,
    /// it does not mean the request is done (hyper reads on while it handles one, to notice a client that leaves).
    heard: bool,
}

impl Admitted {
    /// `tcp`, holding `ticket` until it settles.
    pub(crate) fn new(tcp: TcpStream, ticket: Option<Arc<Ticket>>) -> Self {
        Self { tcp, ticket, heard: false }
    }

    /// The connection itself.
    #[cfg(test)]
    pub(crate) fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    fn settle(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            ticket.settle();
        }
    }

    /// Settles once anything has been written: the connection's first answer.
    fn wrote(&mut self, polled: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.settle();
        }
        polled
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.settle();
    }
}

impl AsyncRead for Admitted {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.tcp).poll_read(cx, buf);
        if !self.heard {
            match polled {
                Poll::Ready(Ok(())) if buf.filled().len() > before => self.heard = true,
                Poll::Pending => self.settle(),
                _ => {}
            }
        }
        polled
    }
}

impl AsyncWrite for Admitted {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.tcp).poll_write(cx, buf);
        self.wrote(polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs);
        self.wrote(polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt as _;
    use tokio::{
        io::{AsyncReadExt as _, AsyncWriteExt as _},
        net::TcpListener,
    };

    /// `n` connections to a fresh listener, as (client, admitted server side), the clients having sent `request`.
    async fn admitted(gate: &mut Gate, n: usize, request: &[u8]) -> Vec<(TcpStream, Admitted)> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut pairs = Vec::new();
        for _ in 0..n {
            let mut client = TcpStream::connect(addr).await.unwrap();
            client.write_all(request).await.unwrap();
            let (tcp, _) = listener.accept().await.unwrap();
            pairs.push((client, Admitted::new(tcp, gate.ticket())));
        }
        pairs
    }

    fn has_room(gate: &mut Gate) -> bool {
        gate.room().now_or_never().is_some()
    }

    /// Connections whose requests have been read count until they are answered; then the next one may come in.
    #[tokio::test]
    async fn the_gate_opens_as_connections_are_answered() {
        let mut gate = Gate::new(2);
        let mut pairs = admitted(&mut gate, 2, b"GET / HTTP/1.1\r\n\r\n").await;
        let mut buf = [0; 64];
        for (_, server) in &mut pairs {
            assert!(server.read(&mut buf).await.unwrap() > 0);
        }
        assert_eq!(gate.opening(), 2);
        assert!(!has_room(&mut gate), "two opening connections fill a gate of two");
        pairs[0].1.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await.unwrap();
        assert_eq!(gate.opening(), 1);
        assert!(has_room(&mut gate), "an answered connection gives its place back");
        // A connection closed before its answer gives its place back too.
        drop(pairs.pop());
        assert_eq!(gate.opening(), 0);
    }

    /// A client that connects and says nothing does not hold a place: the server waits on it, not it on the server.
    #[tokio::test]
    async fn silent_connections_do_not_count() {
        let mut gate = Gate::new(1);
        let mut pairs = admitted(&mut gate, 1, b"").await;
        assert!(!has_room(&mut gate));
        let mut buf = [0; 64];
        assert!(pairs[0].1.read(&mut buf).now_or_never().is_none(), "nothing to read");
        assert_eq!(gate.opening(), 0);
        assert!(has_room(&mut gate));
    }

    /// A client that sends half a request and stalls holds its place only until it is overdue.
    #[tokio::test]
    async fn a_stalled_connection_is_let_go_when_overdue() {
        let mut gate = Gate::new(1);
        let started = Instant::now();
        let mut pairs = admitted(&mut gate, 1, b"GET / HTTP/1.1\r\nHost: ").await;
        let mut buf = [0; 64];
        assert!(pairs[0].1.read(&mut buf).await.unwrap() > 0);
        assert!(pairs[0].1.read(&mut buf).now_or_never().is_none(), "the rest of the request never comes");
        assert_eq!(gate.opening(), 1, "a half-read request still counts");
        tokio::time::timeout(OVERDUE * 20, gate.room()).await.expect("the gate opens once the connection is overdue");
        assert!(started.elapsed() >= OVERDUE);
        assert_eq!(gate.opening(), 0);
    }

    /// Without a limit nothing is counted and there is always room.
    #[tokio::test]
    async fn no_limit_no_gate() {
        let mut gate = Gate::new(0);
        let _pairs = admitted(&mut gate, 3, b"GET / HTTP/1.1\r\n\r\n").await;
        assert_eq!(gate.opening(), 0);
        assert!(has_room(&mut gate));
    }
}
