//! AFL target for the ClientHello peek: any bytes give NeedMore, NotTls, Malformed or a hello;
//! never a panic; a hello's SNI is lower-case, and NeedMore is only
//! answered below the peek limit.

use weir_proto::client_hello::{peek, Peek, MAX_PEEK};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        match peek(data) {
            Peek::Tls(hello) => {
                if let Some(sni) = hello.server_name {
                    // One trailing dot is removed; a name written with two keeps one.
                    assert_eq!(sni, sni.to_ascii_lowercase());
                }
            }
            Peek::NeedMore => assert!(data.len() < MAX_PEEK + 5 + 16_384 + 2048),
            Peek::NotTls | Peek::Malformed => {}
        }
    });
}
