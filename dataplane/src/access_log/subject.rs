//! `TLSClientSubject`: the client certificate's subject as Go's `pkix.Name.String()` writes it
//! (Traefik logs exactly that): the standard attributes in Go's fixed order (C, ST, L, STREET,
//! POSTALCODE, O, OU, CN, SERIALNUMBER; all values of one type form one `+`-joined RDN), other
//! attributes as `OID=#<hex DER>`, the whole sequence written last RDN first, comma-joined,
//! with RFC 4514 escaping.

use std::fmt::Write as _;

use x509_parser::prelude::{FromDer, X509Certificate};

/// Go's standard attributes: (OID, short name), in `ToRDNSequence` order.
const STANDARD: [(&str, &str); 9] = [
    ("2.5.4.6", "C"),
    ("2.5.4.8", "ST"),
    ("2.5.4.7", "L"),
    ("2.5.4.9", "STREET"),
    ("2.5.4.17", "POSTALCODE"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.3", "CN"),
    ("2.5.4.5", "SERIALNUMBER"),
];

/// One attribute: type and value as Go would print it.
enum Atv {
    Named(&'static str, String),
    /// Unknown type: `OID=#hex` of the value re-encoded as Go's `asn1.Marshal(string)` does.
    Raw(String, String),
}

/// The subject of a DER certificate; `None` when it does not parse.
pub fn subject(der: &[u8]) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let mut by_type: Vec<Vec<String>> = vec![Vec::new(); STANDARD.len()];
    let mut others: Vec<Vec<Atv>> = Vec::new();
    for rdn in cert.subject().iter() {
        for atv in rdn.iter() {
            let oid = atv.attr_type().to_id_string();
            let value = atv
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|_| String::from_utf8_lossy(atv.attr_value().data).into_owned());
            match STANDARD.iter().position(|(o, _)| *o == oid) {
                Some(i) => by_type[i].push(value),
                None => others.push(vec![Atv::Raw(oid, marshal_string_hex(&value))]),
            }
        }
    }
    // Go keeps only the last CN and the last serial number.
    for i in [7, 8] {
        if by_type[i].len() > 1 {
            let last = by_type[i].pop().unwrap_or_default();
            by_type[i] = vec![last];
        }
    }
    let mut rdns = others;
    for (i, values) in by_type.into_iter().enumerate() {
        if !values.is_empty() {
            rdns.push(values.into_iter().map(|v| Atv::Named(STANDARD[i].1, v)).collect());
        }
    }
    let mut s = String::new();
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            s.push(',');
        }
        for (j, atv) in rdn.iter().enumerate() {
            if j > 0 {
                s.push('+');
            }
            match atv {
                Atv::Named(name, value) => {
                    s.push_str(name);
                    s.push('=');
                    escape(value, &mut s);
                }
                Atv::Raw(oid, hex) => {
                    let _ = write!(s, "{oid}=#{hex}");
                }
            }
        }
    }
    Some(s)
}

/// RFC 4514 escaping as Go applies it.
fn escape(v: &str, out: &mut String) {
    let last = v.chars().count().saturating_sub(1);
    for (k, c) in v.chars().enumerate() {
        let escaped = match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' => true,
            ' ' => k == 0 || k == last,
            '#' => k == 0,
            _ => false,
        };
        if escaped {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Hex of Go's `asn1.Marshal(value)` for a string: PrintableString when every byte is in its
/// alphabet, else UTF8String.
fn marshal_string_hex(v: &str) -> String {
    let printable = v.bytes().all(|b| b.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(&b));
    let mut der = vec![if printable { 0x13 } else { 0x0c }];
    let len = v.len();
    if len < 0x80 {
        der.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        der.push(0x80 | bytes.len() as u8);
        der.extend(bytes);
    }
    der.extend_from_slice(v.as_bytes());
    der.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(parts: &[(rcgen::DnType, &str)]) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        for (t, v) in parts {
            params.distinguished_name.push(t.clone(), *v);
        }
        params.self_signed(&key).expect("cert").der().to_vec()
    }

    /// (case, subject attributes in certificate order, Go's string).
    type Case = (&'static str, Vec<(rcgen::DnType, &'static str)>, &'static str);

    #[test]
    fn go_order_and_escaping() {
        use rcgen::DnType::*;
        let cases: [Case; 3] = [
            ("cn only", vec![(CommonName, "client")], "CN=client"),
            (
                "reversed standard order",
                vec![(CommonName, "client"), (OrganizationName, "Acme, Inc"), (CountryName, "FR")],
                "CN=client,O=Acme\\, Inc,C=FR",
            ),
            (
                "unknown attribute last",
                vec![(CommonName, "c"), (CustomDnType(vec![1, 2, 3, 4]), "ab")],
                "CN=c,1.2.3.4=#13026162",
            ),
        ];
        for (name, parts, want) in cases {
            assert_eq!(subject(&cert(&parts)).as_deref(), Some(want), "case {name}");
        }
        assert_eq!(subject(b"junk"), None);
    }
}
