//! The UDP fast path (experimental, `--experimental.udpFastPath`): the TC classifier of
//! `bpf/udp_fast.bpf.c` on the ingress of chosen interfaces, and a typed wrapper of its `flows`
//! map. The data plane decides everything (which flows, which backend, when a flow ends); this
//! module only loads, attaches and detaches the program and writes, reads and removes the two
//! entries of a flow. IPv4 only: IPv6 flows are never mirrored and stay on the userspace path.
//!
//! Attachment: TCX links on Linux ≥ 6.6 (no qdisc involved); on older kernels a netlink filter
//! under a `clsact` qdisc, which is created when absent and deleted again at detach when this
//! module created it, so the interface is left as found.

#![allow(unsafe_code)]

use std::net::SocketAddrV4;
use std::os::fd::AsFd;

use aya::maps::{HashMap as BpfHashMap, Map, MapData, PerCpuArray};
use aya::programs::tc::{self, SchedClassifier, TcAttachType, TcError};
use aya::programs::ProgramError;
use aya::Ebpf;

use crate::error::EbpfError;
use crate::object;

const PROGRAM: &str = "udp_fast";
const FLOWS: &str = "flows";

/// A `flows` key: a packet's addresses and ports as it arrives, in network byte order
/// (`struct flow_key`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    saddr: [u8; 4],
    daddr: [u8; 4],
    sport: [u8; 2],
    dport: [u8; 2],
}

/// A `flows` value: what the packet becomes and where it goes (`struct flow_rewrite`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowRewrite {
    saddr: [u8; 4],
    daddr: [u8; 4],
    sport: [u8; 2],
    dport: [u8; 2],
    ifindex: u32,
    last_seen_ns: u64,
    packets: u64,
    bytes: u64,
}

// SAFETY: both are `repr(C)` plain old data without padding (12 and 40 bytes, the layouts of
// the C structs), valid for any bit pattern.
unsafe impl aya::Pod for FlowKey {}
// SAFETY: as above.
unsafe impl aya::Pod for FlowRewrite {}

impl FlowKey {
    fn new(source: SocketAddrV4, destination: SocketAddrV4) -> FlowKey {
        FlowKey {
            saddr: source.ip().octets(),
            daddr: destination.ip().octets(),
            sport: source.port().to_be_bytes(),
            dport: destination.port().to_be_bytes(),
        }
    }
}

impl FlowRewrite {
    fn new(source: SocketAddrV4, destination: SocketAddrV4, ifindex: u32) -> FlowRewrite {
        let key = FlowKey::new(source, destination);
        FlowRewrite {
            saddr: key.saddr,
            daddr: key.daddr,
            sport: key.sport,
            dport: key.dport,
            ifindex,
            last_seen_ns: 0,
            packets: 0,
            bytes: 0,
        }
    }
}

/// One UDP flow as the kernel sees it: the client talks to the listener, weir's flow socket
/// to the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowPair {
    /// The client's address.
    pub client: SocketAddrV4,
    /// The address the client sends to (and replies come from).
    pub listener: SocketAddrV4,
    /// The flow socket's local address (what the backend sees as its client).
    pub flow: SocketAddrV4,
    /// The backend.
    pub backend: SocketAddrV4,
    /// Interface the client's datagrams leave by toward the backend, 0 when the backend is
    /// local (the stack delivers them).
    pub to_backend_ifindex: u32,
    /// Interface replies leave by toward the client, 0 when the client is local.
    pub to_client_ifindex: u32,
}

impl FlowPair {
    /// (client → listener, backend → flow socket): the keys of the two entries.
    pub fn keys(&self) -> [FlowKey; 2] {
        [FlowKey::new(self.client, self.listener), FlowKey::new(self.backend, self.flow)]
    }

    fn rewrites(&self) -> [FlowRewrite; 2] {
        [
            FlowRewrite::new(self.flow, self.backend, self.to_backend_ifindex),
            FlowRewrite::new(self.listener, self.client, self.to_client_ifindex),
        ]
    }
}

/// What the kernel did for one flow (both directions), read from its entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowActivity {
    /// Latest `bpf_ktime_get_ns` (CLOCK_MONOTONIC) of a datagram forwarded either way; `None`
    /// when the kernel has forwarded none (or both entries are gone).
    pub last_seen_ns: Option<u64>,
    /// Datagrams forwarded, both directions.
    pub packets: u64,
    /// Their bytes.
    pub bytes: u64,
    /// How many of the two entries are in the map (the LRU may have dropped one).
    pub entries: u8,
}

/// Counters of the TC program, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UdpFastCounters {
    /// Datagrams rewritten and forwarded by the kernel.
    pub packets: u64,
    /// Their bytes (as on the wire, from the MAC header).
    pub bytes: u64,
    /// Of those, sent out of another interface.
    pub redirects: u64,
    /// Datagrams dropped (a rewrite or redirect failed).
    pub drops: u64,
    /// IPv4 UDP datagrams without an entry, left to the stack and userspace.
    pub passed: u64,
}

/// The loaded and attached program. Dropping it detaches it from every interface.
pub struct UdpFastPath {
    ebpf: Option<Ebpf>,
    interfaces: Vec<String>,
    /// Interfaces whose `clsact` qdisc this created (pre-TCX kernels only): deleted at drop.
    created_clsact: Vec<String>,
}

impl std::fmt::Debug for UdpFastPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpFastPath").field("interfaces", &self.interfaces).finish_non_exhaustive()
    }
}

fn map_err(e: aya::maps::MapError) -> EbpfError {
    let reason = match std::error::Error::source(&e) {
        Some(source) => format!("{e}: {source}"),
        None => e.to_string(),
    };
    EbpfError::Map { map: FLOWS, reason }
}

fn attach_err(interface: &str, e: impl std::fmt::Display) -> EbpfError {
    EbpfError::Attach { program: PROGRAM, reason: format!("interface {interface}: {e}") }
}

impl UdpFastPath {
    /// Loads the program and attaches it to the ingress of each of `interfaces` (names, e.g.
    /// `lo`, `eth0`). Fails as a whole: on error nothing stays attached.
    pub fn load(interfaces: &[String]) -> Result<UdpFastPath, EbpfError> {
        let bytes = object::UDP_FAST.ok_or(EbpfError::NotBuilt)?;
        if interfaces.is_empty() {
            return Err(attach_err("(none)", "no interface to attach to"));
        }
        let ebpf =
            Ebpf::load(bytes).map_err(|e| EbpfError::Load { program: PROGRAM, source: Box::new(e) })?;
        let mut path = UdpFastPath { ebpf: Some(ebpf), interfaces: Vec::new(), created_clsact: Vec::new() };
        let program: &mut SchedClassifier = path
            .ebpf
            .as_mut()
            .and_then(|e| e.program_mut(PROGRAM))
            .ok_or(EbpfError::Attach { program: PROGRAM, reason: "not in the object".into() })?
            .try_into()
            .map_err(|e: ProgramError| EbpfError::Attach { program: PROGRAM, reason: e.to_string() })?;
        program.load().map_err(|e| EbpfError::Load { program: PROGRAM, source: Box::new(e) })?;
        for interface in interfaces {
            match program.attach(interface, TcAttachType::Ingress) {
                Ok(_) => {}
                // Pre-TCX kernels: netlink filters need a clsact qdisc.
                Err(ProgramError::TcError(TcError::NetlinkError(_))) => {
                    match tc::qdisc_add_clsact(interface) {
                        Ok(()) => path.created_clsact.push(interface.clone()),
                        Err(TcError::NetlinkError(e)) if e.raw_os_error() == Some(libc::EEXIST) => {}
                        Err(e) => return Err(attach_err(interface, e)),
                    }
                    program.attach(interface, TcAttachType::Ingress).map_err(|e| attach_err(interface, e))?;
                }
                Err(e) => return Err(attach_err(interface, e)),
            }
            path.interfaces.push(interface.clone());
        }
        Ok(path)
    }

    /// The interfaces the program is attached to.
    pub fn interfaces(&self) -> &[String] {
        &self.interfaces
    }

    /// A handle on the flows map of its own (a duplicate descriptor): one per worker thread,
    /// so no handle is shared.
    pub fn flows(&self) -> Result<FlowMap, EbpfError> {
        let data = match self.ebpf.as_ref().and_then(|e| e.map(FLOWS)) {
            Some(Map::LruHashMap(data)) => data,
            _ => return Err(EbpfError::Map { map: FLOWS, reason: "not an LRU hash in the object".into() }),
        };
        let fd = data
            .fd()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| EbpfError::Map { map: FLOWS, reason: format!("dup: {e}") })?;
        let data = MapData::from_fd(fd).map_err(map_err)?;
        let map = BpfHashMap::try_from(Map::LruHashMap(data)).map_err(map_err)?;
        Ok(FlowMap { map })
    }

    /// The program's counters, summed over CPUs.
    pub fn counters(&self) -> UdpFastCounters {
        let mut out = UdpFastCounters::default();
        let Some(map) = self.ebpf.as_ref().and_then(|e| e.map("counters")) else { return out };
        let Ok(counters) = PerCpuArray::<&MapData, u64>::try_from(map) else { return out };
        let sum = |i: u32| counters.get(&i, 0).map(|v| v.iter().sum::<u64>()).unwrap_or(0);
        out.packets = sum(0);
        out.bytes = sum(1);
        out.redirects = sum(2);
        out.drops = sum(3);
        out.passed = sum(4);
        out
    }
}

impl Drop for UdpFastPath {
    fn drop(&mut self) {
        // Detach first (aya detaches the program's links when it is dropped), then delete the
        // qdiscs that were not there before.
        drop(self.ebpf.take());
        for interface in &self.created_clsact {
            let status = std::process::Command::new("tc")
                .args(["qdisc", "del", "dev", interface, "clsact"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
            if !matches!(status, Ok(s) if s.success()) {
                tracing::warn!(interface = %interface, "UDP fast path: could not delete the clsact qdisc it added");
            }
        }
    }
}

/// A handle on the `flows` map.
pub struct FlowMap {
    map: BpfHashMap<MapData, FlowKey, FlowRewrite>,
}

impl std::fmt::Debug for FlowMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowMap").finish_non_exhaustive()
    }
}

impl FlowMap {
    /// Another handle on the same map (a duplicate descriptor), for another thread.
    pub fn try_clone(&self) -> Result<FlowMap, EbpfError> {
        use aya::maps::IterableMap as _;
        let fd = self
            .map
            .map()
            .fd()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| EbpfError::Map { map: FLOWS, reason: format!("dup: {e}") })?;
        let data = MapData::from_fd(fd).map_err(map_err)?;
        let map = BpfHashMap::try_from(Map::LruHashMap(data)).map_err(map_err)?;
        Ok(FlowMap { map })
    }

    /// Mirrors `pair` into the map, replies' entry first (a client datagram forwarded by the
    /// kernel may be answered at once). On error nothing of it stays in the map.
    pub fn insert(&mut self, pair: &FlowPair) -> Result<(), EbpfError> {
        let [forward, reverse] = pair.keys();
        let [to_backend, to_client] = pair.rewrites();
        self.map.insert(reverse, to_client, 0).map_err(map_err)?;
        if let Err(e) = self.map.insert(forward, to_backend, 0) {
            let _ = self.map.remove(&reverse);
            return Err(map_err(e));
        }
        Ok(())
    }

    /// Removes both entries of `pair` (client's first, so no datagram is rewritten toward a
    /// flow whose replies are no longer translated); absent entries are fine.
    pub fn remove(&mut self, pair: &FlowPair) {
        for key in pair.keys() {
            let _ = self.map.remove(&key);
        }
    }

    /// What the kernel did for `pair`, both directions together.
    pub fn activity(&self, pair: &FlowPair) -> FlowActivity {
        let mut out = FlowActivity::default();
        for key in pair.keys() {
            if let Ok(v) = self.map.get(&key, 0) {
                out.entries += 1;
                out.packets += v.packets;
                out.bytes += v.bytes;
                if v.last_seen_ns != 0 {
                    out.last_seen_ns =
                        Some(out.last_seen_ns.map_or(v.last_seen_ns, |t| t.max(v.last_seen_ns)));
                }
            }
        }
        out
    }

    /// Entries in the map (both directions of every flow): walks the whole map, for tests and
    /// diagnostics only.
    pub fn len(&self) -> usize {
        self.map.keys().filter(Result::is_ok).count()
    }

    /// Whether the map holds no entry (see [`FlowMap::len`]).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// CLOCK_MONOTONIC in nanoseconds: the clock of `bpf_ktime_get_ns`, so
/// `monotonic_ns() - last_seen_ns` is how long ago the kernel forwarded a datagram.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_c_structs() {
        assert_eq!(std::mem::size_of::<FlowKey>(), 12);
        assert_eq!(std::mem::size_of::<FlowRewrite>(), 40);
        assert_eq!(std::mem::offset_of!(FlowRewrite, ifindex), 12);
        assert_eq!(std::mem::offset_of!(FlowRewrite, last_seen_ns), 16);
    }

    #[test]
    fn a_pair_maps_each_direction_to_the_other_side() {
        let pair = FlowPair {
            client: "10.0.0.1:5000".parse().expect("addr"),
            listener: "10.0.0.2:53".parse().expect("addr"),
            flow: "10.0.1.2:40000".parse().expect("addr"),
            backend: "10.0.1.9:5353".parse().expect("addr"),
            to_backend_ifindex: 3,
            to_client_ifindex: 2,
        };
        let [forward, reverse] = pair.keys();
        assert_eq!(forward, FlowKey::new(pair.client, pair.listener));
        assert_eq!(reverse, FlowKey::new(pair.backend, pair.flow));
        let [to_backend, to_client] = pair.rewrites();
        assert_eq!(
            (to_backend.saddr, to_backend.daddr, to_backend.sport, to_backend.dport, to_backend.ifindex),
            ([10, 0, 1, 2], [10, 0, 1, 9], 40000u16.to_be_bytes(), 5353u16.to_be_bytes(), 3)
        );
        assert_eq!(
            (to_client.saddr, to_client.daddr, to_client.sport, to_client.dport, to_client.ifindex),
            ([10, 0, 0, 2], [10, 0, 0, 1], 53u16.to_be_bytes(), 5000u16.to_be_bytes(), 2)
        );
    }
}
