//! SK_REUSEPORT steering on real sockets: two listeners in one SO_REUSEPORT group, the program
//! attached with worker 0 on CPU 0 and worker 1 on CPU 1; connections made from a thread pinned
//! to a CPU must all be queued on that CPU's listener. Needs root (CAP_BPF + CAP_NET_ADMIN) and
//! two CPUs; without them it skips loudly, except under CI where it must run.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;

use socket2::{Domain, Protocol, Socket, Type};
use weir_ebpf::ReuseportSteering;

fn can_run() -> bool {
    let root = rustix::process::geteuid().is_root();
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    if root && cpus >= 2 && weir_ebpf::objects_built() {
        return true;
    }
    let why = format!("root={root}, cpus={cpus}, objects built={}", weir_ebpf::objects_built());
    assert!(std::env::var_os("CI").is_none(), "eBPF steering test cannot run under CI: {why}");
    eprintln!("\n!!! SKIPPED reuseport steering test ({why}) !!!\n");
    false
}

fn listener(addr: SocketAddr) -> TcpListener {
    let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).expect("socket");
    s.set_reuse_port(true).expect("SO_REUSEPORT");
    s.bind(&addr.into()).expect("bind");
    s.listen(1024).expect("listen");
    s.set_nonblocking(true).expect("nonblocking");
    s.into()
}

fn pin(cpu: usize) {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    rustix::thread::sched_setaffinity(None, &set).expect("pin thread");
}

/// Accepts everything queued on `l`; returns how many.
fn drain(l: &TcpListener) -> usize {
    let mut n = 0;
    while l.accept().is_ok() {
        n += 1;
    }
    n
}

#[test]
fn connections_land_on_the_worker_of_their_cpu() {
    if !can_run() {
        return;
    }
    let first = listener("127.0.0.1:0".parse().expect("addr"));
    let addr = first.local_addr().expect("addr");
    let second = listener(addr);
    let steering = ReuseportSteering::attach(&[first.as_fd(), second.as_fd()], &[Some(0), Some(1)])
        .expect("attach steering");

    for (cpu, expect_first) in [(0, true), (1, false)] {
        let conns = std::thread::spawn(move || {
            pin(cpu);
            (0..50).map(|_| TcpStream::connect(addr).expect("connect")).collect::<Vec<_>>()
        })
        .join()
        .expect("client thread");
        std::thread::sleep(std::time::Duration::from_millis(50));
        let (on_first, on_second) = (drain(&first), drain(&second));
        let (mine, other) = if expect_first { (on_first, on_second) } else { (on_second, on_first) };
        assert_eq!(
            (mine, other),
            (50, 0),
            "clients on CPU {cpu}: {on_first} on worker 0, {on_second} on worker 1"
        );
        drop(conns);
    }
    let counters = steering.counters();
    assert_eq!(counters.same_cpu, 100, "{counters:?}");
}
