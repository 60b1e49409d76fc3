//! `dashboard@internal`: the web UI, plain HTML, CSS and JavaScript checked in under
//! `assets/` and embedded at build time (no network, no bundler). The page reads the API at
//! `../api/` relative to itself, so it works under any `--api.basePath`. Sans-IO.

use super::api::Reply;

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/app.css");

/// Traefik's dashboard handler header: frames only from the dashboard's own origin.
const CSP: &str = "frame-src 'self' https://traefik.io https://*.traefik.io;";

/// Answers a dashboard request; `path` is what is left after `/dashboard` was stripped (or the
/// whole path when a user's router sent it here without stripping).
pub fn respond(method: &str, path: &str) -> Reply {
    if method != "GET" && method != "HEAD" {
        return Reply { status: 405, headers: vec![], body: Vec::new() };
    }
    let file = path.rsplit('/').next().unwrap_or("");
    let (body, content_type) = match file {
        "" | "index.html" => (INDEX, "text/html; charset=utf-8"),
        "app.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "app.css" => (STYLE, "text/css; charset=utf-8"),
        _ => return Reply::not_found(),
    };
    Reply {
        status: 200,
        headers: vec![("content-type", content_type.into()), ("content-security-policy", CSP.into())],
        body: body.as_bytes().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files() {
        let cases = [
            ("GET", "/", 200, Some("text/html; charset=utf-8")),
            ("GET", "", 200, Some("text/html; charset=utf-8")),
            ("GET", "/dashboard/", 200, Some("text/html; charset=utf-8")),
            ("HEAD", "/app.js", 200, Some("text/javascript; charset=utf-8")),
            ("GET", "/app.css", 200, Some("text/css; charset=utf-8")),
            ("GET", "/nope.png", 404, None),
            ("POST", "/", 405, None),
        ];
        for (method, path, status, ct) in cases {
            let r = respond(method, path);
            assert_eq!(r.status, status, "{method} {path}");
            let got = r.headers.iter().find(|(k, _)| *k == "content-type").map(|(_, v)| v.as_str());
            if status == 200 {
                assert_eq!(got, ct, "{method} {path}");
                assert!(!r.body.is_empty());
            }
        }
    }

    #[test]
    fn page_links_its_assets_relatively() {
        assert!(INDEX.contains("src=\"app.js\""));
        assert!(INDEX.contains("href=\"app.css\""));
        assert!(SCRIPT.contains("../api/"));
    }
}
