//! Router-table cost at scale, for `bench/route-lookup`: builds a table of N IngressRoute-like
//! routers (host-indexed `Host(…) && PathPrefix(…)` rules plus a few generic ones), prints how
//! long parsing and indexing took, then performs lookups inside `lookups()` — the function
//! callgrind counts instructions in (`--toggle-collect`), so per-lookup cost is repeatable.
//!
//! Usage: route_lookup N [LOOKUPS]

use std::hint::black_box;
use std::time::Instant;

use http::{HeaderMap, Method};
use weir_dataplane::router::{CompiledExpr, IndexedRouter, RequestInfo, RouterIndex};

fn rules(n: usize) -> Vec<String> {
    let mut out: Vec<String> = (0..n.saturating_sub(3))
        .map(|i| format!("Host(`host{i}.example.com`) && PathPrefix(`/api/v{}`)", i % 7))
        .collect();
    out.push("PathPrefix(`/static`)".into());
    out.push("Host(`*.wild.example.com`)".into());
    out.push("Method(`OPTIONS`)".into());
    out.truncate(n);
    out
}

#[inline(never)]
fn lookups(index: &RouterIndex<usize>, reqs: &[RequestInfo<'_>], rounds: usize) -> usize {
    let mut hits = 0;
    for _ in 0..rounds {
        for r in reqs {
            if let Some(router) = index.route(black_box(r)) {
                hits += router.target;
            }
        }
    }
    hits
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);

    let t = Instant::now();
    let parsed: Vec<_> = rules(n)
        .iter()
        .map(|r| (r.len() as i64, weir_proto::rule::parse(r).unwrap_or_else(|e| panic!("{r}: {e}"))))
        .collect();
    let parse_time = t.elapsed();
    let t = Instant::now();
    let routers = parsed
        .iter()
        .enumerate()
        .map(|(i, (priority, expr))| IndexedRouter {
            name: format!("r{i}"),
            priority: *priority,
            expr: CompiledExpr::compile(expr).unwrap_or_else(|e| panic!("compile: {e}")),
            target: i,
        })
        .collect();
    let index = RouterIndex::new(routers);
    let build_time = t.elapsed();

    let headers = HeaderMap::new();
    // A host-indexed hit in the middle of the table; the same request at every size.
    let i = (n / 2).min(n.saturating_sub(4));
    let host = format!("host{i}.example.com");
    let path = format!("/api/v{}/users", i % 7);
    let reqs = [RequestInfo {
        host: &host,
        path: &path,
        method: &Method::GET,
        headers: &headers,
        query: None,
        client_ip: [10, 0, 0, 1].into(),
    }];
    let hits = lookups(&index, &reqs, rounds);
    println!(
        "routes={n} parse_ms={:.1} index_ms={:.1} lookups={} hits={hits}",
        parse_time.as_secs_f64() * 1e3,
        build_time.as_secs_f64() * 1e3,
        rounds * reqs.len()
    );
}
