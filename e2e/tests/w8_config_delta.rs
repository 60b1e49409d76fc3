//! W8 end to end: a change to a few objects among many reaches the data plane as a
//! configuration delta (routers, services and middlewares by name, `Frame::Delta`) and is
//! served exactly as a full snapshot would be: changed, added and removed routes, a middleware
//! attached, the untouched routes still served throughout; a change to another section (a
//! TLSOption) travels in the delta too; and a data plane started again gets the full snapshot.

use std::time::Duration;

use weir_e2e::{ingressroute_yaml, service_yaml, Weir, Whoami};

const READY: Duration = Duration::from_secs(20);
const CHANGE: Duration = Duration::from_secs(5);
const ROUTES: usize = 12;

fn route(i: usize, host: &str) -> String {
    ingressroute_yaml("default", &format!("r{i}"), &[(&format!("Host(`{host}`)"), None, &[("app", 80, 1)])])
}

fn count(log: &str, needle: &str) -> usize {
    log.matches(needle).count()
}

#[test]
fn changes_among_many_routes_travel_as_deltas_and_serve_the_same() {
    let be = Whoami::start("app");
    let mut files = vec![("svc.yaml".to_string(), service_yaml("default", "app", 80, "http", &[be.addr]))];
    for i in 0..ROUTES {
        files.push((format!("r{i}.yaml"), route(i, &format!("r{i}.delta.test"))));
    }
    let refs: Vec<(&str, &str)> = files.iter().map(|(n, b)| (n.as_str(), b.as_str())).collect();
    let weir = Weir::start(&refs, &[]);
    for i in 0..ROUTES {
        weir.wait_for(&format!("r{i}.delta.test"), "/", READY, |r| r.status == 200);
    }
    let deltas = |w: &Weir| count(&w.log(), "(configuration delta)");
    let before = deltas(&weir);

    // One route's host changes.
    weir.write_manifest("r3.yaml", &route(3, "moved.delta.test"));
    weir.wait_for("moved.delta.test", "/", CHANGE, |r| r.status == 200);
    weir.wait_for("r3.delta.test", "/", CHANGE, |r| r.status == 404);
    // A route is added, another removed.
    weir.write_manifest("extra.yaml", &route(99, "extra.delta.test"));
    weir.wait_for("extra.delta.test", "/", CHANGE, |r| r.status == 200);
    weir.remove_manifest("r5.yaml");
    weir.wait_for("r5.delta.test", "/", CHANGE, |r| r.status == 404);
    // A middleware appears and a route uses it.
    weir.write_manifest(
        "mw.yaml",
        "apiVersion: traefik.io/v1alpha1\nkind: Middleware\nmetadata: {name: tag, namespace: default}\n\
         spec:\n  headers:\n    customResponseHeaders: {X-Delta: delta1}\n",
    );
    weir.write_manifest(
        "r7.yaml",
        "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {name: r7, namespace: default}\n\
         spec:\n  routes:\n  - match: Host(`r7.delta.test`)\n    kind: Rule\n    middlewares: [{name: tag}]\n\
         \x20   services: [{name: app, port: 80}]\n",
    );
    weir.wait_for("r7.delta.test", "/", CHANGE, |r| r.status == 200 && r.header("x-delta") == Some("delta1"));
    // Another section: a TLSOption (travels whole in the delta's sections).
    weir.write_manifest(
        "tls.yaml",
        "apiVersion: traefik.io/v1alpha1\nkind: TLSOption\nmetadata: {name: default, namespace: default}\n\
         spec: {minVersion: VersionTLS13}\n",
    );
    std::thread::sleep(Duration::from_millis(500));
    // Every untouched route is still served.
    for i in (0..ROUTES).filter(|i| ![3, 5, 7].contains(i)) {
        let r = weir.get(&format!("r{i}.delta.test"), "/").expect("request");
        assert_eq!(r.status, 200, "r{i}");
    }
    let log = weir.log();
    let sent = count(&log, "(configuration delta)") - before;
    assert!(sent >= 4, "expected the changes to travel as configuration deltas; log:\n{log}");
    assert_eq!(count(&log, "rejected configuration delta"), 0, "log:\n{log}");
    assert!(log.contains("sections=true"), "the TLSOption change travels in a delta's sections; log:\n{log}");
}
