//! The control thread's side of UDP entrypoints: binds one SO_REUSEPORT socket per worker for
//! each new (or moved) UDP entrypoint before anything changes, so a bind failure rejects the
//! snapshot cleanly, and remembers what is open.

use std::collections::HashMap;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};
use weir_proto::udp::Udp;

/// Receive buffer asked for each listener socket (the kernel caps it at `net.core.rmem_max`):
/// a burst at 1 Gbit/s must not overflow between two reads.
const RECV_BUFFER: usize = 4 << 20;

/// Sockets bound for one snapshot: entrypoints to close, and per worker the new sockets.
pub struct UdpChange {
    /// Entrypoints whose sockets close (removed, moved, or timeout changed).
    pub close: Vec<String>,
    /// Per worker: new sockets by entrypoint name.
    pub open: Vec<Vec<(String, std::net::UdpSocket)>>,
}

/// UDP entrypoints currently open: name → (address, timeout in ms).
#[derive(Debug, Default)]
pub struct UdpSockets {
    open: HashMap<String, (SocketAddr, u64)>,
}

impl UdpSockets {
    /// Binds what `udp` needs that is not open yet, one socket per worker.
    pub fn prepare(&self, udp: &Udp, workers: usize) -> Result<UdpChange, String> {
        let mut open: Vec<Vec<(String, std::net::UdpSocket)>> = (0..workers).map(|_| Vec::new()).collect();
        for ep in &udp.entrypoints {
            if self.open.get(&ep.name) == Some(&(ep.address, ep.timeout_ms)) {
                continue;
            }
            for slot in open.iter_mut() {
                let sock = reuseport_socket(ep.address).map_err(|e| {
                    format!("UDP entrypoint {}: cannot listen on {}: {e}", ep.name, ep.address)
                })?;
                slot.push((ep.name.clone(), sock));
            }
        }
        let close = self
            .open
            .iter()
            .filter(|(name, state)| {
                !udp.entrypoints.iter().any(|e| &e.name == *name && (e.address, e.timeout_ms) == **state)
            })
            .map(|(name, _)| name.clone())
            .collect();
        Ok(UdpChange { close, open })
    }

    /// Records that `udp`'s entrypoints are now open.
    pub fn commit(&mut self, udp: &Udp) {
        self.open = udp.entrypoints.iter().map(|e| (e.name.clone(), (e.address, e.timeout_ms))).collect();
    }
}

fn reuseport_socket(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(false)?;
    }
    // Best effort: without privileges the kernel caps it silently.
    let _ = s.set_recv_buffer_size(RECV_BUFFER);
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_proto::udp::UdpEntryPoint;

    fn udp(eps: &[(&str, SocketAddr, u64)]) -> Udp {
        Udp {
            entrypoints: eps
                .iter()
                .map(|(n, a, t)| UdpEntryPoint { name: (*n).into(), address: *a, timeout_ms: *t })
                .collect(),
            ..Udp::default()
        }
    }

    #[test]
    fn opens_moves_and_closes() {
        // A free port to bind, held by nobody.
        let port = std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).expect("port");
        let other = std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).expect("port");
        let mut sockets = UdpSockets::default();

        let first = udp(&[("dns", port, 3000)]);
        let change = sockets.prepare(&first, 2).expect("bind");
        assert!(change.close.is_empty());
        assert_eq!(change.open.iter().map(Vec::len).collect::<Vec<_>>(), vec![1, 1], "one socket per worker");
        let bound = change.open[0][0].1.local_addr().expect("local addr");
        assert_eq!(bound, port);
        sockets.commit(&first);

        let same = sockets.prepare(&first, 2).expect("nothing to bind");
        assert!(same.close.is_empty() && same.open.iter().all(Vec::is_empty));

        let new_timeout = udp(&[("dns", port, 1000)]);
        let change = sockets.prepare(&new_timeout, 1).expect("rebind beside the old one (SO_REUSEPORT)");
        assert_eq!(change.close, vec!["dns".to_string()]);
        assert_eq!(change.open[0].len(), 1);
        sockets.commit(&new_timeout);

        let moved = udp(&[("game", other, 1000)]);
        let change = sockets.prepare(&moved, 1).expect("bind");
        assert_eq!(change.close, vec!["dns".to_string()]);
        assert_eq!(change.open[0][0].0, "game");
    }
}
