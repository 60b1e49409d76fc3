//! The Prometheus text exposition (format 0.0.4) of merged counters, as Traefik's Go client
//! writes it: families sorted by name, labels sorted by name (`le` last), values in Go's
//! `%g` float form (`1e+06`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use weir_proto::observability::Prometheus;

use super::{process, Counters, Series, SeriesMap};

/// Gauges that come from outside the request counters.
#[derive(Debug, Default)]
pub struct Gauges {
    /// `traefik_service_server_up`: (service, url, up).
    pub server_up: Vec<(String, String, bool)>,
    /// `traefik_tls_certs_not_after`: (cn, serial, sans, not-after in Unix seconds).
    pub certs: Vec<(String, String, String, i64)>,
}

/// `name@provider` as Traefik reports objects: snapshot names of CRD objects carry none.
pub fn qualified(name: &str) -> std::borrow::Cow<'_, str> {
    if name.contains('@') {
        std::borrow::Cow::Borrowed(name)
    } else {
        std::borrow::Cow::Owned(format!("{name}@kubernetescrd"))
    }
}

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)` as the Prometheus client uses it.
pub fn go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    if v == 0.0 {
        return "0".into();
    }
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..21).contains(&exp) && exp < 6 {
        format!("{v}")
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// `{a="x",b="y"}` from pairs (sorted here).
fn label_set(mut pairs: Vec<(&str, String)>) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let body: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
    format!("{{{}}}", body.join(","))
}

/// One family's lines, kept sorted by label text like the Go client.
#[derive(Default)]
struct Family {
    kind: &'static str,
    help: &'static str,
    lines: Vec<(String, String)>,
}

#[derive(Default)]
struct Out {
    families: BTreeMap<String, Family>,
}

impl Out {
    fn family(&mut self, name: &str, kind: &'static str, help: &'static str) -> &mut Family {
        let f = self.families.entry(name.to_string()).or_default();
        f.kind = kind;
        f.help = help;
        f
    }

    fn sample(&mut self, name: &str, kind: &'static str, help: &'static str, labels: String, value: String) {
        self.family(name, kind, help).lines.push((labels, value));
    }

    fn finish(self) -> String {
        let mut s = String::new();
        for (name, mut f) in self.families {
            let _ = writeln!(s, "# HELP {name} {}", f.help);
            let _ = writeln!(s, "# TYPE {name} {}", f.kind);
            if f.kind != "histogram" {
                f.lines.sort();
            }
            // Histogram lines carry their suffix in the label slot: `_bucket{..}`.
            for (labels, value) in f.lines {
                let _ = writeln!(s, "{name}{labels} {value}");
            }
        }
        s
    }
}

/// One owner kind's families (`entrypoint`, `router` or `service`).
struct Scope<'a> {
    prefix: &'static str,
    helps: [&'static str; 4],
    /// Owner's labels, e.g. `[("entrypoint", "web")]`.
    owner: Vec<(&'static str, std::borrow::Cow<'a, str>)>,
}

fn render_scope(out: &mut Out, config: &Prometheus, scope: &Scope<'_>, series: &SeriesMap) {
    let base = |code: u16, method: &str, protocol: &str| {
        let mut pairs: Vec<(&str, String)> = vec![
            ("code", code.to_string()),
            ("method", method.to_string()),
            ("protocol", protocol.to_string()),
        ];
        pairs.extend(scope.owner.iter().map(|(k, v)| (*k, v.to_string())));
        pairs
    };
    // Duration and byte series have no header labels: merge over them.
    let mut merged: BTreeMap<(u16, String, &'static str), Series> = BTreeMap::new();
    for (labels, s) in series {
        merged
            .entry((labels.code, labels.method.as_str().to_string(), labels.protocol.as_str()))
            .or_default()
            .merge(s);
        let mut pairs = base(labels.code, labels.method.as_str(), labels.protocol.as_str());
        for ((label, _), value) in config.header_labels.iter().zip(&labels.headers) {
            pairs.push((label.as_str(), value.clone()));
        }
        let name = format!("{}requests_total", scope.prefix);
        let value = go_float(s.requests as f64);
        out.sample(&name, "counter", scope.helps[0], label_set(pairs), value);
    }
    for ((code, method, protocol), s) in merged {
        let labels = label_set(base(code, &method, protocol));
        let name = format!("{}requests_bytes_total", scope.prefix);
        out.sample(&name, "counter", scope.helps[2], labels.clone(), go_float(s.request_bytes as f64));
        let name = format!("{}responses_bytes_total", scope.prefix);
        out.sample(&name, "counter", scope.helps[3], labels.clone(), go_float(s.response_bytes as f64));
        let name = format!("{}request_duration_seconds", scope.prefix);
        let family = out.family(&name, "histogram", scope.helps[1]);
        let mut cumulative = 0u64;
        let pairs = base(code, &method, protocol);
        for (i, bound) in config.buckets.iter().enumerate() {
            cumulative += s.buckets.get(i).copied().unwrap_or(0);
            let mut p = pairs.clone();
            p.sort_by(|a, b| a.0.cmp(b.0));
            p.push(("le", go_float(*bound)));
            family.lines.push((format!("_bucket{}", label_set_unsorted(p)), cumulative.to_string()));
        }
        let mut p = pairs.clone();
        p.sort_by(|a, b| a.0.cmp(b.0));
        p.push(("le", "+Inf".into()));
        family.lines.push((format!("_bucket{}", label_set_unsorted(p)), s.requests.to_string()));
        family.lines.push((format!("_sum{labels}"), go_float(s.sum)));
        family.lines.push((format!("_count{labels}"), s.requests.to_string()));
    }
}

/// Like `label_set` but keeps the given order (for `le` last).
fn label_set_unsorted(pairs: Vec<(&str, String)>) -> String {
    let body: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
    format!("{{{}}}", body.join(","))
}

const EP_HELPS: [&str; 4] = [
    "How many HTTP requests processed on an entrypoint, partitioned by status code, protocol, and method.",
    "How long it took to process the request on an entrypoint, partitioned by status code, protocol, and method.",
    "The total size of requests in bytes handled by an entrypoint, partitioned by status code, protocol, and method.",
    "The total size of responses in bytes handled by an entrypoint, partitioned by status code, protocol, and method.",
];
const ROUTER_HELPS: [&str; 4] = [
    "How many HTTP requests are processed on a router, partitioned by service, status code, protocol, and method.",
    "How long it took to process the request on a router, partitioned by service, status code, protocol, and method.",
    "The total size of requests in bytes handled by a router, partitioned by service, status code, protocol, and method.",
    "The total size of responses in bytes handled by a router, partitioned by service, status code, protocol, and method.",
];
const SERVICE_HELPS: [&str; 4] = [
    "How many HTTP requests processed on a service, partitioned by status code, protocol, and method.",
    "How long it took to process the request on a service, partitioned by status code, protocol, and method.",
    "The total size of requests in bytes received by a service, partitioned by status code, protocol, and method.",
    "The total size of responses in bytes returned by a service, partitioned by status code, protocol, and method.",
];

const TLS_HELPS: [&str; 3] = [
    "How many HTTP requests over TLS an entrypoint processed, partitioned by TLS version and cipher.",
    "How many HTTP requests over TLS a router processed, partitioned by service, TLS version and cipher.",
    "How many HTTP requests over TLS a service processed, partitioned by TLS version and cipher.",
];

/// One owner's `*_requests_tls_total` samples.
fn render_tls(
    out: &mut Out,
    name: &str,
    help: &'static str,
    owner: &[(&'static str, String)],
    counts: &super::TlsCounts,
) {
    for ((version, cipher), n) in counts {
        let mut pairs = owner.to_vec();
        pairs.push(("tls_version", (*version).to_string()));
        pairs.push(("tls_cipher", (*cipher).to_string()));
        out.sample(name, "counter", help, label_set(pairs), go_float(*n as f64));
    }
}

fn sorted<V>(map: &std::collections::HashMap<Box<str>, V>) -> Vec<(&str, &V)> {
    let mut v: Vec<(&str, &V)> = map.iter().map(|(k, v)| (&**k, v)).collect();
    v.sort_by(|a, b| a.0.cmp(b.0));
    v
}

/// The whole exposition.
pub fn render(config: &Prometheus, c: &Counters, gauges: &Gauges) -> String {
    let mut out = Out::default();
    out.sample(
        "traefik_config_reloads_total",
        "counter",
        "Config reloads",
        String::new(),
        go_float(process::RELOADS.load(Ordering::Relaxed) as f64),
    );
    out.sample(
        "traefik_config_last_reload_success",
        "gauge",
        "Last config reload success",
        String::new(),
        go_float(process::LAST_SUCCESS_SECS.load(Ordering::Relaxed) as f64),
    );
    for (ep, n) in &c.open_connections {
        let labels = label_set(vec![("entrypoint", ep.to_string()), ("protocol", "TCP".into())]);
        out.sample(
            "traefik_open_connections",
            "gauge",
            "How many open connections exist, by entryPoint and protocol",
            labels,
            go_float(*n as f64),
        );
    }
    if config.add_entry_points_labels {
        for (ep, series) in sorted(&c.entrypoints) {
            let scope = Scope {
                prefix: "traefik_entrypoint_",
                helps: EP_HELPS,
                owner: vec![("entrypoint", std::borrow::Cow::Borrowed(ep))],
            };
            render_scope(&mut out, config, &scope, series);
        }
    }
    if config.add_entry_points_labels {
        for (ep, counts) in sorted(&c.entrypoints_tls) {
            let owner = vec![("entrypoint", ep.to_string())];
            render_tls(&mut out, "traefik_entrypoint_requests_tls_total", TLS_HELPS[0], &owner, counts);
        }
    }
    if config.add_routers_labels {
        for (router, by_service) in sorted(&c.routers_tls) {
            for (service, counts) in sorted(by_service) {
                let owner = vec![
                    ("router", qualified(router).into_owned()),
                    ("service", qualified(service).into_owned()),
                ];
                render_tls(&mut out, "traefik_router_requests_tls_total", TLS_HELPS[1], &owner, counts);
            }
        }
    }
    if config.add_services_labels {
        for (service, counts) in sorted(&c.services_tls) {
            let owner = vec![("service", qualified(service).into_owned())];
            render_tls(&mut out, "traefik_service_requests_tls_total", TLS_HELPS[2], &owner, counts);
        }
    }
    if config.add_routers_labels {
        for (router, by_service) in sorted(&c.routers) {
            for (service, series) in sorted(by_service) {
                let scope = Scope {
                    prefix: "traefik_router_",
                    helps: ROUTER_HELPS,
                    owner: vec![("router", qualified(router)), ("service", qualified(service))],
                };
                render_scope(&mut out, config, &scope, series);
            }
        }
    }
    if config.add_services_labels {
        for (service, series) in sorted(&c.services) {
            let scope = Scope {
                prefix: "traefik_service_",
                helps: SERVICE_HELPS,
                owner: vec![("service", qualified(service))],
            };
            render_scope(&mut out, config, &scope, series);
        }
        for (service, n) in sorted(&c.retries) {
            out.sample(
                "traefik_service_retries_total",
                "counter",
                "How many request retries happened on a service.",
                label_set(vec![("service", qualified(service).into_owned())]),
                go_float(*n as f64),
            );
        }
        for (service, url, up) in &gauges.server_up {
            let labels = label_set(vec![("service", qualified(service).into_owned()), ("url", url.clone())]);
            out.sample(
                "traefik_service_server_up",
                "gauge",
                "service server is up, described by gauge value of 0 or 1.",
                labels,
                if *up { "1" } else { "0" }.into(),
            );
        }
    }
    for (cn, serial, sans, not_after) in &gauges.certs {
        let labels = label_set(vec![("cn", cn.clone()), ("sans", sans.clone()), ("serial", serial.clone())]);
        out.sample(
            "traefik_tls_certs_not_after",
            "gauge",
            "Certificate expiration timestamp",
            labels,
            go_float(*not_after as f64),
        );
    }
    for (w, n) in &c.worker_requests {
        out.sample(
            "weir_worker_requests_total",
            "counter",
            "Requests served by each data plane worker.",
            label_set(vec![("worker", w.to_string())]),
            go_float(*n as f64),
        );
    }
    for (w, n) in &c.worker_connections {
        out.sample(
            "weir_worker_open_connections",
            "gauge",
            "Open connections of each data plane worker.",
            label_set(vec![("worker", w.to_string())]),
            go_float(*n as f64),
        );
    }
    out.sample(
        "weir_snapshot_generation",
        "gauge",
        "Generation of the snapshot the data plane serves.",
        String::new(),
        go_float(process::GENERATION.load(Ordering::Relaxed) as f64),
    );
    out.sample(
        "weir_snapshot_apply_seconds",
        "gauge",
        "How long applying the last snapshot took (decode, build, hand to workers).",
        String::new(),
        go_float(process::APPLY_MICROS.load(Ordering::Relaxed) as f64 / 1e6),
    );
    out.finish()
}
