//! A small seeded fuzzer for the weight importers: byte-level and JSON-aware mutators, a case
//! runner that names the failing case, and an allocator that records the largest single
//! allocation (so that a test can assert bounded memory). Deterministic: a failing case is
//! reproduced by its seed and index.
//!
//! To fuzz another importer: build a valid seed input, mutate it per case with
//! [`Mutator::bytes`] or [`Mutator::json`], write it where the importer reads, call the
//! importer (any `Ok`/`Err` is fine; a panic fails the test), and check
//! [`TrackingAlloc::take_peak`] after each case.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;
use wgstyle::nets::transformer::{Arch, LayerWeights, TransformWeights, Upsample};

use super::Rng;

/// A small random transform network (width 2): a cheap seed for the safetensors importer.
pub fn tiny_transform() -> TransformWeights {
    random_transform(Arch {
        width: 2,
        upsample: Upsample::Transpose,
        ..Arch::LENGSTROM
    })
}

/// Random weights for `arch` (finite, in the ranges trained networks have).
pub fn random_transform(arch: Arch) -> TransformWeights {
    let mut rng = Rng::new(7);
    let layers = arch
        .layers()
        .into_iter()
        .map(|l| {
            let w = LayerWeights {
                kernel: rng.vec(l.k * l.k * l.cin * l.cout, -0.5, 0.5),
                shift: rng.vec(l.cout, -0.1, 0.1),
                scale: rng.vec(l.cout, 0.5, 1.5),
                bias: if arch.has_bias() {
                    rng.vec(l.cout, -0.1, 0.1)
                } else {
                    Vec::new()
                },
            };
            (l.name, w)
        })
        .collect();
    TransformWeights { arch, layers }
}

/// Values that tend to break size and offset arithmetic.
const INTERESTING_U64: [u64; 10] = [
    0,
    1,
    7,
    255,
    65_535,
    1 << 31,
    (1 << 32) - 1,
    1 << 40,
    i64::MAX as u64,
    u64::MAX,
];

/// Strings that tend to break path handling and parsers.
const INTERESTING_STR: [&str; 9] = [
    "",
    "../../etc/passwd",
    "/dev/zero",
    ".",
    "a/../../b",
    "C:\\x",
    "NaN",
    "-inf",
    "\u{0}",
];

/// The seeded mutator.
pub struct Mutator {
    /// Its random numbers (also for the caller's own choices).
    pub rng: Rng,
}

impl Mutator {
    /// A mutator for case `index` of the run seeded with `seed`.
    pub fn new(seed: u64, index: usize) -> Self {
        Mutator {
            rng: Rng::new(seed ^ (index as u64).wrapping_mul(0x9E37_79B9)),
        }
    }

    /// `input` with 1 to 4 byte-level mutations (bit flips, interesting bytes or little-endian
    /// u64 values, deletions, duplications, truncation), mostly within its first `focus`
    /// bytes (e.g. a header).
    pub fn bytes(&mut self, input: &[u8], focus: usize) -> Vec<u8> {
        let mut v = input.to_vec();
        for _ in 0..self.rng.range(1, 4) {
            if v.is_empty() {
                v.push(0);
            }
            let limit = if self.rng.range(0, 3) == 0 {
                v.len()
            } else {
                focus.clamp(1, v.len())
            };
            let at = self.rng.range(0, limit - 1);
            match self.rng.range(0, 6) {
                0 => v[at] ^= 1 << self.rng.range(0, 7),
                1 => v[at] = [0, 0xff, 0x7f, 0x80, b'"', b'{', b']'][self.rng.range(0, 6)],
                2 => {
                    let x = INTERESTING_U64[self.rng.range(0, INTERESTING_U64.len() - 1)];
                    for (i, b) in x.to_le_bytes().iter().enumerate() {
                        if let Some(slot) = v.get_mut(at + i) {
                            *slot = *b;
                        }
                    }
                }
                3 => {
                    let end = (at + self.rng.range(1, 64)).min(v.len());
                    v.drain(at..end);
                }
                4 => {
                    let end = (at + self.rng.range(1, 64)).min(v.len());
                    let chunk = v[at..end].to_vec();
                    v.splice(at..at, chunk);
                }
                5 => v.truncate(at),
                _ => v[at] = self.rng.next_u64() as u8,
            }
        }
        v
    }

    /// `value` with 1 to 3 structure-aware mutations: a random node replaced by an interesting
    /// number, string, empty or huge array, or another type; a random object key removed or
    /// renamed; an array element duplicated or removed.
    pub fn json(&mut self, value: &Value) -> Value {
        let mut v = value.clone();
        for _ in 0..self.rng.range(1, 3) {
            let n = count_nodes(&v);
            let target = self.rng.range(0, n - 1);
            let choice = self.rng.range(0, 10);
            let replacement = self.interesting_value(choice);
            let mut counter = 0;
            mutate_node(&mut v, target, &mut counter, &mut |node| match choice {
                8 => match node {
                    Value::Object(m) if !m.is_empty() => {
                        let key = m.keys().next().cloned().unwrap();
                        let val = m.remove(&key).unwrap();
                        m.insert(format!("{key}_x"), val);
                    }
                    Value::Array(a) if !a.is_empty() => {
                        let last = a.pop().unwrap();
                        a.insert(0, last.clone());
                        a.push(last);
                    }
                    other => *other = replacement.clone(),
                },
                9 => match node {
                    Value::Object(m) if !m.is_empty() => {
                        let key = m.keys().next_back().cloned().unwrap();
                        m.remove(&key);
                    }
                    Value::Array(a) if !a.is_empty() => {
                        a.remove(0);
                    }
                    other => *other = replacement.clone(),
                },
                _ => *node = replacement.clone(),
            });
        }
        v
    }

    fn interesting_value(&mut self, choice: usize) -> Value {
        match choice {
            0 | 1 => Value::from(INTERESTING_U64[self.rng.range(0, INTERESTING_U64.len() - 1)]),
            2 => Value::from(-(self.rng.range(1, 1000) as i64)),
            3 => Value::from([1e308, -1e308, 1e-320, 0.5, 3.0][self.rng.range(0, 4)]),
            4 => Value::from(INTERESTING_STR[self.rng.range(0, INTERESTING_STR.len() - 1)]),
            5 => Value::Array(Vec::new()),
            6 => Value::Array(vec![Value::from(u32::MAX); self.rng.range(1, 12)]),
            _ => Value::Null,
        }
    }
}

fn count_nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count_nodes).sum(),
        Value::Object(m) => m.values().map(count_nodes).sum(),
        _ => 0,
    }
}

/// Applies `f` to the node with pre-order index `target`; returns whether it was found.
fn mutate_node(
    v: &mut Value,
    target: usize,
    counter: &mut usize,
    f: &mut dyn FnMut(&mut Value),
) -> bool {
    if *counter == target {
        f(v);
        return true;
    }
    *counter += 1;
    match v {
        Value::Array(a) => a.iter_mut().any(|c| mutate_node(c, target, counter, f)),
        Value::Object(m) => m.values_mut().any(|c| mutate_node(c, target, counter, f)),
        _ => false,
    }
}

/// Runs `count` cases of `case` (given its mutator and index). A panic fails the test with the
/// case named, so that it can be replayed.
pub fn run_cases(name: &str, seed: u64, count: usize, mut case: impl FnMut(&mut Mutator, usize)) {
    for i in 0..count {
        let mut m = Mutator::new(seed, i);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(&mut m, i)));
        if let Err(p) = r {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("fuzz {name}: case {i} (seed {seed}) panicked: {msg}");
        }
    }
}

/// The system allocator, recording the largest single allocation since the last
/// [`TrackingAlloc::take_peak`]. Install it in a fuzz test binary with
/// `#[global_allocator] static A: TrackingAlloc = TrackingAlloc::new();`.
pub struct TrackingAlloc {
    peak: AtomicUsize,
}

impl TrackingAlloc {
    /// A tracker with no allocation recorded.
    pub const fn new() -> Self {
        TrackingAlloc {
            peak: AtomicUsize::new(0),
        }
    }

    /// The largest single allocation since the last call (then reset).
    pub fn take_peak(&self) -> usize {
        self.peak.swap(0, Ordering::Relaxed)
    }
}

unsafe impl GlobalAlloc for TrackingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.peak.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.peak.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.peak.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
