use super::*;
use serde_json::json;

struct NoLive;
impl Live for NoLive {
    fn servers(&self, _: &str) -> Option<Vec<(String, u32, bool)>> {
        None
    }
}

struct OneDown;
impl Live for OneDown {
    fn servers(&self, name: &str) -> Option<Vec<(String, u32, bool)>> {
        (name == "apps-web-80")
            .then(|| vec![("http://10.0.0.1:80".into(), 1, true), ("http://10.0.0.2:80".into(), 3, false)])
    }
}

fn model() -> Model {
    let router = |name: &str, rule: &str, service: &str, status: &str, mws: &[&str]| {
        json!({"name": name, "rule": rule, "service": service, "status": status, "middlewares": mws,
               "entryPoints": ["web"], "provider": name.split('@').nth(1).unwrap_or("")})
    };
    let m = json!({
        "routers": {
            "a@kubernetescrd": router("a@kubernetescrd", "Host(`a.example`)", "apps-web-80", "enabled", &["apps-strip"]),
            "b@kubernetescrd": router("b@kubernetescrd", "Host(`b.example`)", "apps-other-80", "disabled", &[]),
            "c@kubernetescrd": router("c@kubernetescrd", "Path(`/c`)", "apps-web-80", "warning", &[]),
            "api@internal": router("api@internal", "PathPrefix(`/api`)", "api@internal", "enabled", &[]),
        },
        "services": {
            "apps-web-80@kubernetescrd": {"name": "apps-web-80@kubernetescrd", "status": "enabled", "type": "loadbalancer",
                "provider": "kubernetescrd",
                "loadBalancer": {"servers": [{"url": "http://10.0.0.1:80"}], "passHostHeader": true},
                "serverStatus": {"http://10.0.0.1:80": "UP"}},
            "noop@internal": {"name": "noop@internal", "status": "enabled", "provider": "internal"},
        },
        "middlewares": {},
        "entryPoints": {"web": {"name": "web", "address": ":80"}, "traefik": {"name": "traefik", "address": ":8080"}},
        "features": {"tracing": "", "metrics": "", "accessLog": false, "hub": false},
        "providers": ["KubernetesCRD"],
    });
    Model::parse(&m.to_string())
}

fn body(r: &Reply) -> Value {
    serde_json::from_slice(&r.body).expect("json body")
}

fn names(r: &Reply) -> Vec<String> {
    body(r).as_array().expect("array").iter().map(|v| v["name"].as_str().unwrap_or("").to_string()).collect()
}

fn header<'a>(r: &'a Reply, name: &str) -> Option<&'a str> {
    r.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
}

#[test]
fn router_lists() {
    let m = model();
    let cases: [(&str, &str, &[&str]); 12] = [
        ("all, by name", "", &["a@kubernetescrd", "api@internal", "b@kubernetescrd", "c@kubernetescrd"]),
        ("status", "status=disabled", &["b@kubernetescrd"]),
        ("status is case-insensitive", "status=WARNING", &["c@kubernetescrd"]),
        ("search in rule", "search=B.EXAMPLE", &["b@kubernetescrd"]),
        ("search in name", "search=api", &["api@internal"]),
        (
            "service, qualified filter on unqualified",
            "serviceName=apps-web-80@kubernetescrd",
            &["a@kubernetescrd", "c@kubernetescrd"],
        ),
        ("service, qualified on both", "serviceName=api@internal", &["api@internal"]),
        ("middleware", "middlewareName=apps-strip", &["a@kubernetescrd"]),
        (
            "descending",
            "direction=desc",
            &["c@kubernetescrd", "b@kubernetescrd", "api@internal", "a@kubernetescrd"],
        ),
        (
            "by status",
            "sortBy=status",
            &["b@kubernetescrd", "a@kubernetescrd", "api@internal", "c@kubernetescrd"],
        ),
        (
            "by rule",
            "sortBy=rule",
            &["a@kubernetescrd", "b@kubernetescrd", "c@kubernetescrd", "api@internal"],
        ),
        (
            "empty values are no filter",
            "search=&status=",
            &["a@kubernetescrd", "api@internal", "b@kubernetescrd", "c@kubernetescrd"],
        ),
    ];
    for (name, query, want) in cases {
        let r = respond(&m, &NoLive, "GET", "/api/http/routers", Some(query), "t");
        assert_eq!(r.status, 200, "{name}");
        assert_eq!(names(&r), want, "{name}");
    }
}

#[test]
fn paging() {
    let m = model();
    let cases: [(&str, u16, Option<&str>, usize); 7] = [
        ("", 200, Some("1"), 4),
        ("per_page=3", 200, Some("2"), 3),
        ("per_page=3&page=2", 200, Some("1"), 1),
        ("per_page=2&page=2", 200, Some("1"), 2),
        ("per_page=2&page=3", 400, None, 0),
        ("per_page=0", 400, None, 0),
        ("page=x", 400, None, 0),
    ];
    for (query, status, next, len) in cases {
        let r = respond(&m, &NoLive, "GET", "/api/http/routers", Some(query), "t");
        assert_eq!(r.status, status, "{query}");
        assert_eq!(header(&r, "x-next-page"), next, "{query}");
        if status == 200 {
            assert_eq!(body(&r).as_array().map(Vec::len), Some(len), "{query}");
        } else {
            assert!(body(&r)["message"].as_str().unwrap().starts_with("invalid request"), "{query}");
        }
    }
}

#[test]
fn routes_and_errors() {
    let m = model();
    let cases: [(&str, &str, u16, Option<&str>); 14] = [
        ("GET", "/api/http/routers/a@kubernetescrd", 200, None),
        ("GET", "/api/http/routers/a%40kubernetescrd", 200, None),
        ("GET", "/api/http/routers/zz@x", 404, Some("router not found: zz@x")),
        ("GET", "/api/http/services/zz@x", 404, Some("service not found: zz@x")),
        ("GET", "/api/http/middlewares/zz@x", 404, Some("middleware not found: zz@x")),
        ("GET", "/api/tcp/routers/zz@x", 404, Some("router not found: zz@x")),
        ("GET", "/api/entrypoints/zz", 404, Some("entry point not found: zz")),
        ("GET", "/api/entrypoints/web", 200, None),
        ("GET", "/api/udp/middlewares", 404, None),
        ("GET", "/api/nothing", 404, None),
        ("GET", "/api/tcp/routers", 200, None),
        ("POST", "/api/http/routers", 405, None),
        ("GET", "/api/overview", 200, None),
        ("GET", "/api/rawdata", 200, None),
    ];
    for (method, path, status, message) in cases {
        let r = respond(&m, &NoLive, method, path, None, "t");
        assert_eq!(r.status, status, "{method} {path}");
        if let Some(msg) = message {
            assert_eq!(body(&r)["message"], msg, "{path}");
            assert_eq!(header(&r, "content-type"), Some("text/plain; charset=utf-8"));
        }
    }
}

#[test]
fn overview_counts() {
    let r = respond(&model(), &NoLive, "GET", "/api/overview", None, "t");
    let o = body(&r);
    assert_eq!(o["http"]["routers"], json!({"total": 4, "warnings": 1, "errors": 1}));
    assert_eq!(o["http"]["services"]["total"], 2);
    assert_eq!(o["tcp"]["routers"]["total"], 0);
    assert_eq!(o["udp"]["services"]["total"], 0);
    assert!(o["udp"].get("middlewares").is_none());
    assert_eq!(o["providers"], json!(["KubernetesCRD"]));
}

#[test]
fn live_server_status() {
    let m = model();
    let r = respond(&m, &OneDown, "GET", "/api/http/services/apps-web-80@kubernetescrd", None, "t");
    let s = body(&r);
    assert_eq!(s["serverStatus"], json!({"http://10.0.0.1:80": "UP", "http://10.0.0.2:80": "DOWN"}));
    assert_eq!(
        s["loadBalancer"]["servers"],
        json!([{"url": "http://10.0.0.1:80"}, {"url": "http://10.0.0.2:80", "weight": 3}])
    );
    // rawdata: the same live state, without the list representation's name/provider/type.
    let raw = body(&respond(&m, &OneDown, "GET", "/api/rawdata", None, "t"));
    let svc = &raw["services"]["apps-web-80@kubernetescrd"];
    assert_eq!(svc["serverStatus"]["http://10.0.0.2:80"], "DOWN");
    assert!(svc.get("name").is_none() && svc.get("type").is_none());
    // Empty sections are left out, as Go's omitempty does.
    assert!(raw.get("tcpRouters").is_none() && raw.get("middlewares").is_none());
}

#[test]
fn broken_model_is_empty() {
    for text in ["", "nope", "[]"] {
        let m = Model::parse(text);
        let r = respond(&m, &NoLive, "GET", "/api/http/routers", None, "t");
        assert_eq!((r.status, body(&r)), (200, json!([])), "{text:?}");
    }
}
