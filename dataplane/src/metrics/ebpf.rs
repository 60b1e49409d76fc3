//! `weir_ebpf_*` series: the counters the BPF programs keep in per-CPU array maps, read (and
//! summed over CPUs) when `/metrics` is scraped. One series per program instance: the
//! `sk_reuseport` steering program of each entrypoint's socket group, and the process's
//! `sk_skb` splice program when `--experimental.sockmap` is in use, and the TC program of the
//! UDP fast path (`--experimental.udpFastPath`), with beside it the flows it holds and the
//! datagrams the userspace UDP proxy still relayed. Nothing is kept here between scrapes;
//! with no program loaded nothing is rendered.

use std::fmt::Write as _;

/// One program instance's counters under the four common names.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    /// `program` label.
    program: &'static str,
    /// `entrypoint` label (steering only).
    entrypoint: Option<String>,
    /// Packets the program ran on (steering: new connections and datagrams; splice: segments).
    packets: u64,
    /// Bytes of those packets.
    bytes: u64,
    /// Packets sent where the program chose (a worker's socket, the peer socket).
    redirects: u64,
    /// Packets dropped by the program (splice: lone FINs and refused redirects).
    drops: u64,
}

/// The `weir_ebpf_*` part of the exposition (empty when no program is loaded).
pub async fn render() -> String {
    let mut rows = Vec::new();
    let mut steered = Vec::new();
    for (entrypoint, c) in crate::steering::counters().await {
        rows.push(Row {
            program: "sk_reuseport",
            entrypoint: Some(entrypoint.clone()),
            packets: c.same_cpu + c.hashed + c.kernel,
            bytes: c.bytes,
            redirects: c.same_cpu + c.hashed,
            drops: 0,
        });
        steered.push((entrypoint, c));
    }
    if let Some(c) = crate::tcp::sockmap::counters() {
        rows.push(Row {
            program: "sk_skb_splice",
            entrypoint: None,
            packets: c.packets,
            bytes: c.bytes,
            redirects: c.redirects,
            drops: c.drops,
        });
    }
    let udp = crate::udp::fast::counters().map(|c| {
        rows.push(Row {
            program: "tc_udp_fast",
            entrypoint: None,
            packets: c.packets,
            bytes: c.bytes,
            redirects: c.redirects,
            drops: c.drops,
        });
        UdpFast {
            flows: crate::udp::fast::mirrored_flows(),
            userspace: crate::udp::fast::userspace_datagrams(),
        }
    });
    write(&rows, &steered, udp)
}

/// The UDP fast path's figures beside its program's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct UdpFast {
    /// Flows mirrored into the map now.
    flows: u64,
    /// Datagrams the userspace proxy relayed since start.
    userspace: u64,
}

fn write(rows: &[Row], steered: &[(String, weir_ebpf::ReuseportCounters)], udp: Option<UdpFast>) -> String {
    let mut out = String::new();
    if rows.is_empty() {
        return out;
    }
    type Series = (&'static str, &'static str, fn(&Row) -> u64);
    let series: [Series; 4] = [
        ("weir_ebpf_packets_total", "Packets a BPF program ran on.", |r| r.packets),
        ("weir_ebpf_bytes_total", "Bytes of the packets a BPF program ran on.", |r| r.bytes),
        ("weir_ebpf_redirects_total", "Packets a BPF program sent where it chose.", |r| r.redirects),
        ("weir_ebpf_drops_total", "Packets a BPF program dropped.", |r| r.drops),
    ];
    for (name, help, value) in series {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for r in rows {
            let _ = write!(out, "{name}{{program=\"{}\"", r.program);
            if let Some(ep) = &r.entrypoint {
                let _ = write!(out, ",entrypoint=\"{}\"", escape(ep));
            }
            let _ = writeln!(out, "}} {}", value(r));
        }
    }
    if !steered.is_empty() {
        let name = "weir_ebpf_steered_total";
        let _ = writeln!(
            out,
            "# HELP {name} Connections and datagrams the steering program handed out, by how it chose.\n# TYPE {name} counter"
        );
        for (ep, c) in steered {
            for (choice, v) in [("same_cpu", c.same_cpu), ("hash", c.hashed), ("kernel", c.kernel)] {
                let _ = writeln!(out, "{name}{{entrypoint=\"{}\",choice=\"{choice}\"}} {v}", escape(ep));
            }
        }
    }
    if let Some(udp) = udp {
        let name = "weir_ebpf_udp_fast_flows";
        let _ = writeln!(
            out,
            "# HELP {name} UDP flows mirrored into the fast path's map.\n# TYPE {name} gauge\n{name} {}",
            udp.flows
        );
        let name = "weir_udp_userspace_datagrams_total";
        let _ = writeln!(
            out,
            "# HELP {name} UDP datagrams relayed by the userspace proxy, both ways.\n# TYPE {name} counter\n{name} {}",
            udp.userspace
        );
    }
    out
}

/// Label value escaping of the text exposition format.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_each_program_under_the_four_names() {
        let rows = [
            Row {
                program: "sk_reuseport",
                entrypoint: Some("web".into()),
                packets: 5,
                bytes: 0,
                redirects: 4,
                drops: 0,
            },
            Row {
                program: "sk_skb_splice",
                entrypoint: None,
                packets: 9,
                bytes: 900,
                redirects: 7,
                drops: 2,
            },
        ];
        let steered = [(
            "web".to_string(),
            weir_ebpf::ReuseportCounters { same_cpu: 3, hashed: 1, kernel: 1, bytes: 0 },
        )];
        let text = write(&rows, &steered, Some(UdpFast { flows: 3, userspace: 12 }));
        for line in [
            r#"weir_ebpf_packets_total{program="sk_reuseport",entrypoint="web"} 5"#,
            r#"weir_ebpf_redirects_total{program="sk_reuseport",entrypoint="web"} 4"#,
            r#"weir_ebpf_bytes_total{program="sk_skb_splice"} 900"#,
            r#"weir_ebpf_drops_total{program="sk_skb_splice"} 2"#,
            r#"weir_ebpf_steered_total{entrypoint="web",choice="same_cpu"} 3"#,
            "# TYPE weir_ebpf_packets_total counter",
            "weir_ebpf_udp_fast_flows 3",
            "weir_udp_userspace_datagrams_total 12",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
        }
    }

    #[test]
    fn nothing_when_no_program_is_loaded() {
        assert_eq!(write(&[], &[], None), "");
    }
}
