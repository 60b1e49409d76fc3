// weir: UDP fast path (experimental, --experimental.udpFastPath). A TC classifier attached to
// the ingress of the interfaces that carry the UDP entrypoints' traffic (direct action).
//
// Userspace opens every UDP flow itself: the first datagram of a client goes through the data
// plane, which picks the backend and connects a flow socket. Then it mirrors the flow into
// `flows`, one entry per direction, keyed by the 4-tuple a packet of that direction has when
// it arrives:
//   client   -> listener     rewritten to  flow socket -> backend
//   backend  -> flow socket  rewritten to  listener    -> client
// On a hit the program rewrites the IPv4 addresses and UDP ports, fixes the IP and UDP
// checksums (a UDP checksum of 0, "none", stays 0), and either lets the stack go on (the new
// destination is local: it delivers the datagram to the backend's or the client's socket) or
// sends it out of the interface userspace chose (bpf_redirect_neigh: route and neighbour
// looked up by the kernel). On a miss, or for anything it does not handle (IPv6, IP options,
// fragments), the packet is left untouched for the stack and weir's userspace path, which
// keeps working for every flow: the flow socket stays open while the flow is mirrored.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

// Two entries per flow. LRU: a full map forgets the least recently used direction, which then
// simply falls back to userspace.
#define MAX_ENTRIES 131072

// Network byte order throughout, as in the packet. 12 bytes, no padding.
struct flow_key {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
};

struct flow_rewrite {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	// Where the rewritten packet goes: 0 = continue in this stack (local destination), else
	// the interface to send it out of.
	__u32 ifindex;
	// Written by the program on every hit (bpf_ktime_get_ns, CLOCK_MONOTONIC): userspace reads
	// it before ending a flow it saw idle.
	__u64 last_seen_ns;
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, struct flow_key);
	__type(value, struct flow_rewrite);
} flows SEC(".maps");

// Counters, per CPU: 0 = datagrams rewritten (forwarded in the kernel), 1 = their bytes,
// 2 = datagrams sent out of another interface (redirects), 3 = datagrams dropped (a rewrite or
// a redirect failed), 4 = IPv4 UDP datagrams without an entry (left to userspace).
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 5);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline void add(__u32 which, __u64 n)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &which);
	if (c)
		*c += n;
}

#define IP_OFF ETH_HLEN
#define UDP_OFF (ETH_HLEN + sizeof(struct iphdr))
#define IP_CSUM_OFF (IP_OFF + offsetof(struct iphdr, check))
#define IP_SRC_OFF (IP_OFF + offsetof(struct iphdr, saddr))
#define UDP_CSUM_OFF (UDP_OFF + offsetof(struct udphdr, check))
#define UDP_SPORT_OFF (UDP_OFF + offsetof(struct udphdr, source))
// More fragments, or a fragment offset: only whole datagrams are rewritten.
#define IP_FRAGMENTED 0x3fff

// Rewrites one 4-byte address, fixing the IP checksum and the UDP one (the address is in
// the UDP pseudo-header). BPF_F_MARK_MANGLED_0 keeps a UDP checksum of 0 at 0 and turns a
// computed 0 into 0xffff, as UDP requires.
static __always_inline int set_addr(struct __sk_buff *skb, __u32 off, __u32 old, __u32 new)
{
	if (old == new)
		return 0;
	if (bpf_l4_csum_replace(skb, UDP_CSUM_OFF, old, new, BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0 | 4))
		return -1;
	if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, old, new, 4))
		return -1;
	return bpf_skb_store_bytes(skb, off, &new, 4, 0);
}

static __always_inline int set_port(struct __sk_buff *skb, __u32 off, __u16 old, __u16 new)
{
	if (old == new)
		return 0;
	if (bpf_l4_csum_replace(skb, UDP_CSUM_OFF, old, new, BPF_F_MARK_MANGLED_0 | 2))
		return -1;
	return bpf_skb_store_bytes(skb, off, &new, 2, 0);
}

// Ethernet-framed devices only (veth, physical NICs, loopback): at TC ingress the data starts
// at the MAC header.
SEC("classifier")
int udp_fast(struct __sk_buff *skb)
{
	// IPv6 and everything else: the stack and userspace.
	if (skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	if (data + UDP_OFF + sizeof(struct udphdr) > end) {
		// Headers not in the linear part: pull them in (rare; fails on runt packets).
		if (bpf_skb_pull_data(skb, UDP_OFF + sizeof(struct udphdr)))
			return TC_ACT_OK;
		data = (void *)(long)skb->data;
		end = (void *)(long)skb->data_end;
		if (data + UDP_OFF + sizeof(struct udphdr) > end)
			return TC_ACT_OK;
	}
	struct iphdr *ip = data + IP_OFF;
	if (ip->protocol != IPPROTO_UDP || ip->ihl != 5 || (ip->frag_off & bpf_htons(IP_FRAGMENTED)))
		return TC_ACT_OK;
	struct udphdr *udp = data + UDP_OFF;
	struct flow_key key = {
		.saddr = ip->saddr,
		.daddr = ip->daddr,
		.sport = udp->source,
		.dport = udp->dest,
	};
	struct flow_rewrite *to = bpf_map_lookup_elem(&flows, &key);
	if (!to) {
		add(4, 1);
		return TC_ACT_OK;
	}
	// Copies: the helpers below invalidate packet pointers, and userspace may rewrite the
	// entry meanwhile.
	__u32 saddr = to->saddr, daddr = to->daddr, ifindex = to->ifindex;
	__u16 sport = to->sport, dport = to->dport;
	__u64 len = skb->len;
	if (set_addr(skb, IP_SRC_OFF, key.saddr, saddr) || set_addr(skb, IP_SRC_OFF + 4, key.daddr, daddr) ||
	    set_port(skb, UDP_SPORT_OFF, key.sport, sport) || set_port(skb, UDP_SPORT_OFF + 2, key.dport, dport)) {
		// Half rewritten: the packet cannot go on.
		add(3, 1);
		return TC_ACT_SHOT;
	}
	to->last_seen_ns = bpf_ktime_get_ns();
	__sync_fetch_and_add(&to->packets, 1);
	__sync_fetch_and_add(&to->bytes, len);
	add(0, 1);
	add(1, len);
	if (ifindex == 0)
		return TC_ACT_OK;
	long verdict = bpf_redirect_neigh(ifindex, NULL, 0, 0);
	if (verdict == TC_ACT_REDIRECT)
		add(2, 1);
	else
		add(3, 1);
	return verdict;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
