//! Datapath ids shared by routes (next hops, groups), refcounted; a freed
//! id is reused only after the grace period of [`crate::slots`].

use crate::fast_hash::FastMap;
use std::hash::Hash;

use super::decision::NhKey;
use crate::slots::GraceSlots;

#[derive(Clone)]
pub struct SharedIds<K> {
    by_key: FastMap<K, (u32, usize)>,
    ids: GraceSlots,
    /// Ids handed out to new keys so far: a key that found none may share
    /// one of these now.
    handed_out: u64,
}

pub type NexthopIds = SharedIds<NhKey>;

impl<K: Eq + Hash + Clone> SharedIds<K> {
    /// Ids run from 1 to `limit - 1`; 0 is never used so that a zeroed
    /// route entry cannot name a real next hop.
    pub fn new(limit: u32) -> Self {
        SharedIds {
            by_key: FastMap::default(),
            ids: GraceSlots::new(1, limit as usize),
            handed_out: 0,
        }
    }

    /// Takes a reference on `key`'s id. Returns the id and whether it is new
    /// (its entry must be written before any route points to it), or `None`
    /// when every id is in use.
    pub fn acquire(&mut self, key: K) -> Option<(u32, bool)> {
        if let Some((id, refs)) = self.by_key.get_mut(&key) {
            *refs += 1;
            return Some((*id, false));
        }
        let id = self.ids.take()? as u32;
        self.by_key.insert(key, (id, 1));
        self.handed_out += 1;
        Some((id, true))
    }

    /// Ids reused at once (see [`GraceSlots::without_grace`]).
    #[cfg(test)]
    pub fn without_grace(mut self) -> Self {
        self.ids = self.ids.without_grace();
        self
    }

    /// Ids a new key could get now.
    pub fn available(&mut self) -> usize {
        self.ids.available()
    }

    /// How many ids were ever handed out to new keys.
    pub fn handed_out(&self) -> u64 {
        self.handed_out
    }

    /// Drops a reference; returns the id if that was the last one.
    pub fn release(&mut self, key: &K) -> Option<u32> {
        let (id, refs) = self.by_key.get_mut(key)?;
        *refs -= 1;
        if *refs > 0 {
            return None;
        }
        let id = *id;
        self.ids.release(id as usize);
        self.by_key.remove(key);
        Some(id)
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Every next hop that has an id (that some applied route uses).
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.by_key.keys()
    }

    /// Every id handed out.
    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.by_key.values().map(|(id, _)| *id)
    }

    pub fn get(&self, key: &K) -> Option<u32> {
        self.by_key.get(key).map(|(id, _)| *id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slots::GRACE;

    fn key(i: u32) -> NhKey {
        NhKey {
            ifindex: i,
            gateway: None,
        }
    }

    #[test]
    fn shared_ids_are_refcounted() {
        let mut ids = NexthopIds::new(10);
        assert_eq!(ids.acquire(key(1)), Some((1, true)));
        assert_eq!(ids.acquire(key(1)), Some((1, false)));
        assert_eq!(ids.acquire(key(2)), Some((2, true)));
        ids.release(&key(1));
        assert_eq!(ids.get(&key(1)), Some(1));
        ids.release(&key(1));
        assert_eq!(ids.get(&key(1)), None);
        assert_eq!(ids.len(), 1);
    }

    #[test]
    fn freed_ids_wait_before_reuse() {
        let mut ids = NexthopIds::new(3);
        assert_eq!(ids.acquire(key(1)), Some((1, true)));
        assert_eq!(ids.acquire(key(2)), Some((2, true)));
        ids.release(&key(1));
        // Exhausted, and the freed id is still in its grace period.
        assert_eq!(ids.acquire(key(3)), None);
        std::thread::sleep(GRACE);
        assert_eq!(ids.acquire(key(3)), Some((1, true)));
    }
}
