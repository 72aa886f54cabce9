//! An in-process TCP proxy for fault injection: 127.0.0.1:<random port> → 127.0.0.1:target.
//!
//! It runs on its own thread with its own tokio runtime (tests are sync). The mode applies
//! to existing and new connections at once:
//! - [`FaultMode::Pass`]: forward bytes both ways (half-closes are forwarded too).
//! - [`FaultMode::Delay`]: forward, but hold every chunk for the given time first.
//! - [`FaultMode::Blackhole`]: stop forwarding both ways, keeping every socket open (like a
//!   dead network path: nothing arrives, nothing fails). New connections are still
//!   accepted. Bytes already sent wait in the kernel and flow again after `Pass`.
//! - [`FaultMode::Reset`]: reset (RST) every current connection and refuse new ones (the
//!   listening socket is closed) until the mode changes again.
//!
//! [`FaultProxy::set_mode`] returns once the mode is in effect: the listener is closed or
//! open again, and every connection has been reset or has stopped forwarding.
//!
//! Dropping the proxy stops it and closes every socket.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultMode {
    Pass,
    Delay(Duration),
    Blackhole,
    Reset,
}

/// The mode and its generation (bumped by every `set_mode`).
type ModeRx = watch::Receiver<(FaultMode, u64)>;

/// State shared between the test thread and the proxy's tasks.
#[derive(Default)]
struct Shared {
    /// Accepted client connections so far.
    connections: AtomicUsize,
    /// Generation each live task (the accept loop is id 0) has applied.
    acks: Mutex<HashMap<u64, u64>>,
    next_id: AtomicU64,
}

impl Shared {
    fn ack(&self, id: u64, generation: u64) {
        self.acks.lock().unwrap().insert(id, generation);
    }
}

/// Unregisters a connection task when it ends (or is dropped with the runtime).
struct AckGuard {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for AckGuard {
    fn drop(&mut self) {
        self.shared.acks.lock().unwrap().remove(&self.id);
    }
}

pub struct FaultProxy {
    port: u16,
    mode: watch::Sender<(FaultMode, u64)>,
    generation: AtomicU64,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// Start a proxy to 127.0.0.1:`target_port`, in [`FaultMode::Pass`].
    pub fn new(target_port: u16) -> FaultProxy {
        let (mode_tx, mode_rx) = watch::channel((FaultMode::Pass, 0));
        let shared = Arc::new(Shared::default());
        shared.next_id.store(1, Ordering::SeqCst);
        shared.ack(0, 0);
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let (port_tx, port_rx) = mpsc::channel();
        let sh = shared.clone();
        let thread = thread::Builder::new()
            .name("fault-proxy".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("fault proxy runtime");
                rt.block_on(async move {
                    let listener = bind(0).expect("fault proxy: bind 127.0.0.1:0");
                    let port = listener.local_addr().unwrap().port();
                    port_tx.send(port).unwrap();
                    tokio::select! {
                        _ = accept_loop(listener, port, target_port, sh, mode_rx) => {}
                        _ = shutdown_rx => {}
                    }
                });
                // Dropping the runtime cancels every connection task, closing its sockets.
                rt.shutdown_timeout(Duration::from_secs(1));
            })
            .expect("spawn fault proxy thread");
        let port = port_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("fault proxy did not start");
        FaultProxy {
            port,
            mode: mode_tx,
            generation: AtomicU64::new(0),
            shared,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        }
    }

    /// The port clients should connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Switch mode; returns once the listener and every live connection have applied it
    /// (panics if that takes over 10 s).
    pub fn set_mode(&self, mode: FaultMode) {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        self.mode.send_replace((mode, generation));
        let applied = super::wait_until(Duration::from_secs(10), || {
            self.shared
                .acks
                .lock()
                .unwrap()
                .values()
                .all(|&g| g >= generation)
        });
        assert!(applied, "fault proxy did not apply {mode:?} within 10 s");
    }

    pub fn mode(&self) -> FaultMode {
        self.mode.borrow().0
    }

    /// Client connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A listener on 127.0.0.1:`port` with SO_REUSEADDR, so the same port can be listened on
/// again after [`FaultMode::Reset`] closed it.
fn bind(port: u16) -> std::io::Result<TcpListener> {
    let sock = TcpSocket::new_v4()?;
    sock.set_reuseaddr(true)?;
    sock.bind(([127, 0, 0, 1], port).into())?;
    sock.listen(1024)
}

async fn accept_loop(
    first: TcpListener,
    port: u16,
    target: u16,
    shared: Arc<Shared>,
    mut mode: ModeRx,
) {
    let mut listener = Some(first);
    loop {
        let (current, generation) = *mode.borrow_and_update();
        if current == FaultMode::Reset {
            // Refuse: no listening socket at all until the mode changes.
            listener = None;
            shared.ack(0, generation);
            if mode.changed().await.is_err() {
                return;
            }
            continue;
        }
        let l = match &listener {
            Some(l) => l,
            None => match bind(port) {
                Ok(l) => listener.insert(l),
                Err(e) => {
                    eprintln!("fault proxy: rebinding port {port} failed: {e}; retrying");
                    // A pause between rebind attempts (the old socket may linger briefly).
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        shared.ack(0, generation);
        tokio::select! {
            r = l.accept() => {
                if let Ok((client, _)) = r {
                    shared.connections.fetch_add(1, Ordering::SeqCst);
                    let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
                    shared.ack(id, generation);
                    let guard = AckGuard { shared: shared.clone(), id };
                    tokio::spawn(handle(client, target, mode.clone(), guard));
                }
            }
            r = mode.changed() => {
                if r.is_err() {
                    return;
                }
            }
        }
    }
}

/// Close with RST rather than FIN.
fn reset(s: &TcpStream) {
    let _ = s.set_zero_linger();
}

async fn handle(mut client: TcpStream, target: u16, mut mode: ModeRx, guard: AckGuard) {
    let mut server = match TcpStream::connect(("127.0.0.1", target)).await {
        Ok(s) => s,
        Err(_) => {
            reset(&client);
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let mut cbuf = vec![0u8; 32 * 1024];
    let mut sbuf = vec![0u8; 32 * 1024];
    let (mut client_eof, mut server_eof) = (false, false);
    while !(client_eof && server_eof) {
        let (current, generation) = *mode.borrow_and_update();
        if current == FaultMode::Reset {
            reset(&client);
            reset(&server);
            drop((client, server));
            // Dropping the guard acknowledges.
            return;
        }
        guard.shared.ack(guard.id, generation);
        let delay = match current {
            FaultMode::Reset => unreachable!(),
            FaultMode::Blackhole => {
                if mode.changed().await.is_err() {
                    return;
                }
                continue;
            }
            FaultMode::Pass => None,
            FaultMode::Delay(d) => Some(d),
        };
        // One chunk at a time; a mode change interrupts the wait for the next chunk.
        let (data, to_server) = tokio::select! {
            r = client.read(&mut cbuf), if !client_eof => match r {
                Ok(n) if n > 0 => (&cbuf[..n], true),
                _ => {
                    client_eof = true;
                    let _ = server.shutdown().await;
                    continue;
                }
            },
            r = server.read(&mut sbuf), if !server_eof => match r {
                Ok(n) if n > 0 => (&sbuf[..n], false),
                _ => {
                    server_eof = true;
                    let _ = client.shutdown().await;
                    continue;
                }
            },
            r = mode.changed() => {
                if r.is_err() {
                    return;
                }
                continue;
            }
        };
        if let Some(d) = delay {
            // FaultMode::Delay: the added latency is the fault under test.
            tokio::time::sleep(d).await;
        }
        let dst = if to_server { &mut server } else { &mut client };
        if dst.write_all(data).await.is_err() {
            reset(&client);
            reset(&server);
            return;
        }
    }
}
