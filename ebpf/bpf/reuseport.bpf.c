// weir: per-core steering for one SO_REUSEPORT listener group (TCP or UDP).
//
// The kernel runs this program for every new connection (TCP) or datagram (UDP) reaching the
// group, on the CPU that received the packet. It picks the socket of the worker pinned to that
// CPU, so the connection is served where its packets already are; when no worker runs on that
// CPU (or its socket is gone) it picks one by the packet's hash among the live workers, and when
// even that fails it leaves the choice to the kernel. Userspace fills the maps (see
// src/reuseport.rs): `workers[i]` is worker i's socket, `cpu_worker[cpu]` is 1 + the index of the
// worker pinned to `cpu` (0: none), `worker_count[0]` the number of workers.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define MAX_WORKERS 256
#define MAX_CPUS 1024

struct {
	__uint(type, BPF_MAP_TYPE_REUSEPORT_SOCKARRAY);
	__uint(max_entries, MAX_WORKERS);
	__type(key, __u32);
	__type(value, __u32);
} workers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_CPUS);
	__type(key, __u32);
	__type(value, __u32);
} cpu_worker SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} worker_count SEC(".maps");

// Counters, per CPU: 0 = same-CPU worker chosen, 1 = chosen by hash, 2 = left to the kernel,
// 3 = bytes of the packets steered (TCP: the SYN's payload, UDP: the datagram).
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

static __always_inline void count(__u32 which)
{
	add(which, 1);
}

SEC("sk_reuseport")
int steer(struct sk_reuseport_md *md)
{
	add(3, md->len);
	__u32 cpu = bpf_get_smp_processor_id();
	__u32 *slot = bpf_map_lookup_elem(&cpu_worker, &cpu);
	if (slot && *slot) {
		__u32 index = *slot - 1;
		if (bpf_sk_select_reuseport(md, &workers, &index, 0) == 0) {
			count(0);
			return SK_PASS;
		}
	}
	__u32 zero = 0;
	__u32 *n = bpf_map_lookup_elem(&worker_count, &zero);
	if (n && *n) {
		__u32 index = md->hash % *n;
		if (bpf_sk_select_reuseport(md, &workers, &index, 0) == 0) {
			count(1);
			return SK_PASS;
		}
	}
	count(2);
	return SK_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
