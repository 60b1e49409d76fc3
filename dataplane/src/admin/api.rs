//! `api@internal`: Traefik's `/api` endpoints over the runtime model the control plane
//! rendered (`weir_proto::api::Api::runtime_json`). Sans-IO: a method, a path and a query in,
//! a status, headers and bytes out. Filtering (`search`, `status`, `serviceName`,
//! `middlewareName`), sorting (`sortBy`, `direction`) and paging (`page`, `per_page`,
//! `X-Next-Page`) follow Traefik's `pkg/api` handlers.

use std::collections::HashMap;

use serde_json::{Map, Value};

/// The parsed runtime model of one snapshot.
#[derive(Debug, Default)]
pub struct Model {
    /// Objects by section key (`routers`, `tcpServices`, ...), sorted by qualified name.
    sections: HashMap<&'static str, Vec<(String, Value)>>,
    /// Static entrypoints, sorted by name.
    entrypoints: Vec<(String, Value)>,
    features: Value,
    providers: Value,
}

impl Model {
    /// Parses `runtime_json`; an empty or broken model is an empty one (the API then lists
    /// nothing rather than failing the whole snapshot).
    pub fn parse(runtime_json: &str) -> Model {
        let Ok(Value::Object(mut root)) = serde_json::from_str::<Value>(runtime_json) else {
            return Model::default();
        };
        let mut sections = HashMap::new();
        for key in weir_proto::api::RUNTIME_KEYS {
            let items = match root.remove(key) {
                Some(Value::Object(m)) => m.into_iter().collect(),
                _ => Vec::new(),
            };
            sections.insert(key, items);
        }
        let entrypoints = match root.remove("entryPoints") {
            Some(Value::Object(m)) => m.into_iter().collect(),
            _ => Vec::new(),
        };
        Model {
            sections,
            entrypoints,
            features: root.remove("features").unwrap_or(Value::Null),
            providers: root.remove("providers").unwrap_or(Value::Null),
        }
    }

    fn section(&self, key: &str) -> &[(String, Value)] {
        self.sections.get(key).map_or(&[], Vec::as_slice)
    }
}

/// Live state the model cannot know: the current servers of a load balancer and their health
/// (endpoint deltas and health checks change them between snapshots).
pub trait Live {
    /// `(url, weight, up)` of each server of the HTTP load balancer named `name` (snapshot
    /// name, without `@provider`), or `None` when it is not a load balancer of the current table.
    fn servers(&self, name: &str) -> Option<Vec<(String, u32, bool)>>;
}

/// What to answer.
#[derive(Debug, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Headers besides the defaults.
    pub headers: Vec<(&'static str, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Reply {
    fn json(value: &Value) -> Reply {
        // Go's json.Encoder ends the document with a newline.
        let mut body = serde_json::to_vec(value).unwrap_or_default();
        body.push(b'\n');
        Reply { status: 200, headers: vec![("content-type", "application/json".into())], body }
    }

    /// Traefik's `writeError`: `http.Error` with a JSON message.
    fn error(status: u16, message: &str) -> Reply {
        let mut body = serde_json::to_vec(&serde_json::json!({ "message": message })).unwrap_or_default();
        body.push(b'\n');
        Reply {
            status,
            headers: vec![
                ("content-type", "text/plain; charset=utf-8".into()),
                ("x-content-type-options", "nosniff".into()),
            ],
            body,
        }
    }

    /// Go's `http.NotFound`.
    pub fn not_found() -> Reply {
        Reply {
            status: 404,
            headers: vec![
                ("content-type", "text/plain; charset=utf-8".into()),
                ("x-content-type-options", "nosniff".into()),
            ],
            body: b"404 page not found\n".to_vec(),
        }
    }

    fn method_not_allowed() -> Reply {
        Reply { status: 405, headers: vec![], body: Vec::new() }
    }
}

/// The section key and the router-ness of `/api/<scheme>/<kind>`.
fn section_key(scheme: &str, kind: &str) -> Option<&'static str> {
    Some(match (scheme, kind) {
        ("http", "routers") => "routers",
        ("http", "services") => "services",
        ("http", "middlewares") => "middlewares",
        ("tcp", "routers") => "tcpRouters",
        ("tcp", "services") => "tcpServices",
        ("tcp", "middlewares") => "tcpMiddlewares",
        ("udp", "routers") => "udpRouters",
        ("udp", "services") => "udpServices",
        _ => return None,
    })
}

/// Answers one API request. `path` is the request path with the base path removed.
pub fn respond(
    model: &Model,
    live: &dyn Live,
    method: &str,
    path: &str,
    query: Option<&str>,
    start: &str,
) -> Reply {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let query = Query::parse(query.unwrap_or(""));
    let route = match segments.as_slice() {
        ["api", "rawdata"] => Route::RawData,
        ["api", "overview"] => Route::Overview,
        ["api", "version"] => Route::Version,
        ["api", "entrypoints"] => Route::EntryPoints,
        ["api", "entrypoints", id] if !id.is_empty() => Route::EntryPoint(percent_decode(id)),
        ["api", scheme, kind] => match section_key(scheme, kind) {
            Some(key) => Route::List(key),
            None => return Reply::not_found(),
        },
        ["api", scheme, kind, id] if !id.is_empty() => match section_key(scheme, kind) {
            Some(key) => Route::One(key, percent_decode(id)),
            None => return Reply::not_found(),
        },
        _ => return Reply::not_found(),
    };
    // gorilla/mux: a path that matches with another method is a 405.
    if method != "GET" {
        return Reply::method_not_allowed();
    }
    match route {
        Route::RawData => Reply::json(&raw_data(model, live)),
        Route::Overview => Reply::json(&overview(model)),
        Route::Version => {
            let v = serde_json::json!({
                "Version": env!("CARGO_PKG_VERSION"),
                "Codename": "weir",
                "startDate": start,
            });
            let mut r = Reply::json(&v);
            r.headers = vec![("content-type", "application/json; charset=UTF-8".into())];
            r
        }
        Route::EntryPoints => {
            let items: Vec<&Value> = model.entrypoints.iter().map(|(_, v)| v).collect();
            page(&query, &items, |v| v.clone())
        }
        Route::EntryPoint(id) => match model.entrypoints.iter().find(|(n, _)| *n == id) {
            Some((_, v)) => Reply::json(v),
            None => Reply::error(404, &format!("entry point not found: {id}")),
        },
        Route::List(key) => {
            let criterion = Criterion::from(&query);
            let mut items: Vec<&Value> = model
                .section(key)
                .iter()
                .filter(|(name, v)| criterion.as_ref().is_none_or(|c| c.keep(key, name, v)))
                .map(|(_, v)| v)
                .collect();
            sort(key, &query, &mut items);
            // Live server state only for the page that is sent.
            page(&query, &items, |v| with_live(key, v, live))
        }
        Route::One(key, id) => match model.section(key).iter().find(|(n, _)| *n == id) {
            Some((_, v)) => Reply::json(&with_live(key, v, live)),
            None => Reply::error(404, &format!("{} not found: {id}", singular(key))),
        },
    }
}

enum Route {
    RawData,
    Overview,
    Version,
    EntryPoints,
    EntryPoint(String),
    List(&'static str),
    One(&'static str, String),
}

fn singular(key: &str) -> &'static str {
    match key {
        "routers" | "tcpRouters" | "udpRouters" => "router",
        "services" | "tcpServices" | "udpServices" => "service",
        _ => "middleware",
    }
}

/// An HTTP service with its load balancer's servers and `serverStatus` from the live table.
fn with_live(key: &str, v: &Value, live: &dyn Live) -> Value {
    let mut v = v.clone();
    if key != "services" {
        return v;
    }
    let Value::Object(m) = &mut v else { return v };
    if !m.contains_key("loadBalancer") {
        return v;
    }
    let name = m.get("name").and_then(Value::as_str).unwrap_or("");
    let snapshot_name = name.strip_suffix("@kubernetescrd").unwrap_or(name);
    if let Some(servers) = live.servers(snapshot_name) {
        let status: Map<String, Value> = servers
            .iter()
            .map(|(url, _, up)| (url.clone(), Value::String(if *up { "UP" } else { "DOWN" }.into())))
            .collect();
        if status.is_empty() {
            m.remove("serverStatus");
        } else {
            m.insert("serverStatus".into(), Value::Object(status));
        }
        if let Some(Value::Object(lb)) = m.get_mut("loadBalancer") {
            let old: HashMap<String, Value> = match lb.get("servers") {
                Some(Value::Array(a)) => {
                    a.iter().filter_map(|s| Some((s.get("url")?.as_str()?.to_string(), s.clone()))).collect()
                }
                _ => HashMap::new(),
            };
            let list: Vec<Value> = servers
                .iter()
                .map(|(url, weight, _)| {
                    old.get(url).cloned().unwrap_or_else(|| match weight {
                        1 => serde_json::json!({ "url": url }),
                        w => serde_json::json!({ "url": url, "weight": w }),
                    })
                })
                .collect();
            lb.insert("servers".into(), Value::Array(list));
        }
    }
    v
}

fn raw_data(model: &Model, live: &dyn Live) -> Value {
    let mut out = Map::new();
    for key in weir_proto::api::RUNTIME_KEYS {
        let items = model.section(key);
        // Go's `omitempty` drops empty maps.
        if items.is_empty() {
            continue;
        }
        let mut section = Map::new();
        for (name, v) in items {
            let mut v = with_live(key, v, live);
            if let Value::Object(m) = &mut v {
                // rawdata shows the runtime infos, without the list representation's extras.
                m.remove("name");
                m.remove("provider");
                m.remove("type");
            }
            section.insert(name.clone(), v);
        }
        out.insert(key.into(), Value::Object(section));
    }
    Value::Object(out)
}

fn overview(model: &Model) -> Value {
    let count = |key: &str| {
        let items = model.section(key);
        let with = |s: &str| {
            items.iter().filter(|(_, v)| v.get("status").and_then(Value::as_str) == Some(s)).count()
        };
        serde_json::json!({"total": items.len(), "warnings": with("warning"), "errors": with("disabled")})
    };
    let mut out = serde_json::json!({
        "http": {"routers": count("routers"), "services": count("services"), "middlewares": count("middlewares")},
        "tcp": {"routers": count("tcpRouters"), "services": count("tcpServices"), "middlewares": count("tcpMiddlewares")},
        "udp": {"routers": count("udpRouters"), "services": count("udpServices")},
        "features": model.features,
    });
    if let (Value::Object(m), Value::Array(p)) = (&mut out, &model.providers) {
        if !p.is_empty() {
            m.insert("providers".into(), Value::Array(p.clone()));
        }
    }
    out
}

/// The query parameters the API reads (first value of each, as Go's `Values.Get`).
struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    fn parse(raw: &str) -> Query {
        let pairs = raw
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (form_decode(k), form_decode(v))
            })
            .collect();
        Query { pairs }
    }

    fn get(&self, key: &str) -> &str {
        self.pairs.iter().find(|(k, _)| k == key).map_or("", |(_, v)| v.as_str())
    }
}

/// Traefik's `searchCriterion`.
struct Criterion<'a> {
    search: String,
    status: &'a str,
    service: &'a str,
    middleware: &'a str,
}

impl<'a> Criterion<'a> {
    fn from(q: &'a Query) -> Option<Criterion<'a>> {
        let c = Criterion {
            search: q.get("search").to_lowercase(),
            status: q.get("status"),
            service: q.get("serviceName"),
            middleware: q.get("middlewareName"),
        };
        (!(c.search.is_empty() && c.status.is_empty() && c.service.is_empty() && c.middleware.is_empty()))
            .then_some(c)
    }

    fn keep(&self, key: &str, name: &str, v: &Value) -> bool {
        let s = |f: &str| v.get(f).and_then(Value::as_str).unwrap_or("");
        let status_ok = self.status.is_empty() || s("status").eq_ignore_ascii_case(self.status);
        let search_in = |values: &[&str]| {
            self.search.is_empty() || values.iter().any(|x| x.to_lowercase().contains(&self.search))
        };
        match key {
            "routers" | "tcpRouters" => {
                status_ok
                    && search_in(&[s("rule"), name])
                    && self.filter_service(s("service"))
                    && self.filter_middleware(v)
            }
            "udpRouters" => status_ok && search_in(&[name]) && self.filter_service(s("service")),
            _ => status_ok && search_in(&[name]),
        }
    }

    fn filter_service(&self, name: &str) -> bool {
        if self.service.is_empty() {
            return true;
        }
        if name.contains('@') {
            return self.service == name;
        }
        self.service.split('@').next() == Some(name)
    }

    fn filter_middleware(&self, v: &Value) -> bool {
        if self.middleware.is_empty() {
            return true;
        }
        match v.get("middlewares") {
            Some(Value::Array(a)) => a.iter().any(|m| m.as_str() == Some(self.middleware)),
            _ => false,
        }
    }
}

/// Traefik's `sortRouters` / `sortServices` / `sortMiddlewares`: ties break by name.
fn sort(key: &str, q: &Query, items: &mut [&Value]) {
    let desc = q.get("direction") == "desc";
    let by = q.get("sortBy");
    let name = |v: &Value| v.get("name").and_then(Value::as_str).unwrap_or("").to_string();
    let text = |v: &Value, f: &str| v.get(f).and_then(Value::as_str).unwrap_or("").to_string();
    let router = key.ends_with("outers");
    #[derive(PartialEq, Eq, PartialOrd, Ord)]
    enum K {
        Int(i64),
        Text(String),
    }
    let field = |v: &Value| -> Option<K> {
        Some(match (router, by) {
            (true, "provider") | (false, "provider") => K::Text(text(v, "provider")),
            (_, "status") => K::Text(text(v, "status")),
            (true, "priority") => K::Int(v.get("priority").and_then(Value::as_i64).unwrap_or(0)),
            (true, "rule") => K::Text(text(v, "rule")),
            (true, "service") => K::Text(text(v, "service")),
            (true, "entryPoints") => {
                K::Int(v.get("entryPoints").and_then(Value::as_array).map_or(0, |a| a.len() as i64))
            }
            (false, "type") => K::Text(text(v, "type")),
            (false, "servers") => K::Int(
                v.pointer("/loadBalancer/servers").and_then(Value::as_array).map_or(0, |a| a.len() as i64),
            ),
            _ => return None,
        })
    };
    items.sort_by(|a, b| {
        let ord = match (field(a), field(b)) {
            (Some(x), Some(y)) => x.cmp(&y).then_with(|| name(a).cmp(&name(b))),
            _ => name(a).cmp(&name(b)),
        };
        if desc {
            ord.reverse()
        } else {
            ord
        }
    });
}

/// Traefik's `pagination`: `per_page` (default 100) and `page` (default 1), positive; a page
/// past the end is a 400; `X-Next-Page` is the next page, or 1 on the last.
fn page(q: &Query, items: &[&Value], render: impl Fn(&Value) -> Value) -> Reply {
    let int = |key: &str, default: usize| -> Result<usize, Reply> {
        let raw = q.get(key);
        if raw.is_empty() {
            return Ok(default);
        }
        match raw.parse::<i64>() {
            Ok(v) if v > 0 => Ok(v as usize),
            // Go prints the failed Atoi's zero value.
            Ok(v) => Err(Reply::error(400, &format!("invalid request: {key}: {v}"))),
            Err(_) => Err(Reply::error(400, &format!("invalid request: {key}: 0"))),
        }
    };
    let per_page = match int("per_page", 100) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let page = match int("page", 1) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let max = items.len();
    let start = (page - 1).saturating_mul(per_page);
    if start != 0 && start >= max {
        return Reply::error(400, &format!("invalid request: page: {page}, per_page: {per_page}"));
    }
    let end = start.saturating_add(per_page).min(max);
    let next = if page.saturating_mul(per_page) < max { page + 1 } else { 1 };
    let mut r = Reply::json(&Value::Array(items[start..end].iter().map(|v| render(v)).collect()));
    r.headers.push(("x-next-page", next.to_string()));
    r
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A path segment, `%XX` decoded.
fn percent_decode(s: &str) -> String {
    decode(s, false)
}

/// A query key or value, `%XX` and `+` decoded.
fn form_decode(s: &str) -> String {
    decode(s, true)
}

#[cfg(test)]
mod tests;
