//! Route entries in four bytes. A [`RouteEntry`] carries its next hop
//! inline (about 24 bytes); the mirror stores one or two entries for each
//! of a million prefixes, but a router has only a handful of distinct next
//! hops. So next hops are interned and an entry becomes a tag plus the
//! next hop's index.

use crate::fast_hash::FastMap;

use super::decision::{FibReason, NhKey, Path, PathSet, RouteEntry};

/// A [`RouteEntry`] as stored by the mirror; decode with [`NhTable`].
/// Two codes from the same table are equal exactly when their entries are,
/// but for entries the table had no room for: those are all
/// `Fib(Capacity)`, as the datapath treats them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Code(u32);

const TAG_SHIFT: u32 = 24;
const INDEX_MASK: u32 = (1 << TAG_SHIFT) - 1;
const TAG_UNICAST: u32 = 0;
const TAG_BLACKHOLE: u32 = 1;
const TAG_UNREACHABLE: u32 = 2;
const TAG_LOCAL: u32 = 3;
/// Fib(reason) is TAG_FIB + the reason's code.
const TAG_FIB: u32 = 4;
const TAG_MULTIPATH: u32 = TAG_FIB + FibReason::ALL.len() as u32;
/// Index into the interned nexthop-object ids.
const TAG_OBJECT: u32 = TAG_MULTIPATH + 1;
/// FibWithinMtu: the MTU in the index bits.
const TAG_FIB_MTU: u32 = TAG_OBJECT + 1;

/// What the route maps hold for a prefix: its code, and whether the entry
/// holds a reference on an id (a next hop's, a group's, a drop counter's)
/// that replacing it must release. In the code's spare bit: 4 bytes a
/// prefix, where a separate id took 8 (6.5 MiB at a full table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppliedCode(u32);

/// Above every tag (see the assertion below), below [`Code::NONE`]'s use.
const HOLDS_ID: u32 = 1 << 30;
const _: () = assert!(TAG_FIB_MTU < HOLDS_ID >> TAG_SHIFT);

/// What a map's empty slot holds (never read as a code).
impl Default for AppliedCode {
    fn default() -> Self {
        AppliedCode(Code::NONE.0 & !HOLDS_ID)
    }
}

impl AppliedCode {
    pub fn new(code: Code, holds_id: bool) -> AppliedCode {
        debug_assert!(code.0 & HOLDS_ID == 0, "{code:?} is not a stored code");
        AppliedCode(code.0 | if holds_id { HOLDS_ID } else { 0 })
    }

    pub fn code(self) -> Code {
        Code(self.0 & !HOLDS_ID)
    }

    pub fn holds_id(self) -> bool {
        self.0 & HOLDS_ID != 0
    }
}

impl Code {
    /// No entry: never made by [`NhTable::encode`] (its tags are all
    /// small), so a slot can use it to say it holds no code.
    pub const NONE: Code = Code(u32::MAX);

    /// [`RouteEntry::Local`]'s code.
    pub const LOCAL: Code = Code(TAG_LOCAL << TAG_SHIFT);

    /// Whether it is a route through a nexthop object
    /// ([`RouteEntry::Object`]).
    pub fn is_object(self) -> bool {
        self.0 >> TAG_SHIFT == TAG_OBJECT
    }

    /// Routes whose next hops the kernel marked dead (a device went down
    /// under a multipath route), or link-down where that decides.
    pub const DEAD_PATH: Code = Code((TAG_FIB + FibReason::DeadNexthop as u32) << TAG_SHIFT);

    /// Whether it is a multipath route's ([`RouteEntry::Multipath`]).
    pub fn is_multipath(self) -> bool {
        self.0 >> TAG_SHIFT == TAG_MULTIPATH
    }

    /// Whether the view counts its routes by this code: a nexthop
    /// object's (the kernel deletes its routes with it, silently), a dead
    /// next hop's (revived silently when the device comes up), a path
    /// list's (flagged linkdown silently when a member loses carrier).
    pub fn is_counted(self) -> bool {
        self.is_object() || self.is_multipath() || self == Code::DEAD_PATH
    }

    /// Entries without a next hop need no table.
    pub fn fib(reason: FibReason) -> Code {
        Code((TAG_FIB + u32::from(reason.code())) << TAG_SHIFT)
    }
}

/// Interned next hops. Append-only: an index, once handed out, names the
/// same next hop for the life of the mirror, so stored codes never need
/// rewriting. Distinct (interface, gateway) pairs are few, but routing
/// daemons keep making new nexthop-object ids (zebra numbers each new
/// group afresh) and path lists: the table grows for as long as the
/// process runs, and `accel run` starts afresh (an upgrade in place to
/// itself, daemon/refresh.rs) long before an index space is full. Should
/// one fill all the same, what would need a new index is encoded as
/// [`FibReason::Capacity`]: those routes go to bpf_fib_lookup.
#[derive(Debug, Clone)]
pub struct NhTable {
    keys: Vec<NhKey>,
    index: FastMap<NhKey, u32>,
    /// Interned path lists of multipath routes, likewise append-only:
    /// distinct lists are few (a router has few ECMP neighbour sets).
    sets: Vec<Vec<Path>>,
    set_index: FastMap<Vec<Path>, u32>,
    /// Interned nexthop-object ids (they may exceed the 24-bit index).
    objects: Vec<u32>,
    object_index: FastMap<u32, u32>,
    /// Indexes each of the three lists may hand out.
    room: u32,
    /// Encodings that found no room (a value refused twice counts twice).
    refused: u64,
}

impl Default for NhTable {
    fn default() -> Self {
        NhTable::with_room(INDEX_MASK + 1)
    }
}

impl NhTable {
    /// A table whose lists hold at most `room` values each (at most the
    /// 2^24 a code's index can name).
    pub fn with_room(room: u32) -> NhTable {
        NhTable {
            keys: Vec::new(),
            index: FastMap::default(),
            sets: Vec::new(),
            set_index: FastMap::default(),
            objects: Vec::new(),
            object_index: FastMap::default(),
            room: room.min(INDEX_MASK + 1),
            refused: 0,
        }
    }

    /// Values interned so far: next hops, path lists and object ids.
    pub fn interned(&self) -> usize {
        self.keys.len() + self.sets.len() + self.objects.len()
    }

    /// Encodings refused for want of room so far.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    pub fn encode(&mut self, e: RouteEntry) -> Code {
        let code = self.encode_if_room(e);
        code.unwrap_or_else(|| {
            self.refused += 1;
            Code::fib(FibReason::Capacity)
        })
    }

    fn encode_if_room(&mut self, e: RouteEntry) -> Option<Code> {
        let tag = match e {
            RouteEntry::Unicast(nh) => {
                return intern(&mut self.keys, &mut self.index, nh, self.room).map(Code)
            }
            RouteEntry::Blackhole => TAG_BLACKHOLE,
            RouteEntry::Unreachable => TAG_UNREACHABLE,
            RouteEntry::Local => TAG_LOCAL,
            RouteEntry::Fib(r) => return Some(Code::fib(r)),
            RouteEntry::Multipath(set) => return Some(Code(TAG_MULTIPATH << TAG_SHIFT | set.0)),
            RouteEntry::Object(id) => {
                return intern(&mut self.objects, &mut self.object_index, id, self.room)
                    .map(|i| Code(TAG_OBJECT << TAG_SHIFT | i));
            }
            RouteEntry::FibWithinMtu(mtu) => {
                return Some(Code(TAG_FIB_MTU << TAG_SHIFT | u32::from(mtu)))
            }
        };
        Some(Code(tag << TAG_SHIFT))
    }

    /// The code of a route through nexthop object `id`, if one was ever
    /// encoded (none can be stored otherwise).
    pub fn object_code(&self, id: u32) -> Option<Code> {
        let i = self.object_index.get(&id)?;
        Some(Code(TAG_OBJECT << TAG_SHIFT | i))
    }

    pub fn decode(&self, c: Code) -> RouteEntry {
        match c.0 >> TAG_SHIFT {
            TAG_UNICAST => RouteEntry::Unicast(self.keys[(c.0 & INDEX_MASK) as usize]),
            TAG_BLACKHOLE => RouteEntry::Blackhole,
            TAG_UNREACHABLE => RouteEntry::Unreachable,
            TAG_LOCAL => RouteEntry::Local,
            TAG_MULTIPATH => RouteEntry::Multipath(PathSet(c.0 & INDEX_MASK)),
            TAG_OBJECT => RouteEntry::Object(self.objects[(c.0 & INDEX_MASK) as usize]),
            TAG_FIB_MTU => RouteEntry::FibWithinMtu((c.0 & INDEX_MASK) as u16),
            t => RouteEntry::Fib(
                u8::try_from(t - TAG_FIB)
                    .ok()
                    .and_then(FibReason::from_code)
                    .expect("codes are only made by encode"),
            ),
        }
    }

    /// The handle of a multipath route's path list; `None` when the
    /// table has no room for another list.
    pub fn intern_paths(&mut self, paths: Vec<Path>) -> Option<PathSet> {
        let set = intern(&mut self.sets, &mut self.set_index, paths, self.room).map(PathSet);
        self.refused += u64::from(set.is_none());
        set
    }

    pub fn paths(&self, set: PathSet) -> &[Path] {
        &self.sets[set.0 as usize]
    }
}

/// `v`'s index in `all`, appended if new and there is room.
fn intern<T: Clone + Eq + std::hash::Hash>(
    all: &mut Vec<T>,
    index: &mut FastMap<T, u32>,
    v: T,
    room: u32,
) -> Option<u32> {
    if let Some(i) = index.get(&v) {
        return Some(*i);
    }
    let i = u32::try_from(all.len()).ok().filter(|i| *i < room)?;
    all.push(v.clone());
    index.insert(v, i);
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_round_trips() {
        let mut t = NhTable::default();
        let nh = |i, g: Option<&str>| NhKey {
            ifindex: i,
            gateway: g.map(|g| g.parse().unwrap()),
        };
        let set = t
            .intern_paths(vec![
                Path {
                    nh: nh(3, Some("192.0.2.1")),
                    weight: 1,
                },
                Path {
                    nh: nh(4, Some("192.0.2.2")),
                    weight: 2,
                },
            ])
            .unwrap();
        let mut all = vec![
            RouteEntry::Multipath(set),
            RouteEntry::Object(7),
            RouteEntry::Object(1 << 30),
            RouteEntry::Unicast(nh(3, Some("192.0.2.1"))),
            RouteEntry::Unicast(nh(3, None)),
            RouteEntry::Unicast(nh(4, Some("fe80::1"))),
            RouteEntry::Blackhole,
            RouteEntry::Unreachable,
            RouteEntry::Local,
        ];
        all.extend(FibReason::ALL.iter().map(|r| RouteEntry::Fib(*r)));
        let codes: Vec<Code> = all.iter().map(|e| t.encode(*e)).collect();
        for (e, c) in all.iter().zip(&codes) {
            assert_eq!(c.is_object(), matches!(e, RouteEntry::Object(_)));
        }
        assert_eq!(
            t.object_code(1 << 30),
            Some(t.encode(RouteEntry::Object(1 << 30)))
        );
        assert_eq!(t.object_code(8), None);
        assert_eq!(t.encode(RouteEntry::Local), Code::LOCAL);
        for (e, c) in all.iter().zip(&codes) {
            assert_eq!(t.decode(*c), *e);
            assert_eq!(t.encode(*e), *c, "interning is stable");
            for held in [false, true] {
                let a = AppliedCode::new(*c, held);
                assert_eq!((a.code(), a.holds_id()), (*c, held));
            }
        }
        for (i, a) in codes.iter().enumerate() {
            for b in &codes[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    /// A full list hands out no index: what would need one goes to
    /// bpf_fib_lookup, and what was interned keeps its code.
    #[test]
    fn a_full_table_encodes_new_values_as_out_of_room() {
        let mut t = NhTable::with_room(2);
        let nh = |i| NhKey {
            ifindex: i,
            gateway: None,
        };
        let full = RouteEntry::Fib(FibReason::Capacity);
        let kept: Vec<Code> = [RouteEntry::Object(10), RouteEntry::Object(11)]
            .iter()
            .map(|e| t.encode(*e))
            .collect();
        let c = t.encode(RouteEntry::Object(12));
        assert_eq!(t.decode(c), full);
        assert_eq!(t.encode(RouteEntry::Object(11)), kept[1], "interned before");
        assert_eq!(t.decode(kept[0]), RouteEntry::Object(10));
        // Each list has its own room.
        t.encode(RouteEntry::Unicast(nh(1)));
        t.encode(RouteEntry::Unicast(nh(2)));
        let c = t.encode(RouteEntry::Unicast(nh(3)));
        assert_eq!(t.decode(c), full);
        let path = |i| Path {
            nh: nh(i),
            weight: 1,
        };
        assert!(t.intern_paths(vec![path(1), path(2)]).is_some());
        assert!(t.intern_paths(vec![path(2), path(3)]).is_some());
        assert!(t.intern_paths(vec![path(3), path(4)]).is_none());
        assert_eq!(t.interned(), 6);
        assert_eq!(t.refused(), 3);
    }
}
