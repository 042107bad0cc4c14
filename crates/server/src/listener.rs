//! The two listening sockets and the loop that accepts on each.
//!
//! axum's own accept loop answers any accept error but a reset by logging it and pausing for a whole second. The
//! error a busy node meets is running out of open files: in a storm of logins every device holds its WebSocket
//! and, for a moment, the two HTTP connections it syncs its lists over, and a node at its limit fails `accept`
//! with `EMFILE` until some of them close. Paused for a second each time, both listeners stood idle while their
//! queues overflowed and the clients' handshakes were dropped and retried. [`Acceptor`] tries again after
//! [`RETRY`] instead, so that a file freed by a closing connection serves the next one at once (BENCHMARKS.md,
//! "The fourth machine, a third session").

use crate::admission::{Admitted, Gate};
use std::{
    collections::VecDeque,
    io,
    net::SocketAddr,
    time::{Duration, Instant},
};
use tokio::net::{TcpListener, TcpStream};

/// How long an accept that failed for want of a resource (open files, socket buffers) waits before trying again.
/// Short beside a login's round trips; long enough that a node at its limit spends nothing to speak of retrying.
pub(crate) const RETRY: Duration = Duration::from_millis(10);

/// Binds `addr`; with `reuse_port`, other processes may bind it too and the kernel spreads connections over
/// them (Linux `SO_REUSEPORT`).
///
/// The accept queue is as long as the kernel allows (`net.core.somaxconn`, 4096 by default since Linux 5.4; Go's
/// servers, OpenIM's among them, ask for the same). A storm of reconnecting devices arrives faster than the accept
/// loop takes connections for a moment; when the queue is full the kernel drops handshakes, each one retried by
/// its client a second later, and that retry work is what tips a busy node over (with 1024, a login storm just past
/// a core's capacity collapsed to about half of it: BENCHMARKS.md, "A seventh machine").
pub(crate) fn bind(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    #[cfg(unix)]
    if reuse_port {
        socket.set_reuseport(true)?;
    }
    #[cfg(not(unix))]
    if reuse_port {
        return Err(io::Error::other("reuse_port needs SO_REUSEPORT (Linux, BSD)"));
    }
    socket.bind(addr)?;
    // Larger than any `somaxconn`: the kernel caps it there.
    socket.listen(i32::MAX as u32)
}

/// A listener as the server takes its connections: they have `TCP_NODELAY` set, they are handed on only while its
/// [`Gate`] has room, and a shortage of files is waited out [`RETRY`] at a time, the log saying so once when it begins
/// and once when it ends rather than on every try.
pub(crate) struct Acceptor {
    incoming: Incoming,
    gate: Gate,
    /// Connections taken from the kernel's queue while the gate was shut, oldest first, up to [`MAX_PARKED`]. The
    /// kernel's queue holds 4,096 at most (`somaxconn`), ~0.6 s of a storm's connections, and past it drops
    /// handshakes, each retried by its client a second later; a parked connection costs a file and nothing else
    /// until the gate lets it in (nothing reads it: its request waits in its socket, acknowledged by the kernel).
    parked: VecDeque<(TcpStream, SocketAddr)>,
    /// Since when all [`MAX_PARKED`] places have been taken, until the parked connections are all handed on: the
    /// node is behind its storm, and the log says so once at each end.
    full_since: Option<Instant>,
}

/// Most connections an [`Acceptor`] parks: past that, they wait in the kernel's queue. As long as that queue, so
/// that the two listeners' parked connections stay well under a process's open files.
const MAX_PARKED: usize = 4096;

/// The listening socket, as the gate's other side: connections in the order they came.
struct Incoming {
    listener: TcpListener,
    /// What the log calls this listener: "gateway" or "API".
    name: &'static str,
    /// Whether each accepted connection needs `TCP_NODELAY` set on it: not where it inherits the listener's.
    set_nodelay: bool,
    /// Since when accepting has failed, while it does.
    failing_since: Option<Instant>,
}

impl Acceptor {
    /// Accepts on `listener` with at most `max_opening` connections opening at once (0: any number).
    pub(crate) fn new(listener: TcpListener, name: &'static str, max_opening: usize) -> Self {
        let set_nodelay = !give_listener_nodelay(&listener);
        Self {
            incoming: Incoming { listener, name, set_nodelay, failing_since: None },
            gate: Gate::new(max_opening),
            parked: VecDeque::new(),
            full_since: None,
        }
    }
}

/// Sets `TCP_NODELAY` on the listening socket itself where the connections accepted there inherit it (Linux), and
/// says whether it did. Replies and pushes are small frames written at once; with Nagle's algorithm each one waits
/// for the peer's delayed ACK (~40 ms per request/response round trip on Linux), so every connection has
/// `TCP_NODELAY`: inherited, it costs no `setsockopt` per connection (three per login); elsewhere it is set on each
/// connection as it is accepted.
fn give_listener_nodelay(listener: &TcpListener) -> bool {
    cfg!(target_os = "linux") && socket2::SockRef::from(listener).set_tcp_nodelay(true).is_ok()
}

impl Acceptor {
    /// The next connection to serve, with its peer's address.
    pub(crate) async fn accept(&mut self) -> (Admitted, SocketAddr) {
        loop {
            if self.gate.is_open() {
                let (tcp, peer) = match self.parked.pop_front() {
                    Some(parked) => parked,
                    None => {
                        if let Some(since) = self.full_since.take() {
                            tracing::info!(listener = self.incoming.name, after = ?since.elapsed(), "caught up");
                        }
                        self.incoming.next().await
                    }
                };
                return (Admitted::new(tcp, self.gate.ticket()), peer);
            }
            if self.parked.len() >= MAX_PARKED {
                if self.full_since.is_none() {
                    self.full_since = Some(Instant::now());
                    tracing::warn!(
                        listener = self.incoming.name,
                        waiting = MAX_PARKED,
                        "more connections than this node answers: the rest wait in the kernel's queue, whose \
                         overflow drops handshakes (each retried by its client a second later)"
                    );
                }
                self.gate.room().await;
                continue;
            }
            tokio::select! {
                () = self.gate.room() => {}
                taken = self.incoming.next() => self.parked.push_back(taken),
            }
        }
    }
}

impl Incoming {
    /// The next connection in the kernel's queue, waiting for one.
    async fn next(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            // Outside tokio's cooperative budget: budgeted, the accept loop took at most 128 connections per turn
            // of the runtime and then waited behind every other ready task, so when a storm's backlog made the
            // turns long, the kernel's accept queue filled between them and its overflow dropped handshakes, each
            // retried a second later, which grew the backlog further. Unbudgeted, each turn takes every connection
            // waiting; the tasks that serve them share the runtime as before.
            match tokio::task::unconstrained(self.listener.accept()).await {
                Ok((tcp, peer)) => {
                    if let Some(since) = self.failing_since.take() {
                        tracing::warn!(listener = self.name, after = ?since.elapsed(), "accepting connections again");
                    }
                    if self.set_nodelay {
                        let _ = tcp.set_nodelay(true);
                    }
                    return (tcp, peer);
                }
                // The peer gave up while its connection waited in the queue: nothing to wait for.
                Err(e) if is_peer_error(&e) => {}
                Err(e) => {
                    if self.failing_since.is_none() {
                        self.failing_since = Some(Instant::now());
                        tracing::error!(
                            listener = self.name,
                            error = %e,
                            "cannot accept connections; trying again as connections close (out of open files? the \
                             limit is `ulimit -n`, or LimitNOFILE under systemd)"
                        );
                    }
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    }
}

/// The address a request came from, in its extensions: the login throttle counts failures per source address.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PeerAddr(pub SocketAddr);

fn is_peer_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel's cap on a listener's accept queue (`net.core.somaxconn`; 0 if unreadable).
    fn somaxconn() -> usize {
        std::fs::read_to_string("/proc/sys/net/core/somaxconn").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
    }

    /// The connections waiting in the kernel's queue are taken in one turn of the runtime, not 128 (tokio's
    /// budget) at a time with every other ready task run in between.
    #[tokio::test(flavor = "current_thread")]
    async fn one_turn_takes_every_waiting_connection() {
        use std::sync::{
            Arc,
            atomic::{AtomicUsize, Ordering::Relaxed},
        };
        const WAITING: usize = 300;
        if somaxconn() <= WAITING {
            eprintln!("net.core.somaxconn is {}: the kernel would not queue {WAITING} connections", somaxconn());
            return;
        }
        let listener = bind("127.0.0.1:0".parse().unwrap(), false).unwrap();
        let addr = listener.local_addr().unwrap();
        // Completed by the kernel, queued until accepted.
        let clients: Vec<_> = (0..WAITING).map(|_| std::net::TcpStream::connect(addr).unwrap()).collect();
        // Runs whenever this test's task lets the runtime have a turn.
        let turns = Arc::new(AtomicUsize::new(0));
        let other = tokio::spawn({
            let turns = turns.clone();
            async move {
                loop {
                    turns.fetch_add(1, Relaxed);
                    tokio::task::yield_now().await;
                }
            }
        });
        tokio::task::yield_now().await;
        let before = turns.load(Relaxed);
        assert!(before > 0, "the other task runs");
        let mut acceptor = Acceptor::new(listener, "test", 0);
        for _ in 0..WAITING {
            acceptor.accept().await;
        }
        assert_eq!(turns.load(Relaxed), before, "the accept loop gave up its turn before the queue was empty");
        other.abort();
        drop(clients);
    }

    /// Every accepted connection has `TCP_NODELAY`, whether it was set on it or inherited from the listener, on a
    /// listener bound here and on one bound by a caller (as the tests' servers are).
    #[tokio::test]
    async fn accepted_connections_do_not_wait_for_delayed_acks() {
        let ours = bind("127.0.0.1:0".parse().unwrap(), false).unwrap();
        let theirs = TcpListener::bind("127.0.0.1:0").await.unwrap();
        for listener in [ours, theirs] {
            let addr = listener.local_addr().unwrap();
            let mut acceptor = Acceptor::new(listener, "test", 0);
            // On Linux nothing is set per connection: what the connection has, it has from the listener.
            assert_eq!(acceptor.incoming.set_nodelay, !cfg!(target_os = "linux"));
            let _client = TcpStream::connect(addr).await.unwrap();
            let (accepted, _) = acceptor.accept().await;
            assert!(accepted.tcp().nodelay().unwrap());
        }
    }

    /// While the gate is shut, connections are taken from the kernel's queue and parked rather than left there to
    /// overflow it: with a queue of one, each of many connections completes its handshake at once.
    #[tokio::test]
    async fn a_shut_gate_parks_connections_rather_than_drop_them() {
        const BURST: usize = 20;
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(1).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut acceptor = Acceptor::new(listener, "test", 1);
        // One connection opening, never answered: the gate is shut for it (until it is overdue).
        let _first = TcpStream::connect(addr).await.unwrap();
        let (opening, _) = acceptor.accept().await;
        let server = tokio::spawn(async move {
            let mut admitted = vec![opening];
            loop {
                admitted.push(acceptor.accept().await.0);
            }
        });
        // One after another, each within half a second: a handshake the kernel dropped would be sent again only
        // after a second.
        let mut clients = Vec::new();
        for n in 0..BURST {
            let connect = tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(addr)).await;
            clients.push(connect.unwrap_or_else(|_| panic!("connection {n} waited for a handshake")).unwrap());
        }
        server.abort();
    }

    /// Connections the kernel completes before the server accepts any: more than a fixed backlog of 1024 would hold.
    #[tokio::test]
    async fn the_accept_queue_holds_a_burst_of_connections() {
        let somaxconn = somaxconn();
        let burst = somaxconn.min(2000);
        if burst <= 1100 {
            eprintln!("net.core.somaxconn is {somaxconn}: the kernel caps the queue below what this test checks");
            return;
        }
        let listener = bind("127.0.0.1:0".parse().unwrap(), false).unwrap();
        let addr = listener.local_addr().unwrap();
        // Nobody accepts: every handshake waits in the queue. One the kernel dropped would be retried only after a
        // second, so each connect gets half of one.
        let connects =
            (0..burst).map(|_| tokio::time::timeout(Duration::from_millis(500), tokio::net::TcpStream::connect(addr)));
        let results = futures_util::future::join_all(connects).await;
        let queued = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
        assert_eq!(queued, burst, "handshakes completed without an accept");
    }
}
