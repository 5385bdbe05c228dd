//! Seeded generators of JSON texts (valid and not), and the case loop.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const BASE_SEED: u64 = 0x1f_e9a7e;

/// Runs `check` on `default` seeded cases (or as `INFERGATE_DIFF_CASES` / `INFERGATE_DIFF_SEED`
/// say). `check` returns the input and, on a mismatch, what differed.
pub fn run_cases(
    name: &str,
    default: u64,
    mut check: impl FnMut(&mut Gen) -> (Vec<u8>, Option<String>),
) {
    let seeds: Vec<u64> = match std::env::var("INFERGATE_DIFF_SEED") {
        Ok(s) => vec![s.parse().expect("INFERGATE_DIFF_SEED is a number")],
        Err(_) => {
            let n = std::env::var("INFERGATE_DIFF_CASES")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(default);
            (0..n).map(|i| BASE_SEED + i).collect()
        }
    };
    for seed in seeds {
        let mut g = Gen::new(seed);
        let (input, mismatch) = check(&mut g);
        if let Some(why) = mismatch {
            panic!(
                "{name}: mismatch for seed {seed} (rerun with INFERGATE_DIFF_SEED={seed}): {why}\n\
                 input ({} bytes): {}",
                input.len(),
                show(&input)
            );
        }
    }
}

/// The input as an escaped string, shortened in the middle when long.
pub fn show(input: &[u8]) -> String {
    let s = format!("{:?}", String::from_utf8_lossy(input));
    let raw = input.iter().any(|&b| b >= 0x80) && std::str::from_utf8(input).is_err();
    let s = if s.chars().count() > 3000 {
        let head: String = s.chars().take(1500).collect();
        let tail: String = s.chars().skip(s.chars().count() - 1500).collect();
        format!("{head} ... {tail}")
    } else {
        s
    };
    if raw {
        format!("{s} (not UTF-8; lossy)")
    } else {
        s
    }
}

pub struct Gen {
    pub rng: StdRng,
    /// Whether values may nest around serde_json's depth limit and keys may be invalid strings.
    pub wild: bool,
}

/// Pieces of string contents (between the quotes), valid and not.
const PIECES: &[&[u8]] = &[
    b"a",
    b"hello",
    b"model",
    b"usage",
    b" ",
    b"\\\"",
    b"\\\\",
    b"\\/",
    b"\\b",
    b"\\f",
    b"\\n",
    b"\\r",
    b"\\t",
    b"\\u0041",
    b"\\u00e9",
    b"\\u0000",
    b"\\u2028",
    b"\\ud83d\\ude00",
    b"\xc3\xa9",
    b"\xf0\x9f\x98\x80",
    b"\\\"usage\\\": {\\\"prompt_tokens\\\": 9}",
    b"data: ",
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b",",
    b"\\u006dodel",
];
/// Invalid string pieces, used rarely.
const BAD_PIECES: &[&[u8]] = &[
    b"\\ud800",
    b"\\udc00",
    b"\\ud800\\u0041",
    b"\\ud83d",
    b"\xff",
    b"\xe2\x82",
    b"\xc0\xaf",
    b"\x01",
    b"\n",
    b"\\x",
    b"\\u12",
    b"\\u12G4",
    b"\xed\xa0\x80",
];
const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-12",
    "1.5",
    "1e10",
    "1E-5",
    "2.5e+3",
    "123456789012345678901234567890",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775809",
    "1e308",
    "4.9e-324",
    "1e-400",
    "0.1000000000000000055511151231257827",
];
const BAD_NUMBERS: &[&str] = &[
    "1e400", "-1e400", "01", "1.", ".5", "+1", "-", "1e", "NaN", "Infinity", "0x10", "1e309",
];
/// Keys, with `model` spelled several ways, and near misses.
pub const KEYS: &[&str] = &[
    "messages",
    "max_tokens",
    "stream",
    "x",
    "",
    "usage",
    "model",
    "mod\\u0065l",
    "\\u006dodel",
    "Model",
    "model ",
    "models",
    "mode",
    "\\u006dodel\\u0000",
    "m\\u006fdel",
    "\\\"model",
];

impl Gen {
    pub fn new(seed: u64) -> Gen {
        Gen {
            rng: StdRng::seed_from_u64(seed),
            wild: true,
        }
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    pub fn below(&mut self, n: usize) -> usize {
        self.rng.random_range(0..n)
    }

    pub fn pick<'a, T: ?Sized>(&mut self, xs: &[&'a T]) -> &'a T {
        xs[self.below(xs.len())]
    }

    /// Whitespace between tokens: mostly none, sometimes JSON whitespace, rarely something
    /// that is not JSON whitespace.
    pub fn ws(&mut self, out: &mut Vec<u8>) {
        if self.chance(0.7) {
            return;
        }
        for _ in 0..self.rng.random_range(1..4) {
            let w: &[u8] = if self.chance(0.01) {
                self.pick(&[&b"\x0c"[..], b"\xc2\xa0", b"\x0b"])
            } else {
                self.pick(&[&b" "[..], b"\t", b"\n", b"\r"])
            };
            out.extend_from_slice(w);
        }
    }

    /// The contents of a string (without quotes); `bad` is the chance of each piece being
    /// invalid.
    pub fn string_contents(&mut self, out: &mut Vec<u8>, bad: f64) {
        for _ in 0..self.below(6) {
            if self.chance(bad) {
                out.extend_from_slice(self.pick(BAD_PIECES));
            } else {
                out.extend_from_slice(self.pick(PIECES));
            }
        }
    }

    pub fn string(&mut self, out: &mut Vec<u8>, bad: f64) {
        out.push(b'"');
        self.string_contents(out, bad);
        out.push(b'"');
    }

    pub fn number(&mut self, out: &mut Vec<u8>, bad: f64) {
        let n = if self.chance(bad) {
            self.pick(BAD_NUMBERS).to_owned()
        } else if self.chance(0.5) {
            self.pick(NUMBERS).to_owned()
        } else {
            let n: i64 = self.rng.random_range(-1_000_000..1_000_000);
            n.to_string()
        };
        out.extend_from_slice(n.as_bytes());
    }

    /// Any JSON value, nested up to `depth` more levels; `bad` is the chance of an invalid
    /// scalar.
    pub fn value(&mut self, out: &mut Vec<u8>, depth: u32, bad: f64) {
        let kind = if depth == 0 {
            self.below(5)
        } else {
            self.below(8)
        };
        match kind {
            0 => out.extend_from_slice(self.pick(&[&b"null"[..], b"true", b"false"])),
            1 | 2 => self.number(out, bad),
            3 | 4 => self.string(out, bad),
            5 if self.wild && self.chance(0.02) => self.deep(out),
            5 => {
                out.push(b'[');
                for i in 0..self.below(4) {
                    if i > 0 {
                        out.push(b',');
                    }
                    self.ws(out);
                    self.value(out, depth - 1, bad);
                    self.ws(out);
                }
                out.push(b']');
            }
            _ => self.object(out, depth - 1, bad),
        }
    }

    /// An object of random members (keys from [`KEYS`], duplicates possible).
    pub fn object(&mut self, out: &mut Vec<u8>, depth: u32, bad: f64) {
        out.push(b'{');
        for i in 0..self.below(4) {
            if i > 0 {
                out.push(b',');
            }
            self.ws(out);
            self.key(out);
            self.ws(out);
            out.push(b':');
            self.ws(out);
            self.value(out, depth, bad);
            self.ws(out);
        }
        out.push(b'}');
    }

    pub fn key(&mut self, out: &mut Vec<u8>) {
        out.push(b'"');
        if self.chance(0.1) {
            let bad = if self.wild { 0.02 } else { 0.0 };
            self.string_contents(out, bad);
        } else {
            out.extend_from_slice(self.pick(KEYS).as_bytes());
        }
        out.push(b'"');
    }

    /// Arrays and objects nested around 128 deep (serde_json's limit).
    pub fn deep(&mut self, out: &mut Vec<u8>) {
        let n = self.rng.random_range(120..135);
        let open: Vec<bool> = (0..n).map(|_| self.chance(0.5)).collect();
        for &o in &open {
            out.extend_from_slice(if o { b"{\"a\":" } else { b"[" });
        }
        out.push(b'1');
        for &o in open.iter().rev() {
            out.push(if o { b'}' } else { b']' });
        }
    }

    /// Damages a document: cuts it, adds a BOM or trailing bytes, changes a byte.
    pub fn mutate(&mut self, doc: &mut Vec<u8>) {
        match self.below(7) {
            0 if !doc.is_empty() => {
                let at = self.below(doc.len());
                doc.truncate(at);
            }
            1 => {
                doc.splice(0..0, *b"\xef\xbb\xbf");
            }
            2 => {
                let tail: &[u8] = self.pick(&[&b" x"[..], b"{}", b",", b"\0", b"\n\n", b"}"]);
                doc.extend_from_slice(tail);
            }
            3 if !doc.is_empty() => {
                let at = self.below(doc.len());
                doc[at] = self.pick(&[&b"\""[..], b"\\", b"{", b"}", b"\xff", b" ", b"0"])[0];
            }
            4 if !doc.is_empty() => {
                let at = self.below(doc.len());
                doc.remove(at);
            }
            5 => {
                let at = self.below(doc.len() + 1);
                let b = self.pick(&[&b"\""[..], b",", b":", b"\\", b"]"]);
                doc.insert(at, b[0]);
            }
            _ => doc.extend_from_slice(b" \t\r\n"),
        }
    }

    /// Cut points splitting `len` bytes into frames: one frame, a few, or many tiny ones.
    pub fn splits(&mut self, len: usize) -> Vec<usize> {
        let mut cuts: Vec<usize> = match self.below(4) {
            0 => vec![],
            1 if len < 4000 => (1..len).filter(|_| self.chance(0.5)).collect(),
            _ => (0..self.below(8)).map(|_| self.below(len + 1)).collect(),
        };
        cuts.push(0);
        cuts.push(len);
        cuts.sort_unstable();
        cuts.dedup();
        cuts
    }
}

/// The frames between consecutive cut points.
pub fn frames<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    cuts.windows(2).map(|w| &input[w[0]..w[1]]).collect()
}
