//! Name resolution off the engine thread.
//!
//! `getaddrinfo` blocks and cannot be cancelled, so it runs on a short-lived helper thread. The
//! engine polls the result channel when woken; if the attempt is abandoned (disconnect, timeout),
//! the receiver is dropped and the helper's late answer goes nowhere.

use crossbeam_channel::Receiver;
use std::net::{SocketAddr, ToSocketAddrs};

pub(crate) type Resolved = Result<Vec<SocketAddr>, String>;

/// Start resolving `host:port`; `wake` is called once the answer is in the channel.
pub(crate) fn resolve(
    host: &str,
    port: u16,
    wake: impl FnOnce() + Send + 'static,
) -> Receiver<Resolved> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    // Literal addresses need no thread.
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        let _ = tx.send(Ok(vec![SocketAddr::new(ip, port)]));
        return rx;
    }
    let host = host.to_string();
    let spawned = std::thread::Builder::new()
        .name("cobra-dns".into())
        .spawn(move || {
            let result = match (host.as_str(), port).to_socket_addrs() {
                Ok(addrs) => {
                    let addrs: Vec<_> = addrs.collect();
                    if addrs.is_empty() {
                        Err(format!("{host}: no address"))
                    } else {
                        Ok(addrs)
                    }
                }
                Err(e) => Err(format!("{host}: {e}")),
            };
            if tx.send(result).is_ok() {
                wake();
            }
        });
    if let Err(e) = spawned {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let _ = tx.send(Err(format!("spawning the resolver thread: {e}")));
        return rx;
    }
    rx
}
