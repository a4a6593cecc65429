//! Memory per idle authenticated connection of a running server (issue 7's measure).
//!
//! ```text
//! cobra run --port 8765 --max-connections 200000 &      # with an apps config holding
//! cargo run --release -p cobra-server --example idle -- 127.0.0.1:8765 $! 10000 APPKEY ROLE SECRET
//! ```
//! Opens N WebSocket connections, authenticates each, and reports the server's RSS growth
//! divided by N (read from `/proc/PID/statm`).

use std::net::SocketAddr;

use cobra_test_support::client::Client;

fn rss(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/statm")).expect("server pid");
    s.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 4096
}

/// One authenticated connection, through the tests' blocking client (a dev-dependency).
fn connect(addr: SocketAddr, appkey: &str, role: &str, secret: &str) -> Client {
    let mut client = Client::connect(addr, appkey);
    if let Err(e) = client.auth(role, secret) {
        panic!("not authenticated: {e}");
    }
    client
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let addr: SocketAddr = a[1].parse().unwrap();
    let pid: u32 = a[2].parse().unwrap();
    let n: usize = a[3].parse().unwrap();
    let (appkey, role, secret) = (&a[4], &a[5], &a[6]);
    // Warm up the server's allocator and runtime with a few connections first.
    let warm: Vec<Client> = (0..100)
        .map(|_| connect(addr, appkey, role, secret))
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let before = rss(pid);
    let conns: Vec<Client> = (0..n)
        .map(|_| connect(addr, appkey, role, secret))
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let after = rss(pid);
    println!(
        "{n} idle authenticated connections: server RSS {:.1} MB -> {:.1} MB, {:.0} bytes per connection",
        before as f64 / 1e6,
        after as f64 / 1e6,
        (after.saturating_sub(before)) as f64 / n as f64
    );
    drop(conns);
    drop(warm);
}
