//! One line of a SEGMENTED node (accel.h): 64 leaves as 4-bit codes into
//! a palette of 8 leaves, code 15 for "no route"; and the rule by which
//! such a line is updated in place while the datapath reads it.
//!
//! The datapath reads a leaf's code word, then the palette word the code
//! names, and a reader can be held up in between for any time. So a
//! palette word that holds a route keeps it for the life of the block:
//! whoever names it finds a route its leaf had. A node's word (its pointer,
//! or the mark of a node without lines) is only ever named by the leaf
//! that first took it: a node value never takes a word by matching its
//! value (a dead word may hold it, from a node since dropped, whose index
//! or block came back), only a word never written. So that word may follow
//! its one leaf to that leaf's next node value. A new value takes a word
//! never written (a 0: no palette word is 0, "no route" being a code of its
//! own). Written palette first, then codes, every leaf answers old or new
//! at every store, and a reader held up across updates finds a value its
//! leaf had meanwhile. When no unwritten word is left, the node is written
//! whole to a new block instead.

use crate::bpf::types::{accel_leaf as D, accel_trie as T};
use crate::datapath::leaves::is_unplaced_leaf;

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
    v & D::ACCEL_LEAF_EXT.0 != 0 || is_unplaced_leaf(v)
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
    update_in_place(&[0; PALETTE + SLOTS], runs)
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
        } else if is_node_value(v) {
            node_word(&mut line, old, start, v)?
        } else {
            route_word(&mut line, v)?
        };
        set_codes(&mut line, start, end, c);
    }
    Some(line)
}

/// The palette word of route `v`: one that holds it, else one never
/// written.
fn route_word(line: &mut Line, v: u32) -> Option<u8> {
    match line[PALETTE..].iter().position(|&w| w == v) {
        Some(s) => Some(s as u8),
        None => unwritten_word(line, v),
    }
}

/// The palette word of node value `v` at leaf `i` (a node is a run of one
/// leaf): the leaf's own word if it held a node and no other leaf names it
/// (switched to `v`), else one never written.
fn node_word(line: &mut Line, old: &Line, i: usize, v: u32) -> Option<u8> {
    let c = code(old, i);
    let w = PALETTE + usize::from(c);
    if usize::from(c) < SLOTS && is_node_value(line[w]) && named(old, c) == 1 {
        line[w] = v;
        return Some(c);
    }
    unwritten_word(line, v)
}

fn unwritten_word(line: &mut Line, v: u32) -> Option<u8> {
    let s = line[PALETTE..].iter().position(|&w| w == 0)?;
    line[PALETTE + s] = v;
    Some(s as u8)
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
    use crate::bpf::types::accel_route_type as R;
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

    /// Readers held up across many updates of a line, as long as it lives:
    /// with its code from one state and its palette word from any later
    /// one, a reader finds a value its leaf had in between. Node values
    /// come back (indices and blocks are reused) but never two at once.
    #[test]
    fn a_reader_held_up_across_updates_finds_a_value_its_leaf_had() {
        let mut rng = fastrand::Rng::with_seed(11);
        let mut leaves = [r(1); LEAVES];
        let mut line = fresh(each(&leaves)).unwrap();
        // The states of the current block, and each leaf's value in each.
        let (mut states, mut values) = (vec![line], vec![leaves]);
        let (mut updates, mut moves) = (0, 0);
        for _ in 0..3000 {
            let i = rng.usize(..LEAVES);
            let v = match rng.u8(..10) {
                0..=5 => r(1 + rng.u32(..5)),
                6 | 7 => ptr(rng.u32(..6)),
                8 => 0,
                _ => unplaced_leaf(rng.usize(..6)),
            };
            if is_node_value(v) && leaves.contains(&v) {
                continue;
            }
            let mut after = leaves;
            after[i] = v;
            // A node of more distinct leaves would take another form.
            if fresh(each(&after)).is_none() {
                continue;
            }
            match update_in_place(&line, each(&after)) {
                Some(new) => {
                    for w in PALETTE_WORDS
                        .chain(CODE_WORDS)
                        .filter(|&w| line[w] != new[w])
                    {
                        let mut state = *states.last().unwrap();
                        state[w] = new[w];
                        states.push(state);
                        values.push(std::array::from_fn(|k| leaf_at(&state, k)));
                    }
                    line = new;
                    updates += 1;
                }
                None => {
                    held_up_readers(&states, &values);
                    line = fresh(each(&after)).unwrap();
                    (states, values) = (vec![line], vec![after]);
                    moves += 1;
                }
            }
            answers(&line, &after);
            leaves = after;
        }
        held_up_readers(&states, &values);
        assert!(
            updates > 1000 && moves > 20,
            "{updates} in place, {moves} moves"
        );
    }

    fn held_up_readers(states: &[Line], values: &[[u32; LEAVES]]) {
        for a in 0..states.len() {
            for b in a..states.len() {
                for i in 0..LEAVES {
                    let got = word_of(states[a][code_word(i)], i).map_or(0, |w| states[b][w]);
                    assert!(
                        values[a..=b].iter().any(|v| v[i] == got),
                        "leaf {i}: code at state {a}, palette at {b}: {got:#x}"
                    );
                }
            }
        }
    }
}
