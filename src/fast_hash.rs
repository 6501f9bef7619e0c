//! Hash maps on the per-event path (every route change looks its prefix,
//! next hop and leaf rules up several times): foldhash is several times
//! faster than the standard SipHash, and still keyed per process, so that
//! announced prefixes cannot be chosen to collide.

pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
