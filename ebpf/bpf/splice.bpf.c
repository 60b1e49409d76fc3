// weir: in-kernel splice of TCP passthrough connections (experimental, --experimental.sockmap).
//
// Both sockets of a passthrough connection join `socks` (keyed by socket cookie) and `peers`
// maps each cookie to the other's. The stream verdict program runs on every segment a joined
// socket receives and redirects it to the egress of its peer, so bytes move between the two
// TCP connections without reaching userspace. A socket without a peer entry keeps its bytes
// (SK_PASS: they stay readable by userspace). FIN is not redirected: userspace watches for it
// and shuts the peer down once every byte has moved (see src/splice.rs).

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define MAX_SOCKETS 65536

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, MAX_SOCKETS);
	__type(key, __u64);
	__type(value, __u32);
} socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SOCKETS);
	__type(key, __u64);
	__type(value, __u64);
} peers SEC(".maps");

// Counters, per CPU: 0 = segments redirected, 1 = bytes redirected, 2 = segments passed to
// userspace (no peer), 3 = redirects the kernel refused.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline void add(__u32 which, __u64 n)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &which);
	if (c)
		*c += n;
}

// The stream parser hands each segment to the verdict whole (no message framing).
SEC("sk_skb/stream_parser")
int splice_parser(struct __sk_buff *skb)
{
	return skb->len;
}

SEC("sk_skb/stream_verdict")
int splice_verdict(struct __sk_buff *skb)
{
	__u64 cookie = bpf_get_socket_cookie(skb);
	__u64 *peer = bpf_map_lookup_elem(&peers, &cookie);
	if (!peer) {
		add(2, 1);
		return SK_PASS;
	}
	__u64 len = skb->len;
	long verdict = bpf_sk_redirect_hash(skb, &socks, peer, 0);
	if (verdict == SK_PASS) {
		add(0, 1);
		add(1, len);
	} else {
		add(3, 1);
	}
	return verdict;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
