//! AFL target for the PROXY protocol decoder: any bytes give NeedMore, Absent, a header whose
//! length lies inside the input, or an error; never a panic. A decoded header re-encoded by
//! weir (v1 and v2) must decode to the same addresses.

use weir_proto::proxy_protocol::{decode, encode_v1, encode_v2, Decoded};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        if let Ok(Decoded::Header(h, len)) = decode(data) {
            assert!(len <= data.len(), "header length {len} past the input");
            if let (Some(src), Some(dst)) = (h.source, h.destination) {
                for encoded in [encode_v1(src, dst), encode_v2(src, dst)] {
                    match decode(&encoded) {
                        Ok(Decoded::Header(again, n)) => {
                            assert_eq!(n, encoded.len());
                            let same_family = src.is_ipv4() == dst.is_ipv4();
                            if same_family {
                                assert_eq!((again.source, again.destination), (Some(src), Some(dst)));
                            }
                        }
                        other => panic!("weir's own header does not decode: {other:?}"),
                    }
                }
            }
        }
    });
}
