//! Which Redis node holds a channel: rendezvous (highest random weight) hashing.
//!
//! # The hash (a deployment contract)
//!
//! Every server given the same node list must send a channel to the same node, so the function
//! is fixed here and never seeded per process (no `RandomState`):
//!
//! 1. `k = fnv1a64(channel_key)`, where `channel_key` is the namespaced `<appkey>::<channel>`.
//! 2. For each node, `s_n = fmix64(fnv1a64(identity_n))`, where `identity_n` is
//!    `host:port/db` as written in the URL (host lowercased, no credentials; see
//!    [`super::url::NodeAddr::identity`]).
//! 3. `score_n = fmix64(k ^ s_n)`; the channel goes to the node with the highest score (ties,
//!    which need a 64-bit collision, go to the smaller identity).
//!
//! `fnv1a64` is 64-bit FNV-1a (offset basis `0xcbf29ce484222325`, prime `0x100000001b3`);
//! `fmix64` is MurmurHash3's 64-bit finalizer, which gives FNV's weak high bits a full avalanche
//! so that the per-node scores behave as independent uniform draws.
//!
//! Properties: the order of the URL list does not matter; each node gets `1/N` of the channels
//! in expectation; adding a node moves only the channels whose new highest score is the new
//! node (`≈ 1/(N+1)` of them), and removing one moves only that node's channels. Changing the
//! identity spelling of a node (`localhost` vs `127.0.0.1`) counts as replacing it.

/// 64-bit FNV-1a.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// MurmurHash3's 64-bit finalizer (a bijection with full avalanche).
pub fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// A fixed set of nodes and the rendezvous choice among them.
#[derive(Debug, Clone)]
pub struct Rendezvous {
    /// One seed per node, in the caller's node order.
    seeds: Vec<u64>,
    /// The identities, to break (astronomically unlikely) ties the same way everywhere.
    identities: Vec<String>,
}

impl Rendezvous {
    /// Builds the chooser over node identities (see the module docs for what an identity is).
    pub fn new<I, S>(identities: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let identities: Vec<String> = identities.into_iter().map(Into::into).collect();
        let seeds = identities
            .iter()
            .map(|id| fmix64(fnv1a64(id.as_bytes())))
            .collect();
        Rendezvous { seeds, identities }
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.seeds.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.seeds.is_empty()
    }

    /// Index (in construction order) of the node holding `key`. With no nodes, 0.
    pub fn node_for(&self, key: &str) -> usize {
        let k = fnv1a64(key.as_bytes());
        let mut best = 0;
        let mut best_score = 0u64;
        for (i, seed) in self.seeds.iter().enumerate() {
            let score = fmix64(k ^ seed);
            let better = i == 0
                || score > best_score
                || (score == best_score && self.identities[i] < self.identities[best]);
            if better {
                best = i;
                best_score = score;
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("app{}::channel_{i}", i % 7))
            .collect()
    }

    #[test]
    fn fnv_matches_the_published_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn stable_across_instances_and_list_order() {
        let a = Rendezvous::new(["h1:6379/0", "h2:6379/0", "h3:6379/0"]);
        let b = Rendezvous::new(["h3:6379/0", "h1:6379/0", "h2:6379/0"]);
        for k in keys(2000) {
            assert_eq!(a.identities[a.node_for(&k)], b.identities[b.node_for(&k)]);
        }
        // Pinned values: changing the hash silently would re-home every channel of a deployment.
        let pinned: Vec<usize> = ["a::b", "x::y", "_stats::/stats", "game::fps"]
            .iter()
            .map(|k| a.node_for(k))
            .collect();
        assert_eq!(pinned, PINNED);
    }

    // Computed once from the definition above; see `stable_across_instances_and_list_order`.
    const PINNED: [usize; 4] = [0, 2, 1, 2];

    #[test]
    fn distribution_is_even() {
        for n in [2usize, 3, 5, 8] {
            let r = Rendezvous::new((0..n).map(|i| format!("10.0.0.{i}:6379/0")));
            let total = 60_000;
            let mut counts = vec![0usize; n];
            for k in keys(total) {
                counts[r.node_for(&k)] += 1;
            }
            let expected = total / n;
            for c in &counts {
                let dev = (*c as f64 - expected as f64).abs() / expected as f64;
                assert!(dev < 0.05, "n={n} counts={counts:?}");
            }
        }
    }

    #[test]
    fn adding_a_node_moves_about_one_over_n_plus_one() {
        let ids: Vec<String> = (0..4).map(|i| format!("redis-{i}:6379/0")).collect();
        let before = Rendezvous::new(ids.clone());
        let mut more = ids.clone();
        more.push("redis-4:6379/0".into());
        let after = Rendezvous::new(more);
        let total = 50_000;
        let mut moved = 0;
        for k in keys(total) {
            let (b, a) = (before.node_for(&k), after.node_for(&k));
            if b != a {
                // Only ever to the new node: nothing shuffles between the old ones.
                assert_eq!(a, 4, "{k} moved between old nodes");
                moved += 1;
            }
        }
        let frac = moved as f64 / total as f64;
        assert!((frac - 0.2).abs() < 0.02, "moved {frac}");
    }

    #[test]
    fn removing_a_node_moves_only_its_channels() {
        let ids: Vec<String> = (0..5).map(|i| format!("redis-{i}:6379/0")).collect();
        let before = Rendezvous::new(ids.clone());
        let after = Rendezvous::new(ids[..4].to_vec());
        for k in keys(20_000) {
            let b = before.node_for(&k);
            if b != 4 {
                assert_eq!(after.node_for(&k), b);
            }
        }
    }
}
