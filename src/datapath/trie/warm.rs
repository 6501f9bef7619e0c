//! A burst's route changes sorted for warming the two tries (see
//! [`Trie::warm`]): the event loop and `accel-bench events` warm the same
//! way.

use smallvec::SmallVec;

use super::{bits, Trie};
use crate::datapath::leaves::LeafStore;
use crate::fast_hash::WARM_AHEAD;
use crate::model::{Event, Family, Prefix};

/// Rules (address, length) of one family, with room for a burst on the
/// stack: the heap's own bookkeeping is as cold as the tables when a burst
/// begins.
type Batch = SmallVec<[(u128, u8); WARM_AHEAD]>;

/// The prefixes of a burst by family, and those of them whose events
/// remove a route.
#[derive(Debug, Default)]
pub struct WarmBatches {
    changed: [Batch; 2],
    removed: [Batch; 2],
}

fn at(family: Family) -> usize {
    usize::from(family == Family::V6)
}

impl WarmBatches {
    /// The burst's events: the routes they change.
    pub fn of<'a>(events: impl Iterator<Item = &'a Event>) -> WarmBatches {
        let mut b = WarmBatches::default();
        for e in events {
            if let Some(p) = e.route_prefix() {
                b.push(p, matches!(e, Event::DelRoute(_)));
            }
        }
        b
    }

    pub fn push(&mut self, p: &Prefix, removal: bool) {
        let f = at(p.family());
        let rule = (bits(p.addr()), p.len());
        self.changed[f].push(rule);
        if removal {
            self.removed[f].push(rule);
        }
    }

    /// Warms both tries for the burst: what every change reads, then what
    /// a removal reads besides.
    pub fn warm<S4: LeafStore, S6: LeafStore>(&self, fib4: &Trie<S4>, fib6: &Trie<S6>) {
        fib4.warm(&self.changed[at(Family::V4)]);
        fib6.warm(&self.changed[at(Family::V6)]);
        fib4.warm_covering(&self.removed[at(Family::V4)]);
        fib6.warm_covering(&self.removed[at(Family::V6)]);
    }
}
