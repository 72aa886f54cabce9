//! A port that starts accepting connections only after a delay, then forwards them to a
//! target: for testing `--retry` against a server that comes up late.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};

/// Reserve a free port on 127.0.0.1 and return it at once; after `delay`, start listening
/// on it and forward every connection to 127.0.0.1:`target_port`.
///
/// Until then the port is bound but not listening, so connections are refused and no
/// other process can take it. The forwarder runs on a detached thread (with its own tokio
/// runtime) until the test process exits.
pub fn forward_after(delay: Duration, target_port: u16) -> u16 {
    let (port_tx, port_rx) = mpsc::channel();
    thread::Builder::new()
        .name("late-listener".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("late listener runtime");
            rt.block_on(async move {
                let sock = TcpSocket::new_v4().expect("socket");
                sock.set_reuseaddr(true).expect("SO_REUSEADDR");
                sock.bind(([127, 0, 0, 1], 0).into())
                    .expect("bind 127.0.0.1:0");
                port_tx.send(sock.local_addr().unwrap().port()).unwrap();
                // The one sanctioned sleep in the harness: a server that opens late IS the
                // behaviour under test.
                tokio::time::sleep(delay).await;
                let listener = sock.listen(1024).expect("listen");
                loop {
                    let Ok((mut client, _)) = listener.accept().await else {
                        continue;
                    };
                    tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(("127.0.0.1", target_port)).await
                        {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                }
            });
        })
        .expect("spawn late listener thread");
    port_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("late listener did not reserve a port")
}
