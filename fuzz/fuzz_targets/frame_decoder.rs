//! AFL target for what the data plane reads off the control socket and out of the memfd: any
//! bytes must decode to a frame or a `FrameError`, and to a snapshot or a `SnapshotError`, never
//! a panic; a frame that decodes re-encodes to bytes that decode to the same frame.

use weir_proto::frame::Frame;
use weir_proto::snapshot::Snapshot;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        if let Ok(frame) = Frame::decode(data) {
            let again = Frame::decode(&frame.encode()).expect("a re-encoded frame decodes");
            assert_eq!(again, frame, "frame changed across encode/decode");
        }
        if let Ok(snapshot) = Snapshot::decode(data) {
            // Compared as bytes: a snapshot may hold NaN (histogram buckets), never equal to itself.
            let bytes = snapshot.encode().expect("a decoded snapshot encodes");
            let again = Snapshot::decode(&bytes).expect("a re-encoded snapshot decodes");
            assert_eq!(again.encode().expect("encodes"), bytes, "snapshot changed across encode/decode");
        }
    });
}
