//! W6 (UDP batching): the data plane reads client datagrams in batches (`recvmmsg`) and sends
//! each flow's part of a batch together (GSO for same-size runs, `sendmmsg` otherwise); replies
//! come back the same way. Through the real binaries: bursts of datagrams from many client
//! sockets at once, interleaved across clients (batches mixing flows) and client by client
//! (same-size runs), with sizes from 0 bytes to 30,000; every datagram must reach the echo
//! backend and come back whole, once, to the socket that sent it, from the entrypoint address.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use weir_e2e::Weir;

/// Socket buffers asked for the test's sockets (the kernel caps them at `rmem_max`): a burst
/// must wait in a buffer rather than be dropped by the kernel.
const BUFFER: usize = 4 << 20;

/// A UDP backend that sends every datagram back, unchanged, to whoever sent it.
struct Echo {
    addr: SocketAddr,
    seen: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Echo {
    fn start() -> Echo {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind echo backend");
        rustix::net::sockopt::set_socket_recv_buffer_size(&socket, BUFFER).expect("echo receive buffer");
        socket.set_read_timeout(Some(Duration::from_millis(50))).expect("timeout");
        let addr = socket.local_addr().expect("addr");
        let (seen, stop) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
        let (count, flag) = (Arc::clone(&seen), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_536];
            while !flag.load(Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else { continue };
                count.fetch_add(1, Ordering::Relaxed);
                let _ = socket.send_to(&buf[..n], from);
            }
        });
        Echo { addr, seen, stop, thread: Some(thread) }
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).expect("ephemeral UDP port").port()
}

fn manifests(echo: SocketAddr) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: echo, namespace: default}}\nspec:\n  \
         ports: [{{name: echo, port: 9, protocol: UDP}}]\n\
         ---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: echo-0\n  \
         namespace: default\n  labels: {{kubernetes.io/service-name: echo}}\naddressType: IPv4\n\
         ports: [{{name: echo, port: {}, protocol: UDP}}]\nendpoints: [{{addresses: ['{}']}}]\n\
         ---\napiVersion: traefik.io/v1alpha1\nkind: IngressRouteUDP\nmetadata: {{name: echo, namespace: default}}\n\
         spec:\n  entryPoints: [burst]\n  routes:\n  - services: [{{name: echo, port: 9}}]\n",
        echo.port(),
        echo.ip()
    )
}

/// Datagram `k` of client `c` in round `r`: a 6-byte tag then a pattern, `len` bytes in all
/// (a shorter datagram is cut from the tag: the 0-byte one is told apart by its length).
fn datagram(c: usize, r: usize, k: usize, len: usize) -> Vec<u8> {
    let mut d = vec![c as u8, r as u8, (k >> 8) as u8, k as u8, (len >> 8) as u8, len as u8];
    d.extend((6..len.max(6)).map(|i| (i * 31 + c * 7 + k) as u8));
    d.truncate(len);
    d
}

/// Sizes of one client's burst: runs of one size (GSO material), runs broken by shorter and
/// longer ones, an empty datagram and two large ones.
fn sizes(burst: usize) -> Vec<usize> {
    (0..burst)
        .map(|k| match k % 16 {
            0..=7 => 1000,
            8 => 300,
            9 | 10 => 1200,
            11 => 0,
            12 => 1200,
            13 => {
                if k % 32 == 13 {
                    30_000
                } else {
                    9000
                }
            }
            _ => 64 + k,
        })
        .collect()
}

/// Sends `clients × burst` datagrams per round, `interleaved` (one from each client in turn)
/// or client by client, then checks each client got back exactly what it sent.
fn rounds(weir: &Weir, to: SocketAddr, clients: &[UdpSocket], burst: usize, count: usize, interleaved: bool) {
    let sizes = sizes(burst);
    for r in 0..count {
        let mut sent: Vec<Vec<Vec<u8>>> = vec![Vec::new(); clients.len()];
        let order: Vec<(usize, usize)> = if interleaved {
            (0..burst).flat_map(|k| (0..clients.len()).map(move |c| (c, k))).collect()
        } else {
            (0..clients.len()).flat_map(|c| (0..burst).map(move |k| (c, k))).collect()
        };
        for (c, k) in order {
            let d = datagram(c, r, k, sizes[k]);
            clients[c].send_to(&d, to).expect("send");
            sent[c].push(d);
        }
        let mut buf = vec![0u8; 65_536];
        for (c, client) in clients.iter().enumerate() {
            let mut got = Vec::new();
            while got.len() < burst {
                match client.recv_from(&mut buf) {
                    Ok((n, from)) => {
                        assert_eq!(from, to, "client {c}: the reply comes from the entrypoint address");
                        got.push(buf[..n].to_vec());
                    }
                    Err(e) => panic!(
                        "round {r} (interleaved {interleaved}), client {c}: {} of {burst} replies, then {e}\n{}",
                        got.len(),
                        weir.log()
                    ),
                }
            }
            // Order is not asserted: loopback may reorder when the sender changes CPU.
            let mut want = sent[c].clone();
            want.sort();
            got.sort();
            assert!(
                got == want,
                "round {r} (interleaved {interleaved}), client {c}: replies differ from what it sent"
            );
        }
        // Nothing extra (a duplicated datagram) is on its way.
        std::thread::sleep(Duration::from_millis(50));
        for (c, client) in clients.iter().enumerate() {
            client.set_nonblocking(true).expect("nonblocking");
            assert!(client.recv_from(&mut buf).is_err(), "round {r}, client {c}: an extra reply");
            client.set_nonblocking(false).expect("blocking");
        }
    }
}

#[test]
fn bursts_from_many_sources_all_arrive_and_replies_return_to_their_source() {
    let echo = Echo::start();
    let port = free_udp_port();
    let to: SocketAddr = ([127, 0, 0, 1], port).into();
    let address = format!("--entryPoints.burst.address=127.0.0.1:{port}/udp");
    let weir = Weir::start(&[("echo.yaml", manifests(echo.addr).as_str())], &[&address]);

    // Routed once a probe comes back (from a socket of its own: the burst's flows are new).
    let probe = UdpSocket::bind("127.0.0.1:0").expect("bind probe");
    probe.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
    let start = Instant::now();
    let mut buf = [0u8; 16];
    loop {
        probe.send_to(b"probe", to).expect("send probe");
        if let Ok((5, _)) = probe.recv_from(&mut buf) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "weir never routed UDP:\n{}", weir.log());
    }
    // A probe still in flight would count below.
    std::thread::sleep(Duration::from_millis(300));
    while probe.recv_from(&mut buf).is_ok() {}
    let before = echo.seen.load(Ordering::Relaxed);

    let clients: Vec<UdpSocket> = (0..12)
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.1:0").expect("bind client");
            rustix::net::sockopt::set_socket_recv_buffer_size(&s, BUFFER).expect("client receive buffer");
            s.set_read_timeout(Some(Duration::from_secs(3))).expect("timeout");
            s
        })
        .collect();
    let (burst, count) = (48, 4);
    rounds(&weir, to, &clients, burst, count, true);
    rounds(&weir, to, &clients, burst, count, false);

    let through = echo.seen.load(Ordering::Relaxed) - before;
    assert_eq!(through, 2 * count * clients.len() * burst, "the backend saw each datagram once");
}
