//! A small WGSL preprocessor, so that shader variants are written out in the source instead of
//! being made by string surgery. It knows no op. Directives are whole lines whose first
//! non-blank character is `#` (WGSL itself never uses `#`):
//!
//! - `#if NAME` / `#else` / `#endif`: keep one branch; `NAME` is a flag of the [`Defines`].
//! - `#for I in A..B` / `#endfor`: repeat the body for `I` = A, A+1, ..., B-1 (generated
//!   unrolls); `A` and `B` are integers or numeric values of the [`Defines`].
//! - `{{NAME}}` anywhere in a line: a value of the [`Defines`] or a loop variable;
//!   `{{NAME+N}}` and `{{NAME-N}}` add to or subtract from a numeric one.
//!
//! Blocks nest. Every error is a [`WgslError`] with the file and line, never a panic.

use std::fmt::Write as _;

/// The names a source is preprocessed with: flags for `#if`, values for `{{NAME}}`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Defines {
    entries: Vec<(String, Define)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Define {
    Flag(bool),
    Value(String),
}

impl Defines {
    /// No names defined.
    pub fn new() -> Self {
        Self::default()
    }

    /// Defines the flag `name` (for `#if name`); a later definition replaces an earlier one.
    pub fn flag(mut self, name: &str, on: bool) -> Self {
        self.set(name, Define::Flag(on));
        self
    }

    /// Defines the value `name` (for `{{name}}`, and as a `#for` bound if it is an integer).
    pub fn value(mut self, name: &str, value: impl ToString) -> Self {
        self.set(name, Define::Value(value.to_string()));
        self
    }

    fn set(&mut self, name: &str, d: Define) {
        self.entries.retain(|(n, _)| n != name);
        self.entries.push((name.to_string(), d));
    }

    fn get(&self, name: &str) -> Option<&Define> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, d)| d)
    }
}

/// A preprocessing error: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {kind}")]
pub struct WgslError {
    /// The file being preprocessed.
    pub file: String,
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub kind: WgslErrorKind,
}

/// What is wrong in a [`WgslError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WgslErrorKind {
    /// `#else`, `#endif` or `#endfor` with no open block of that kind.
    #[error("`{0}` without a matching opening directive")]
    Unmatched(String),
    /// A block still open at the end of the file (the line is its opening directive).
    #[error("`{0}` is never closed")]
    Unclosed(String),
    /// A directive that is not one of the above, or one with malformed arguments.
    #[error("malformed directive `{0}`")]
    Malformed(String),
    /// A name that is neither defined nor a loop variable.
    #[error("unknown name `{0}`")]
    Unknown(String),
    /// A flag used as a value, or a value as a flag.
    #[error("`{0}` is a {1}, not a {2}")]
    WrongKind(String, &'static str, &'static str),
    /// Arithmetic or a loop bound on a value that is not an integer.
    #[error("`{0}` is not an integer")]
    NotInteger(String),
    /// A `{{` with no `}}` after it on its line.
    #[error("unterminated `{{{{` substitution")]
    Unterminated,
}

/// A parsed line or block.
enum Node<'a> {
    Text(usize, &'a str),
    If {
        name: &'a str,
        line: usize,
        then: Vec<Node<'a>>,
        other: Vec<Node<'a>>,
    },
    For {
        var: &'a str,
        from: &'a str,
        to: &'a str,
        line: usize,
        body: Vec<Node<'a>>,
    },
}

/// An open block while parsing: its directive, line and the nodes gathered so far.
struct Open<'a> {
    directive: &'a str,
    line: usize,
    head: Vec<&'a str>,
    nodes: Vec<Node<'a>>,
    /// For `#if`: the `then` branch once `#else` was met.
    then: Option<Vec<Node<'a>>>,
}

/// `source` (the text of `file`) with its directives applied and its `{{…}}` substituted.
pub fn preprocess(file: &str, source: &str, defines: &Defines) -> Result<String, WgslError> {
    let err = |line: usize, kind| WgslError {
        file: file.to_string(),
        line,
        kind,
    };
    let mut stack: Vec<Open> = vec![Open {
        directive: "",
        line: 0,
        head: Vec::new(),
        nodes: Vec::new(),
        then: None,
    }];
    for (i, text) in source.lines().enumerate() {
        let line = i + 1;
        let Some(directive) = text.trim_start().strip_prefix('#') else {
            stack.last_mut().unwrap().nodes.push(Node::Text(line, text));
            continue;
        };
        let words: Vec<&str> = directive.split_whitespace().collect();
        let malformed = || err(line, WgslErrorKind::Malformed(text.trim().to_string()));
        match words.as_slice() {
            ["if", name] => stack.push(Open {
                directive: "#if",
                line,
                head: vec![name],
                nodes: Vec::new(),
                then: None,
            }),
            ["for", var, "in", range] => {
                let (from, to) = range.split_once("..").ok_or_else(malformed)?;
                if !is_name(var) || from.is_empty() || to.is_empty() {
                    return Err(malformed());
                }
                stack.push(Open {
                    directive: "#for",
                    line,
                    head: vec![var, from, to],
                    nodes: Vec::new(),
                    then: None,
                });
            }
            ["else"] => {
                let top = stack.last_mut().unwrap();
                if top.directive != "#if" || top.then.is_some() {
                    return Err(err(line, WgslErrorKind::Unmatched("#else".into())));
                }
                top.then = Some(std::mem::take(&mut top.nodes));
            }
            [end @ ("endif" | "endfor")] => {
                let opener = if *end == "endif" { "#if" } else { "#for" };
                if stack.len() == 1 || stack.last().unwrap().directive != opener {
                    return Err(err(line, WgslErrorKind::Unmatched(format!("#{end}"))));
                }
                let open = stack.pop().unwrap();
                let node = if opener == "#if" {
                    let (then, other) = match open.then {
                        Some(then) => (then, open.nodes),
                        None => (open.nodes, Vec::new()),
                    };
                    Node::If {
                        name: open.head[0],
                        line: open.line,
                        then,
                        other,
                    }
                } else {
                    Node::For {
                        var: open.head[0],
                        from: open.head[1],
                        to: open.head[2],
                        line: open.line,
                        body: open.nodes,
                    }
                };
                stack.last_mut().unwrap().nodes.push(node);
            }
            _ => return Err(malformed()),
        }
    }
    if stack.len() > 1 {
        let open = stack.pop().unwrap();
        return Err(err(
            open.line,
            WgslErrorKind::Unclosed(open.directive.into()),
        ));
    }
    let mut out = String::with_capacity(source.len() * 2);
    let mut loops = Vec::new();
    emit(&stack[0].nodes, defines, &mut loops, &mut out).map_err(|(line, kind)| err(line, kind))?;
    Ok(out)
}

type Failure = (usize, WgslErrorKind);

/// Appends the expansion of `nodes` to `out`; `loops` holds the enclosing loop variables.
fn emit<'a>(
    nodes: &[Node<'a>],
    defines: &Defines,
    loops: &mut Vec<(&'a str, i64)>,
    out: &mut String,
) -> Result<(), Failure> {
    for node in nodes {
        match node {
            Node::Text(line, text) => {
                substitute(text, defines, loops, out).map_err(|k| (*line, k))?;
                out.push('\n');
            }
            Node::If {
                name,
                line,
                then,
                other,
            } => {
                let on = match defines.get(name) {
                    Some(Define::Flag(on)) => *on,
                    Some(Define::Value(_)) => {
                        let kind = WgslErrorKind::WrongKind(name.to_string(), "value", "flag");
                        return Err((*line, kind));
                    }
                    None => return Err((*line, WgslErrorKind::Unknown(name.to_string()))),
                };
                emit(if on { then } else { other }, defines, loops, out)?;
            }
            Node::For {
                var,
                from,
                to,
                line,
                body,
            } => {
                let from = bound(from, defines, loops).map_err(|k| (*line, k))?;
                let to = bound(to, defines, loops).map_err(|k| (*line, k))?;
                for i in from..to {
                    loops.push((var, i));
                    let r = emit(body, defines, loops, out);
                    loops.pop();
                    r?;
                }
            }
        }
    }
    Ok(())
}

/// A `#for` bound: an integer, or a name with an integer value.
fn bound(text: &str, defines: &Defines, loops: &[(&str, i64)]) -> Result<i64, WgslErrorKind> {
    match text.parse() {
        Ok(n) => Ok(n),
        Err(_) => integer(text, &lookup(text, defines, loops)?),
    }
}

/// The value of a `{{…}}` name: a loop variable (innermost first) or a defined value.
fn lookup(name: &str, defines: &Defines, loops: &[(&str, i64)]) -> Result<String, WgslErrorKind> {
    if let Some((_, i)) = loops.iter().rev().find(|(v, _)| *v == name) {
        return Ok(i.to_string());
    }
    match defines.get(name) {
        Some(Define::Value(v)) => Ok(v.clone()),
        Some(Define::Flag(_)) => Err(WgslErrorKind::WrongKind(name.into(), "flag", "value")),
        None if is_name(name) => Err(WgslErrorKind::Unknown(name.into())),
        None => Err(WgslErrorKind::Malformed(format!("{{{{{name}}}}}"))),
    }
}

fn integer(name: &str, value: &str) -> Result<i64, WgslErrorKind> {
    value
        .parse()
        .map_err(|_| WgslErrorKind::NotInteger(name.into()))
}

/// Appends `text` to `out` with every `{{NAME}}`, `{{NAME+N}}` and `{{NAME-N}}` replaced.
fn substitute(
    text: &str,
    defines: &Defines,
    loops: &[(&str, i64)],
    out: &mut String,
) -> Result<(), WgslErrorKind> {
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or(WgslErrorKind::Unterminated)?;
        let expr = after[..end].trim();
        match expr.find(['+', '-']) {
            Some(op) => {
                let name = expr[..op].trim();
                let n = expr[op + 1..].trim();
                let n: i64 = n
                    .parse()
                    .map_err(|_| WgslErrorKind::Malformed(format!("{{{{{expr}}}}}")))?;
                let v = integer(name, &lookup(name, defines, loops)?)?;
                let r = if &expr[op..op + 1] == "+" {
                    v + n
                } else {
                    v - n
                };
                let _ = write!(out, "{r}");
            }
            None => out.push_str(&lookup(expr, defines, loops)?),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(())
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(source: &str, defines: &Defines) -> Result<String, WgslError> {
        preprocess("t.wgsl", source, defines)
    }

    fn fails(source: &str, defines: &Defines) -> (usize, WgslErrorKind) {
        let e = run(source, defines).unwrap_err();
        assert_eq!(e.file, "t.wgsl");
        (e.line, e.kind)
    }

    #[test]
    fn plain_text_passes_through() {
        let src = "fn f() -> u32 {\n    return 1u;\n}\n";
        assert_eq!(run(src, &Defines::new()).unwrap(), src);
    }

    #[test]
    fn if_else_keeps_one_branch_and_nests() {
        let src = "a\n#if X\nb\n  #if Y\nc\n  #else\nd\n  #endif\n#else\ne\n#endif\nf\n";
        let d = |x, y| Defines::new().flag("X", x).flag("Y", y);
        assert_eq!(run(src, &d(true, true)).unwrap(), "a\nb\nc\nf\n");
        assert_eq!(run(src, &d(true, false)).unwrap(), "a\nb\nd\nf\n");
        assert_eq!(run(src, &d(false, true)).unwrap(), "a\ne\nf\n");
        // An `#if` without `#else`.
        assert_eq!(run("#if X\nb\n#endif\n", &d(false, false)).unwrap(), "");
    }

    #[test]
    fn values_are_substituted() {
        let d = Defines::new().value("HF", "f16").value("S", 8);
        let out = run("alias hf = {{HF}};\nvar m: coop_mat{{ S }}x{{S}};\n", &d).unwrap();
        assert_eq!(out, "alias hf = f16;\nvar m: coop_mat8x8;\n");
        assert_eq!(run("{{S+1}} {{S-8}}\n", &d).unwrap(), "9 0\n");
    }

    #[test]
    fn for_unrolls_and_nests() {
        let src = "#for I in 0..2\n#for J in 1..N\nc{{I}}{{J}} = x{{I+1}} * w{{J-1}};\n#endfor\n#endfor\n";
        let d = Defines::new().value("N", 3);
        let expected = "c01 = x1 * w0;\nc02 = x1 * w1;\nc11 = x2 * w0;\nc12 = x2 * w1;\n";
        assert_eq!(run(src, &d).unwrap(), expected);
        // An empty range emits nothing; the loop variable is gone after the loop.
        assert_eq!(run("#for I in 3..3\n{{I}}\n#endfor\n", &d).unwrap(), "");
        let (line, kind) = fails("#for I in 0..1\n#endfor\n{{I}}\n", &d);
        assert_eq!((line, kind), (3, WgslErrorKind::Unknown("I".into())));
    }

    #[test]
    fn unbalanced_blocks_are_errors_with_their_line() {
        let d = Defines::new().flag("X", true);
        let cases: [(&str, usize, WgslErrorKind); 6] = [
            ("a\n#endif\n", 2, WgslErrorKind::Unmatched("#endif".into())),
            ("#else\n", 1, WgslErrorKind::Unmatched("#else".into())),
            ("a\n#if X\nb\n", 2, WgslErrorKind::Unclosed("#if".into())),
            (
                "#for I in 0..2\n",
                1,
                WgslErrorKind::Unclosed("#for".into()),
            ),
            (
                "#if X\n#endfor\n",
                2,
                WgslErrorKind::Unmatched("#endfor".into()),
            ),
            (
                "#if X\n#else\n#else\n#endif\n",
                3,
                WgslErrorKind::Unmatched("#else".into()),
            ),
        ];
        for (src, line, kind) in cases {
            assert_eq!(fails(src, &d), (line, kind), "{src:?}");
        }
    }

    #[test]
    fn unknown_and_misused_names_are_errors() {
        let d = Defines::new().flag("F", true).value("V", "x");
        assert_eq!(
            fails("a\n#if NOPE\n#endif\n", &d),
            (2, WgslErrorKind::Unknown("NOPE".into()))
        );
        assert_eq!(
            fails("{{NOPE}}\n", &d),
            (1, WgslErrorKind::Unknown("NOPE".into()))
        );
        assert_eq!(
            fails("#if V\n#endif\n", &d),
            (1, WgslErrorKind::WrongKind("V".into(), "value", "flag"))
        );
        assert_eq!(
            fails("{{F}}\n", &d),
            (1, WgslErrorKind::WrongKind("F".into(), "flag", "value"))
        );
        assert_eq!(
            fails("{{V+1}}\n", &d),
            (1, WgslErrorKind::NotInteger("V".into()))
        );
        assert_eq!(
            fails("#for I in 0..V\n#endfor\n", &d),
            (1, WgslErrorKind::NotInteger("V".into()))
        );
    }

    #[test]
    fn leftover_braces_and_bad_directives_are_errors() {
        let d = Defines::new().value("V", 1);
        assert_eq!(
            fails("ok\nx = {{V;\n", &d),
            (2, WgslErrorKind::Unterminated)
        );
        assert_eq!(
            fails("{{V*2}}\n", &d),
            (1, WgslErrorKind::Malformed("{{V*2}}".into()))
        );
        for bad in [
            "#include \"x.wgsl\"",
            "#if",
            "#for I 0..2",
            "#for 1 in 0..2",
            "#for I in 2",
        ] {
            let (line, kind) = fails(&format!("a\n{bad}\n"), &d);
            assert_eq!(line, 2, "{bad}");
            assert_eq!(kind, WgslErrorKind::Malformed(bad.into()), "{bad}");
        }
        // The message names the file and the line.
        let e = run("a\n#endif\n", &d).unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.wgsl:2: `#endif` without a matching opening directive"
        );
    }
}
