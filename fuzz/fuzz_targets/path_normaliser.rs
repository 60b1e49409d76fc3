//! AFL target for the request-path normaliser the data plane routes on (the file is compiled
//! here as it is in the data plane, which this crate does not link). Invariants: no panic;
//! sanitising is idempotent and yields an absolute path without dot or empty segments; decoding
//! never un-escapes a reserved character, so it never creates a `/`.

#[path = "../../dataplane/src/http/path.rs"]
#[allow(dead_code)]
mod path;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Ok(raw) = std::str::from_utf8(data) else { return };
        let clean = path::sanitize(raw);
        assert!(clean.starts_with('/'), "{raw:?} sanitised to a relative path {clean:?}");
        assert!(!clean.contains("//"), "{raw:?} sanitised to {clean:?} with an empty segment");
        assert_eq!(path::sanitize(&clean), clean, "sanitising {raw:?} is not idempotent");
        if let Ok(decoded) = path::routing_path(&clean) {
            let slashes = |s: &str| s.bytes().filter(|&b| b == b'/').count();
            assert_eq!(slashes(&decoded), slashes(&clean), "decoding {clean:?} made a new segment");
        }
        let _ = path::valid_escapes(raw);
    });
}
