//! The embedded BPF objects (`None` when this build has none).

#[cfg(weir_bpf_objects)]
pub static REUSEPORT: Option<&[u8]> =
    Some(aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/reuseport.bpf.o")));
#[cfg(not(weir_bpf_objects))]
pub static REUSEPORT: Option<&[u8]> = None;

#[cfg(weir_bpf_objects)]
pub static SPLICE: Option<&[u8]> =
    Some(aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/splice.bpf.o")));
#[cfg(not(weir_bpf_objects))]
pub static SPLICE: Option<&[u8]> = None;

#[cfg(weir_bpf_objects)]
pub static UDP_FAST: Option<&[u8]> =
    Some(aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/udp_fast.bpf.o")));
#[cfg(not(weir_bpf_objects))]
pub static UDP_FAST: Option<&[u8]> = None;
