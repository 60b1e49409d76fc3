//! Highest random weight (rendezvous hashing; Traefik's `hrw` strategy): each server scores
//! `weight / -ln(fnv1a64(clientIP + serverURL) / 2^64)` and the highest wins, so a client IP
//! sticks to one server while the set is unchanged, and only the clients of a server that
//! leaves move. The same formula as Traefik, so the same client reaches the same URL.

/// FNV-1a, 64 bits (Go's `hash/fnv` `New64a`).
pub fn fnv1a64(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// Traefik's `getNodeScore`.
pub fn score(key: &str, name: &str, weight: u32) -> f64 {
    let sum = fnv1a64(&[key.as_bytes(), name.as_bytes()]);
    let unit = sum as f64 / 18_446_744_073_709_551_616.0;
    (1.0 / -unit.ln()) * f64::from(weight)
}

/// The candidate `(index, server URL, weight)` with the highest score for `key` (the first on
/// a tie; none when every score is 0, as Traefik's strict `>` against 0).
pub fn pick<'a>(key: &str, candidates: impl IntoIterator<Item = (usize, &'a str, u32)>) -> Option<usize> {
    let mut best = None;
    let mut best_score = 0.0;
    for (i, name, weight) in candidates {
        let s = score(key, name, weight);
        if s > best_score {
            best = Some(i);
            best_score = s;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_go() {
        // Go: fnv.New64a() over "" and "a".
        assert_eq!(fnv1a64(&[b""]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(&[b"a"]), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(&[b"fo", b"obar"]), fnv1a64(&[b"foobar"]));
    }

    #[test]
    fn clients_stick_and_weights_share() {
        let urls = ["http://10.0.0.1:80", "http://10.0.0.2:80", "http://10.0.0.3:80"];
        let servers =
            |w: [u32; 3]| urls.iter().enumerate().map(move |(i, u)| (i, *u, w[i])).collect::<Vec<_>>();
        let mut counts = [0u32; 3];
        let mut moved = 0;
        for c in 0..9_000u32 {
            let ip = format!("10.{}.{}.{}", c >> 16, (c >> 8) & 255, c & 255);
            let first = pick(&ip, servers([1, 1, 1])).expect("a server");
            assert_eq!(pick(&ip, servers([1, 1, 1])), Some(first), "the same client, the same server");
            counts[first] += 1;
            // Server 2 leaves: only its clients move.
            let without = pick(&ip, servers([1, 1, 1]).into_iter().filter(|s| s.0 != 2)).expect("a server");
            if first != 2 {
                assert_eq!(without, first, "a client of a remaining server stays");
            } else {
                moved += 1;
            }
        }
        for c in counts {
            // FNV over near-identical keys is not perfectly uniform (nor is it in Traefik).
            assert!((2_400..3_600).contains(&c), "even weights share evenly: {counts:?}");
        }
        assert_eq!(moved, counts[2]);
        let mut heavy = 0;
        for c in 0..6_000u32 {
            if pick(&format!("192.168.{}.{}", c >> 8, c & 255), servers([3, 1, 0])) == Some(0) {
                heavy += 1;
            }
        }
        // Weight 3 against 1 (the weight-0 server never wins): 3/4 of the clients.
        assert!((4_200..4_800).contains(&heavy), "{heavy}");
        assert_eq!(pick("x", servers([0, 0, 0])), None);
    }
}
