//! htpasswd hash verification as go-http-auth's `CheckSecret` does it: `{SHA}` (base64 of
//! SHA-1), bcrypt (`$2a$`, `$2b$`, `$2x$`, `$2y$`), and otherwise MD5-crypt with the magic the
//! hash names (`$apr1$`, `$1$`). Anything else (plain text) never matches.

use base64::Engine;
use md5::{Digest as _, Md5};
use sha1::Sha1;

/// Whether `password` matches the htpasswd `hash`.
pub fn verify(password: &[u8], hash: &str) -> bool {
    if let Some(b64) = hash.strip_prefix("{SHA}") {
        let sum = base64::engine::general_purpose::STANDARD.encode(Sha1::digest(password));
        return constant_time_eq(sum.as_bytes(), b64.as_bytes());
    }
    if ["$2a$", "$2b$", "$2x$", "$2y$"].iter().any(|p| hash.starts_with(p)) {
        return bcrypt::verify(password, hash).unwrap_or(false);
    }
    let parts: Vec<&str> = hash.splitn(4, '$').collect();
    let [_, magic, salt, _] = parts.as_slice() else { return false };
    let magic = format!("${magic}$");
    constant_time_eq(hash.as_bytes(), md5_crypt(password, salt.as_bytes(), magic.as_bytes()).as_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Poul-Henning Kamp's MD5-crypt (Apache's `$apr1$` differs only by its magic).
pub fn md5_crypt(password: &[u8], salt: &[u8], magic: &[u8]) -> String {
    let mut d = Md5::new();
    d.update(password);
    d.update(magic);
    d.update(salt);
    let mut alt = Md5::new();
    alt.update(password);
    alt.update(salt);
    alt.update(password);
    let alt = alt.finalize();
    let mut left = password.len();
    while left > 0 {
        let n = left.min(16);
        d.update(&alt[..n]);
        left -= n;
    }
    let mut i = password.len();
    while i > 0 {
        if i & 1 == 1 {
            d.update([0u8]);
        } else {
            d.update(&password[..1]);
        }
        i >>= 1;
    }
    let mut fin = d.finalize();
    for i in 0..1000 {
        let mut d = Md5::new();
        if i & 1 == 1 {
            d.update(password);
        } else {
            d.update(fin);
        }
        if i % 3 != 0 {
            d.update(salt);
        }
        if i % 7 != 0 {
            d.update(password);
        }
        if i & 1 == 1 {
            d.update(fin);
        } else {
            d.update(password);
        }
        fin = d.finalize();
    }
    const ITOA64: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = String::with_capacity(magic.len() + salt.len() + 23);
    out.push_str(&String::from_utf8_lossy(magic));
    out.push_str(&String::from_utf8_lossy(salt));
    out.push('$');
    let mut push = |mut v: u32, n: usize| {
        for _ in 0..n {
            out.push(char::from(ITOA64[(v & 0x3f) as usize]));
            v >>= 6;
        }
    };
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        push(u32::from(fin[a]) << 16 | u32::from(fin[b]) << 8 | u32::from(fin[c]), 4);
    }
    push(u32::from(fin[11]), 2);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes() {
        // bcrypt at the lowest cost keeps the test fast; real files use 10+.
        let bcrypt_y =
            bcrypt::hash_with_result("secret", 4).expect("hash").format_for_version(bcrypt::Version::TwoY);
        let cases: Vec<(&str, &str, &str, bool)> = vec![
            // The examples from Traefik's BasicAuth documentation.
            ("apr1", "test", "$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/", true),
            ("apr1 second user", "test2", "$apr1$d9hr9HBB$4HxwgUir3HP4EsggP/QNo0", true),
            ("apr1 wrong", "nope", "$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/", false),
            ("sha", "password", "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", true),
            ("sha wrong", "Password", "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", false),
            ("bcrypt 2y", "secret", &bcrypt_y, true),
            ("bcrypt wrong", "secret2", &bcrypt_y, false),
            ("plain text never matches", "test", "test", false),
            ("garbage", "x", "$apr1$", false),
        ];
        for (name, password, hash, want) in cases {
            assert_eq!(verify(password.as_bytes(), hash), want, "case {name}");
        }
        let b = bcrypt_y.replacen("$2y$", "$2a$", 1);
        assert!(verify(b"secret", &b), "2a prefix");
        let b = bcrypt_y.replacen("$2y$", "$2b$", 1);
        assert!(verify(b"secret", &b), "2b prefix");
    }
}
