//! W9 end to end: Traefik's API, ping and the internal routers through the real `weir` and
//! `weir-dataplane`, asked with curl: field names, statuses, errors of a disabled router,
//! filters, paging, 404s, the dashboard redirect, and `api@internal` behind a user's
//! IngressRoute.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use weir_e2e::{free_port, service_yaml, Weir, Whoami};

const READY: Duration = Duration::from_secs(20);

/// A curl answer: status, lower-cased headers, body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

fn curl(port: u16, method: &str, path: &str) -> Option<Answer> {
    let out = Command::new("curl")
        .args(["-s", "-S", "--max-time", "5", "-D", "-", "-X", method])
        .args(if method == "HEAD" { vec!["-I"] } else { vec![] })
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .expect("run curl");
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Some(Answer { status, headers, body: body.to_string() })
}

fn get(port: u16, path: &str) -> Answer {
    curl(port, "GET", path).unwrap_or_else(|| panic!("GET {path} failed"))
}

fn wait(port: u16, path: &str, check: impl Fn(&Answer) -> bool, weir: &Weir) -> Answer {
    let start = Instant::now();
    loop {
        if let Some(a) = curl(port, "GET", path) {
            if check(&a) {
                return a;
            }
        }
        if start.elapsed() > READY {
            panic!("{path} not ready\n--- log ---\n{}", weir.log());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

const ROUTES: &str = "\
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: shop, namespace: apps}
spec:
  entryPoints: [web]
  routes:
  - match: Host(`shop.example`)
    services: [{name: whoami, port: 80}]
    middlewares: [{name: strip}]
  - match: Host(`broken.example`) && Path(`/x`
    services: [{name: whoami, port: 80}]
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {name: strip, namespace: apps}
spec: {stripPrefix: {prefixes: [/shop]}}
";

fn names(v: &Value) -> Vec<String> {
    v.as_array().expect("array").iter().map(|o| o["name"].as_str().unwrap_or("").to_string()).collect()
}

#[test]
fn api_on_the_traefik_entrypoint() {
    let backend = Whoami::start("w");
    let admin = free_port();
    let svc = service_yaml("apps", "whoami", 80, "http", &[backend.addr]);
    let addr = format!("--entryPoints.traefik.address=127.0.0.1:{admin}");
    let weir = Weir::start(&[("svc.yaml", &svc), ("ir.yaml", ROUTES)], &[&addr, "--api.insecure", "--ping"]);
    let routers =
        wait(admin, "/api/http/routers", |a| a.status == 200 && a.body.contains("apps-shop"), &weir);

    // Routers: Traefik's names, fields and statuses; the disabled one with its error.
    assert_eq!(routers.header("content-type"), Some("application/json"));
    assert_eq!(routers.header("x-next-page"), Some("1"));
    let list = routers.json();
    let all = names(&list);
    for want in ["api@internal", "dashboard@internal", "ping@internal"] {
        assert!(all.contains(&want.to_string()), "{want} missing from {all:?}");
    }
    let shop =
        list.as_array().unwrap().iter().find(|r| r["rule"] == "Host(`shop.example`)").expect("shop router");
    let shop_name = shop["name"].as_str().unwrap().to_string();
    assert!(shop_name.starts_with("apps-shop-") && shop_name.ends_with("@kubernetescrd"), "{shop_name}");
    assert_eq!(shop["status"], "enabled");
    assert_eq!(shop["provider"], "kubernetescrd");
    assert_eq!(shop["service"], "apps-whoami-80");
    assert_eq!(shop["entryPoints"], serde_json::json!(["web"]));
    assert_eq!(shop["using"], serde_json::json!(["web"]));
    assert_eq!(shop["middlewares"], serde_json::json!(["apps-strip"]));
    let broken =
        list.as_array().unwrap().iter().find(|r| r["status"] == "disabled").expect("disabled router");
    assert_eq!(broken["rule"], "Host(`broken.example`) && Path(`/x`");
    assert!(!broken["error"].as_array().expect("error list").is_empty(), "{broken}");
    let api = list.as_array().unwrap().iter().find(|r| r["name"] == "api@internal").unwrap();
    assert_eq!(api["provider"], "internal");
    assert_eq!(api["rule"], "PathPrefix(`/api`)");
    assert_eq!(api["priority"], serde_json::json!(i64::MAX - 1));
    assert_eq!(api["entryPoints"], serde_json::json!(["traefik"]));

    // One router by name; unknown names are 404 with Traefik's message.
    let one = get(admin, &format!("/api/http/routers/{shop_name}"));
    assert_eq!(one.status, 200);
    assert_eq!(one.json()["name"], shop_name);
    let missing = get(admin, "/api/http/routers/nope@kubernetescrd");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["message"], "router not found: nope@kubernetescrd");
    assert_eq!(get(admin, "/api/http/services/nope@x").status, 404);
    assert_eq!(get(admin, "/api/http/middlewares/nope@x").status, 404);
    assert_eq!(get(admin, "/api/nothing").status, 404);

    // Filters: status, search, serviceName, middlewareName.
    let disabled = names(&get(admin, "/api/http/routers?status=disabled").json());
    assert_eq!(disabled.len(), 1, "{disabled:?}");
    let searched = names(&get(admin, "/api/http/routers?search=SHOP.example").json());
    assert_eq!(searched, vec![shop_name.clone()]);
    let by_service = names(&get(admin, "/api/http/routers?serviceName=apps-whoami-80@kubernetescrd").json());
    assert!(by_service.contains(&shop_name), "{by_service:?}");
    assert!(!by_service.iter().any(|n| n.ends_with("@internal")), "{by_service:?}");
    let by_mw = names(&get(admin, "/api/http/routers?middlewareName=apps-strip").json());
    assert_eq!(by_mw, vec![shop_name.clone()]);

    // Paging: X-Next-Page, and a page past the end is a 400.
    let p1 = get(admin, "/api/http/routers?per_page=2&page=1");
    assert_eq!(p1.json().as_array().unwrap().len(), 2);
    assert_eq!(p1.header("x-next-page"), Some("2"));
    let total = all.len();
    let last = total.div_ceil(2);
    let pl = get(admin, &format!("/api/http/routers?per_page=2&page={last}"));
    assert_eq!(pl.header("x-next-page"), Some("1"));
    let past = get(admin, &format!("/api/http/routers?per_page=2&page={}", last + 1));
    assert_eq!(past.status, 400);
    assert_eq!(get(admin, "/api/http/routers?per_page=0").status, 400);

    // Services: the load balancer with its servers UP, used by the router; internal ones.
    let services = get(admin, "/api/http/services").json();
    let snames = names(&services);
    for want in [
        "api@internal",
        "dashboard@internal",
        "noop@internal",
        "ping@internal",
        "apps-whoami-80@kubernetescrd",
    ] {
        assert!(snames.contains(&want.to_string()), "{want} missing from {snames:?}");
    }
    let lb = get(admin, "/api/http/services/apps-whoami-80@kubernetescrd").json();
    let url = format!("http://{}", backend.addr);
    assert_eq!(lb["type"], "loadbalancer");
    assert_eq!(lb["loadBalancer"]["servers"][0]["url"], url);
    assert_eq!(lb["loadBalancer"]["passHostHeader"], true);
    assert_eq!(lb["serverStatus"][&url], "UP");
    assert_eq!(lb["usedBy"], serde_json::json!([shop_name]));
    assert_eq!(lb["status"], "enabled");

    // Middlewares: type and config under Traefik's key.
    let mw = get(admin, "/api/http/middlewares/apps-strip@kubernetescrd").json();
    assert_eq!(mw["type"], "stripprefix");
    assert_eq!(mw["stripPrefix"]["prefixes"], serde_json::json!(["/shop"]));
    assert_eq!(mw["usedBy"], serde_json::json!([shop_name]));

    // Entrypoints.
    let eps = get(admin, "/api/entrypoints");
    assert_eq!(names(&eps.json()), vec!["traefik".to_string(), "web".to_string()]);
    let web = get(admin, "/api/entrypoints/web").json();
    assert_eq!(web["address"], format!("127.0.0.1:{}", weir.port));
    assert_eq!(web["http2"]["maxConcurrentStreams"], 250);
    assert_eq!(get(admin, "/api/entrypoints/nope").status, 404);

    // Overview, rawdata, version; TCP and UDP lists answer (empty here).
    let ov = get(admin, "/api/overview").json();
    assert_eq!(ov["http"]["routers"]["total"].as_u64(), Some(total as u64));
    assert_eq!(ov["http"]["routers"]["errors"], 1);
    assert!(ov["tcp"]["routers"]["total"].is_u64());
    assert!(ov["udp"]["services"]["total"].is_u64());
    assert_eq!(ov["features"]["accessLog"], false);
    let raw = get(admin, "/api/rawdata").json();
    assert!(raw["routers"][&shop_name]["rule"].is_string(), "{raw}");
    assert!(raw["routers"][&shop_name].get("name").is_none());
    assert_eq!(raw["services"]["apps-whoami-80@kubernetescrd"]["serverStatus"][&url], "UP");
    let version = get(admin, "/api/version").json();
    assert!(version["Version"].is_string() && version["startDate"].is_string(), "{version}");
    for path in [
        "/api/tcp/routers",
        "/api/tcp/services",
        "/api/tcp/middlewares",
        "/api/udp/routers",
        "/api/udp/services",
    ] {
        let a = get(admin, path);
        assert_eq!(a.status, 200, "{path}");
        assert!(a.json().is_array(), "{path}");
    }
    assert_eq!(get(admin, "/api/udp/middlewares").status, 404);
    assert_eq!(curl(admin, "POST", "/api/overview").expect("POST").status, 405);

    // Ping: GET and HEAD on the traefik entrypoint; not on web.
    let ping = get(admin, "/ping");
    assert_eq!((ping.status, ping.body.as_str()), (200, "OK"));
    assert_eq!(curl(admin, "HEAD", "/ping").expect("HEAD").status, 200);
    assert_eq!(get(weir.port, "/ping").status, 404);
    // The API is not on `web` either.
    assert_eq!(get(weir.port, "/api/overview").status, 404);

    // `/` redirects to the dashboard, which answers HTML.
    let root = get(admin, "/");
    assert_eq!(root.status, 301);
    assert_eq!(root.header("location"), Some(format!("http://127.0.0.1:{admin}/dashboard/").as_str()));
    let page = get(admin, "/dashboard/");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<title>weir dashboard</title>"));
}

#[test]
fn api_behind_an_ingressroute_and_ping_elsewhere() {
    let ir = "\
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: dash, namespace: ops}
spec:
  entryPoints: [web]
  routes:
  - match: Host(`admin.example`)
    services: [{name: api@internal, kind: TraefikService}]
";
    let weir = Weir::start(&[("ir.yaml", ir)], &["--api", "--ping.entryPoint=web"]);
    let api = weir.wait_for("admin.example", "/api/http/routers", READY, |r| r.status == 200);
    let list: Value = serde_json::from_slice(&api.body).expect("json");
    let router =
        list.as_array().unwrap().iter().find(|r| r["service"] == "api@internal").expect("user router");
    assert_eq!(router["provider"], "kubernetescrd");
    // Without --api.insecure there is no api@internal router and no traefik entrypoint.
    assert!(!names(&list).contains(&"api@internal".to_string()));
    let eps: Value =
        serde_json::from_slice(&weir.get("admin.example", "/api/entrypoints").unwrap().body).unwrap();
    assert_eq!(names(&eps), vec!["web".to_string()]);
    // Ping moved to `web`.
    let ping = weir.get("any.example", "/ping").expect("ping");
    assert_eq!((ping.status, ping.text().as_str()), (200, "OK"));
}

#[test]
fn api_service_without_api_disables_the_router() {
    let ir = "\
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: dash, namespace: ops}
spec:
  entryPoints: [web]
  routes:
  - match: Host(`admin.example`)
    services: [{name: api@internal, kind: TraefikService}]
  - match: Host(`ping.example`)
    services: [{name: ping@internal, kind: TraefikService}]
";
    let weir = Weir::start(&[("ir.yaml", ir)], &["--ping.manualRouting"]);
    let ping = weir.wait_for("ping.example", "/", READY, |r| r.status == 200);
    assert_eq!(ping.text(), "OK");
    let api = weir.get("admin.example", "/api/overview").expect("request");
    assert_eq!(api.status, 404);
    assert!(weir.log().contains("does not exist"), "{}", weir.log());
}
