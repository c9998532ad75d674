#!/usr/bin/env python3
"""CPU buckets of a node profile (BENCHMARKS.md, "Where a member copy's CPU goes").

Input: `perf script -F tid,comm,ip,sym,dso --no-inline` of samples with call chains (dwarf).
Usage: perf-buckets.py SCRIPT_OUTPUT US_PER_STORE
Each sample gets one bucket: the first "strong" bucket (a library whose whole cost, its own
allocations included, would go with it) matching ANY frame of its chain, else the first
"weak" bucket matching a frame walking from the leaf up (so malloc under h2 is allocation,
a syscall under tokio is kernel). µs per store = share of samples × US_PER_STORE (the
benchmark's own /proc figure for the phase). Roles: who the sample worked for, from the
nearest marker frame; samples without one (connection tasks reading/writing the sockets,
runtime) are "unattributed".
"""
import collections, re, sys

STRONG = [
    ('Ed25519 (sign/verify/key conversion)', r'curve25519_dalek|ed25519_dalek|umbra_crypto::sign|umbra_crypto::keys|auth::account_key|Identity::sign'),
    ('BLAKE2/SHA hashing', r'blake2|sha2::|umbra_crypto::hash|Sha256|Sha512|sha256|sha512'),
    ('base64/hex', r'base64|hex::|is_base64|\bb64\b'),
    ('JSON (serde_json, Value clones)', r'serde_json|BTreeMap<K,V,A> as core::clone::Clone'),
    ('RocksDB', r'rocksdb|librocksdb'),
    ('umbra-store other (writer loop, handoff)', r'umbra_store'),
    ('TLS record crypto (AES-GCM/ChaCha)', r'aes_gcm|aes_hw|gcm_|chacha|poly1305|aws_lc'),
]
WEAK = [
    ('kernel: network send/recv', r'tcp_|sock_|__sys_sendto|__sys_recvfrom|do_writev|ip_|__dev_queue|net_rx|loopback|skb|__x64_sys_write|__x64_sys_read|__x64_sys_sendmsg|__x64_sys_recvfrom|__x64_sys_writev|inet_'),
    ('kernel: epoll/futex/scheduling', r'epoll|futex|schedule|finish_task_switch|__x64_sys_sched|ep_poll|try_to_wake_up|pick_next'),
    ('allocation (malloc/free)', r'malloc|_int_free|unlink_chunk|cfree|__rust_alloc|__rust_dealloc|__rust_realloc|realloc|sysmalloc|__libc_free|tcache'),
    ('TLS other (rustls)', r'rustls'),
    ('protobuf (prost)', r'prost'),
    ('HTTP/2 (h2, hyper)', r'\bh2::|hyper::|hyper_util'),
    ('tonic/tower (gRPC layer)', r'tonic|tower'),
    ('tokio runtime', r'tokio::|mio::'),
    ('kernel: other', r'\[kernel'),
    ('memcpy/memset', r'memmove|memcpy|memset'),
    ('node/replica logic (umbra_*)', r'umbra_'),
]
ROLES = [
    ('member: serving a forwarded copy', r'ForwardHandler>::handle_forwarded|membership::Forwarder|peer_server::PeerServer|umbra_replica::server::PeerService'),
    ('entry: forwarding to members', r'Replicator>::replicate|Replica::replicate|umbra_replica::client|PeerClient|peer_client|member_results_json|forward_outcome|MemberResult'),
    ('entry: client request (HTTP/JSON-RPC)', r'HttpApp|handle_rpc|umbra_node::http'),
]
STRONG = [(n, re.compile(r)) for n, r in STRONG]
WEAK = [(n, re.compile(r)) for n, r in WEAK]
ROLES = [(n, re.compile(r)) for n, r in ROLES]


def samples(path):
    comm, frames = None, []
    for line in open(path, errors='replace'):
        if not line.strip():
            if comm is not None:
                yield comm, frames
            comm, frames = None, []
        elif not line[0].isspace():
            comm = line.split()[0]
        else:
            m = re.match(r'([0-9a-f]+) (.*) \((.*)\)$', line.strip())
            if m:
                frames.append((m.group(2), m.group(3)))
    if comm is not None:
        yield comm, frames


def bucket(frames):
    for name, r in STRONG:
        if any(r.search(s) or r.search(d) for s, d in frames):
            return name
    for s, d in frames:
        for name, r in WEAK:
            if r.search(s) or r.search(d):
                return name
    return 'other (std, libc misc, unresolved)'


def role(comm, frames):
    if comm.startswith('umbra-store'):
        return 'store writer thread'
    if comm.startswith('rocksdb'):
        return 'rocksdb background'
    for s, _ in frames:
        for name, r in ROLES:
            if r.search(s):
                return name
    return 'unattributed (connection tasks, I/O, runtime)'


def main():
    path, us = sys.argv[1], float(sys.argv[2])
    b, r, rb = collections.Counter(), collections.Counter(), collections.Counter()
    total = 0
    for comm, frames in samples(path):
        total += 1
        k, ro = bucket(frames), role(comm, frames)
        b[k] += 1
        r[ro] += 1
        rb[(ro, k)] += 1
    print(f'samples {total}, {us} µs per store')
    for tag, c in (('BUCKET', b), ('ROLE', r)):
        for k, v in c.most_common():
            print(f'{tag}\t{k}\t{v}\t{100 * v / total:.1f}%\t{us * v / total:.1f}')
    for (ro, k), v in sorted(rb.items(), key=lambda x: (x[0][0], -x[1])):
        print(f'ROLE×BUCKET\t{ro}\t{k}\t{v}\t{us * v / total:.1f}')


if __name__ == '__main__':
    main()
