// weir: in-kernel splice of TCP passthrough connections (experimental, --experimental.sockmap).
//
// Both sockets of a passthrough connection join `targets` first, then `peers` maps each cookie
// to the other's, then both join `socks` (keyed by socket cookie), the map the verdict program
// is attached to. The verdict runs on every segment a socket in `socks` receives and redirects
// it to the egress of its peer, looked up in `targets`, so bytes move between the two TCP
// connections without reaching userspace. `targets` has no program: joining it does not touch
// the socket's receive path, so by the time either socket's bytes reach the verdict its peer is
// already a valid target (with one map, bytes arriving while only the first socket had joined
// were dropped). FIN is not redirected: userspace watches for it and shuts the peer down once
// every byte has moved (see src/splice.rs).

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
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, MAX_SOCKETS);
	__type(key, __u64);
	__type(value, __u32);
} targets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SOCKETS);
	__type(key, __u64);
	__type(value, __u64);
} peers SEC(".maps");

// Counters, per CPU: 0 = segments seen, 1 = payload bytes seen, 2 = segments redirected,
// 3 = segments dropped (empty: a lone FIN, or a refused redirect), 4 = segments passed to
// userspace (no peer), 5 = of the drops, the payload segments whose redirect was refused (each
// one is bytes lost mid-stream: userspace warns when it moves), 6 = their payload bytes.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 7);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

// Payload bytes a joined socket received that did not go to its peer (the redirect was
// refused, or no peer was found), by the socket's cookie. Normal only for a pair whose other
// side was reset; anywhere else it is a gap in a stream, which userspace reports.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_SOCKETS);
	__type(key, __u64);
	__type(value, __u64);
} lost SEC(".maps");

// Payload bytes handed to a redirect, by the receiving socket's cookie. Userspace checks them
// against what TCP received (more would mean the kernel handed the verdict bytes twice) and
// against what reached the peer's send queue (more there would mean a segment sent twice).
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SOCKETS);
	__type(key, __u64);
	__type(value, __u64);
} moved SEC(".maps");

static __always_inline void add_to(void *map, __u64 cookie, __u64 len)
{
	__u64 *n = bpf_map_lookup_elem(map, &cookie);
	if (!n) {
		if (bpf_map_update_elem(map, &cookie, &len, BPF_NOEXIST) == 0)
			return;
		// Created meanwhile (a socket's segments are handed over one at a time, but the
		// map is shared).
		n = bpf_map_lookup_elem(map, &cookie);
		if (!n)
			return;
	}
	__sync_fetch_and_add(n, len);
}

static __always_inline void add(__u32 which, __u64 n)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &which);
	if (c)
		*c += n;
}

// No stream parser: the kernel hands the verdict whole queued segments (tcp_read_skb). A
// segment userspace has read part of would go whole, its read bytes included, so userspace
// reads the receive queue to its end (a short read) before joining (see src/splice.rs).
SEC("sk_skb/stream_verdict")
int splice_verdict(struct __sk_buff *skb)
{
	__u64 len = skb->len;
	add(0, 1);
	add(1, len);
	// The segment carrying a lone FIN reaches the verdict with no payload. Redirected, it
	// would make the peer's egress send zero bytes, which the kernel takes for a broken pipe
	// (EPIPE on the peer). The FIN itself is already recorded on this socket; userspace
	// propagates it.
	if (len == 0) {
		add(3, 1);
		return SK_DROP;
	}
	__u64 cookie = bpf_get_socket_cookie(skb);
	__u64 *found = bpf_map_lookup_elem(&peers, &cookie);
	if (!found) {
		add(4, 1);
		add_to(&lost, cookie, len);
		return SK_PASS;
	}
	// Copied at once: the element behind the pointer belongs to the map, and userspace keeps
	// a deleted pair's entries for a second before deleting them (see src/splice.rs).
	__u64 peer = *found;
	long verdict = bpf_sk_redirect_hash(skb, &targets, &peer, 0);
	if (verdict == SK_PASS) {
		add(2, 1);
		add_to(&moved, cookie, len);
	} else {
		add(3, 1);
		add(5, 1);
		add(6, len);
		add_to(&lost, cookie, len);
	}
	return verdict;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
