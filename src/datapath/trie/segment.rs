//! One line of a SEGMENTED node (accel.h): 64 leaves as 4-bit codes into
//! a palette of 8 leaves, code 15 for "no route"; and the rule by which
//! such a line is updated in place while the datapath reads it.
//!
//! The datapath reads a leaf's code word, then the palette word the code
//! names, and a reader can be held up between the two for as long as the
//! grace period of freed lines. So a palette word, once written, keeps its
//! value for the life of the block, with one exception: the word of a
//! node pointer, which only its own leaf ever names (no two leaves point
//! to the same node), may be switched to that leaf's new value. Any other
//! new value takes a word never written before (a 0: no palette word is 0,
//! "no route" being a code of its own). Written palette first, then codes,
//! every leaf answers old or new at every store. When no unwritten word is
//! left for a new value, the node is written whole to a new block instead.

use crate::bpf::types::{
    accel_fib_mark as F, accel_leaf as D, accel_route_type as R, accel_trie as T,
};

/// Leaves per line.
pub const LEAVES: usize = T::ACCEL_SEG_LEAVES.0 as usize;
/// The first palette word; the code words come before it.
const PALETTE: usize = T::ACCEL_SEG_PALETTE.0 as usize;
const SLOTS: usize = T::ACCEL_SEG_SLOTS.0 as usize;
const NONE: u8 = T::ACCEL_SEG_NONE.0 as u8;

/// A line's 16 words.
pub type Line = [u32; PALETTE + SLOTS];
/// Its palette's words, then its codes' (the order of stores in place).
pub const PALETTE_WORDS: std::ops::Range<usize> = PALETTE..PALETTE + SLOTS;
pub const CODE_WORDS: std::ops::Range<usize> = 0..PALETTE;

/// The code of leaf `i` (0..64) in `line`.
fn code(line: &Line, i: usize) -> u8 {
    ((line[i / 8] >> (4 * (i % 8))) & 0xf) as u8
}

fn set_code(line: &mut Line, i: usize, c: u8) {
    let shift = 4 * (i % 8);
    line[i / 8] = (line[i / 8] & !(0xf << shift)) | (u32::from(c) << shift);
}

/// The word of `line` that holds leaf `i`, or None where the leaf is "no
/// route" (fib.h's fib_node_leaf).
pub fn word_of(code_word: u32, i: usize) -> Option<usize> {
    let c = ((code_word >> (4 * (i % 8))) & 0xf) as usize;
    (c < SLOTS).then_some(PALETTE + c)
}

/// The word, within a line, of leaf `i`'s code.
pub fn code_word(i: usize) -> usize {
    (i % LEAVES) / 8
}

/// Whether a datapath leaf stands for a node: its pointer, or the mark of
/// a node without lines (each distinct, see accel.h's ACCEL_FIB_UNPLACED).
fn is_node_value(v: u32) -> bool {
    let unplaced = D::ACCEL_LEAF_ROUTE.0
        | (R::ACCEL_RT_FIB.0 << D::ACCEL_LEAF_TYPE_SHIFT.0)
        | F::ACCEL_FIB_UNPLACED.0;
    v & D::ACCEL_LEAF_EXT.0 != 0 || v & !(F::ACCEL_FIB_UNPLACED.0 - 1) == unplaced
}

/// Whether a node's leaves, given as runs (start, end, leaf) in order,
/// fit SEGMENTED lines: at most 8 distinct leaves besides 0 in each 64.
/// One pass, stopping at the first line that overflows.
pub fn node_fits(runs: impl Iterator<Item = (usize, usize, u32)>) -> bool {
    let mut seen = [[0u32; SLOTS]; 4];
    let mut count = [0usize; 4];
    for (start, end, leaf) in runs.filter(|r| r.2 != 0) {
        for k in start / LEAVES..=(end - 1) / LEAVES {
            let n = count[k];
            if seen[k][..n].contains(&leaf) {
                continue;
            }
            if n == SLOTS {
                return false;
            }
            seen[k][n] = leaf;
            count[k] = n + 1;
        }
    }
    true
}

/// A new block's line for the runs (start, end, leaf) of its 64 leaves,
/// or None when they do not fit.
pub fn fresh(runs: impl Iterator<Item = (usize, usize, u32)>) -> Option<Line> {
    let mut line = [0; PALETTE + SLOTS];
    for (start, end, v) in runs {
        let c = if v == 0 { NONE } else { slot_of(&mut line, v)? };
        set_codes(&mut line, start, end, c);
    }
    Some(line)
}

/// The line that answers leaves `start..end` with `leaf` for every run
/// given, and the others as `old` does, written over `old` in place (see
/// the module comment); None when it cannot be.
pub fn update_in_place(
    old: &Line,
    runs: impl Iterator<Item = (usize, usize, u32)>,
) -> Option<Line> {
    let mut line = *old;
    for (start, end, v) in runs {
        let c = if v == 0 {
            NONE
        } else if let Some(c) = pointer_follows(&mut line, old, start, end, v) {
            c
        } else {
            slot_of(&mut line, v)?
        };
        set_codes(&mut line, start, end, c);
    }
    Some(line)
}

/// The palette word of `v`: one that holds it, else one never written.
fn slot_of(line: &mut Line, v: u32) -> Option<u8> {
    let palette = &mut line[PALETTE..];
    let s = match palette.iter().position(|&w| w == v) {
        Some(s) => s,
        None => {
            let s = palette.iter().position(|&w| w == 0)?;
            palette[s] = v;
            s
        }
    };
    Some(s as u8)
}

/// A node pointer's leaf `start` (alone in its run) keeps its palette
/// word, switched to `v`, when that word holds a node and no other leaf
/// names it.
fn pointer_follows(line: &mut Line, old: &Line, start: usize, end: usize, v: u32) -> Option<u8> {
    if end != start + 1 || !is_node_value(v) || line[PALETTE..].contains(&v) {
        return None;
    }
    let c = code(old, start);
    let w = PALETTE + usize::from(c);
    if usize::from(c) >= SLOTS || !is_node_value(line[w]) || named(old, c) != 1 {
        return None;
    }
    line[w] = v;
    Some(c)
}

/// How many leaves of `line` have code `c`.
fn named(line: &Line, c: u8) -> u32 {
    let every = u32::from(c) * 0x1111_1111;
    line[..PALETTE]
        .iter()
        .map(|&w| {
            // A nibble of x is 0 where the code is c.
            let x = w ^ every;
            8 - ((x | x >> 1 | x >> 2 | x >> 3) & 0x1111_1111).count_ones()
        })
        .sum()
}

fn set_codes(line: &mut Line, start: usize, end: usize, c: u8) {
    for i in start..end {
        set_code(line, i, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datapath::leaves::{route_leaf, unplaced_leaf};

    fn leaf_at(line: &Line, i: usize) -> u32 {
        word_of(line[code_word(i)], i).map_or(0, |w| line[w])
    }

    fn answers(line: &Line, leaves: &[u32; LEAVES]) {
        for (i, &v) in leaves.iter().enumerate() {
            assert_eq!(leaf_at(line, i), v, "leaf {i}");
        }
    }

    /// Every leaf as a run of its own.
    fn each(leaves: &[u32; LEAVES]) -> impl Iterator<Item = (usize, usize, u32)> + '_ {
        leaves.iter().enumerate().map(|(i, &v)| (i, i + 1, v))
    }

    fn r(nh: u32) -> u32 {
        route_leaf(R::ACCEL_RT_UNICAST.0, nh)
    }

    fn ptr(line: u32) -> u32 {
        D::ACCEL_LEAF_EXT.0 | line
    }

    #[test]
    fn eight_routes_and_none_fit_nine_do_not() {
        let mut leaves = [0u32; LEAVES];
        for (i, l) in leaves.iter_mut().enumerate() {
            *l = if i % 9 == 8 { 0 } else { r(1 + (i % 9) as u32) };
        }
        let runs = |l: &[u32; LEAVES]| -> Vec<(usize, usize, u32)> {
            // The same leaves in the other three lines of a node.
            (0..4 * LEAVES).map(|i| (i, i + 1, l[i % LEAVES])).collect()
        };
        assert!(node_fits(runs(&leaves).into_iter()));
        answers(&fresh(each(&leaves)).unwrap(), &leaves);
        leaves[8] = r(9);
        assert!(!node_fits(runs(&leaves).into_iter()));
        assert!(fresh(each(&leaves)).is_none());
        // One run over all four lines counts in each.
        assert!(node_fits([(0, 256, r(1)), (3, 4, r(2))].into_iter()));
    }

    /// Every state a reader can meet while the stores are made, codes read
    /// before or after each store: old or new, for each leaf.
    fn check_stores(old: &Line, new: &Line, before: &[u32; LEAVES], after: &[u32; LEAVES]) {
        let order: Vec<usize> = PALETTE_WORDS.chain(CODE_WORDS).collect();
        let mut state = *old;
        let mut states = vec![state];
        for w in order {
            state[w] = new[w];
            states.push(state);
        }
        // A reader takes its code from one state and its palette word from
        // the same or a later one.
        for (a, sa) in states.iter().enumerate() {
            for sb in &states[a..] {
                for i in 0..LEAVES {
                    let got = word_of(sa[code_word(i)], i).map_or(0, |w| sb[w]);
                    assert!(got == before[i] || got == after[i], "leaf {i}: {got:#x}");
                }
            }
        }
    }

    #[test]
    fn routes_change_in_place_while_unwritten_words_last() {
        let mut before = [0u32; LEAVES];
        for (i, l) in before.iter_mut().enumerate() {
            *l = r(1 + (i % 3) as u32);
        }
        let mut line = fresh(each(&before)).unwrap();
        // Five new routes fill the five words never written; a sixth does not fit.
        for k in 0..6u32 {
            let mut after = before;
            after[k as usize] = r(10 + k);
            match update_in_place(&line, each(&after)) {
                Some(new) => {
                    assert!(k < 5, "route {k} had no word");
                    answers(&new, &after);
                    check_stores(&line, &new, &before, &after);
                    (line, before) = (new, after);
                }
                None => assert_eq!(k, 5),
            }
        }
        // Back to an old route, or to none: in place, the old words kept.
        let mut after = before;
        after[0] = r(2);
        after[1] = 0;
        let new = update_in_place(&line, each(&after)).unwrap();
        check_stores(&line, &new, &before, &after);
        assert_eq!(new[PALETTE..], line[PALETTE..], "no palette word rewritten");
    }

    #[test]
    fn a_node_pointer_follows_its_leaf() {
        let mut before = [r(1); LEAVES];
        before[7] = ptr(100);
        before[9] = unplaced_leaf(5);
        let mut full = before;
        for (k, l) in full.iter_mut().enumerate().skip(20).take(5) {
            *l = r(2 + k as u32);
        }
        let line = fresh(each(&full)).unwrap();
        let mut after = full;
        after[7] = ptr(200);
        after[9] = ptr(300);
        let new = update_in_place(&line, each(&after)).expect("pointers switch in place");
        answers(&new, &after);
        check_stores(&line, &new, &full, &after);
        // A route word is never rewritten, though one leaf names it.
        let mut after = full;
        after[20] = r(99);
        assert!(
            update_in_place(&line, each(&after)).is_none(),
            "no free word, none rewritten"
        );
    }
}
