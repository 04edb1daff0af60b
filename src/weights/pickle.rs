//! A restricted reader of Python pickles: only what a PyTorch `state_dict` uses.
//!
//! Unpickling in Python runs code (any global can be called through `REDUCE`), so a `.pth`
//! file is a program. This reader executes nothing: it knows a fixed list of opcodes (those
//! `torch.save` writes for a dict of tensors, protocols 2 to 4) and three kinds of globals
//! (`collections.OrderedDict`, `torch._utils._rebuild_tensor_v2` and the storage types),
//! and builds plain values from them. Any other opcode or global is refused with an error
//! that names it. Memory and work are bounded by the input's size.

use std::rc::Rc;

/// Element type of a PyTorch storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageType {
    /// `torch.FloatStorage` (float32).
    Float,
    /// `torch.HalfStorage` (float16).
    Half,
    /// `torch.DoubleStorage` (float64).
    Double,
    /// `torch.BFloat16Storage`.
    BFloat16,
}

impl StorageType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            StorageType::Float => 4,
            StorageType::Half | StorageType::BFloat16 => 2,
            StorageType::Double => 8,
        }
    }
}

/// A global the reader accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Global {
    /// `collections.OrderedDict`.
    OrderedDict,
    /// `torch._utils._rebuild_tensor_v2`.
    RebuildTensorV2,
    /// A storage type (`torch.FloatStorage`, ...).
    Storage(StorageType),
}

/// A persistent reference to a storage (`('storage', type, key, location, numel)`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageRef {
    /// Element type.
    pub dtype: StorageType,
    /// Key: the file name under `data/` (zip) or the legacy stream's storage id.
    pub key: String,
    /// Elements in the storage.
    pub numel: u64,
}

/// A tensor view of a storage (`_rebuild_tensor_v2(storage, offset, size, stride, ...)`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorRef {
    /// The storage.
    pub storage: StorageRef,
    /// First element.
    pub offset: u64,
    /// Shape.
    pub size: Vec<u64>,
    /// Strides in elements.
    pub stride: Vec<u64>,
}

/// A value built by the reader.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An integer that fits 64 bits.
    Int(i64),
    /// A longer integer, little-endian two's complement bytes (`LONG1`).
    Long(Vec<u8>),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A tuple.
    Tuple(Vec<Rc<Value>>),
    /// A list.
    List(Vec<Rc<Value>>),
    /// A dict or OrderedDict, in insertion order.
    Dict(Vec<(Rc<Value>, Rc<Value>)>),
    /// An accepted global.
    Global(Global),
    /// A persistent storage reference.
    Storage(StorageRef),
    /// A tensor.
    Tensor(TensorRef),
}

/// Most values on the stack, in the memo and in all containers together, relative to the
/// input's length (each opcode is at least one byte; cloning a shared container is charged).
const WORK_PER_BYTE: usize = 16;

fn global(module: &str, name: &str) -> Result<Global, String> {
    Ok(match (module, name) {
        ("collections", "OrderedDict") => Global::OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2") => Global::RebuildTensorV2,
        ("torch", "FloatStorage") => Global::Storage(StorageType::Float),
        ("torch", "HalfStorage") => Global::Storage(StorageType::Half),
        ("torch", "DoubleStorage") => Global::Storage(StorageType::Double),
        ("torch", "BFloat16Storage") => Global::Storage(StorageType::BFloat16),
        _ => {
            return Err(format!(
                "the pickle refers to '{module}.{name}', which a state_dict of float tensors \
                 does not use; refusing it (unpickled by Python, it could run code)"
            ))
        }
    })
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Rc<Value>>,
    marks: Vec<usize>,
    memo: std::collections::HashMap<u32, Rc<Value>>,
    work: usize,
    budget: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| format!("pickle truncated at byte {}", self.pos))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().unwrap()))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn line(&mut self) -> Result<&'a str, String> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("pickle truncated in a GLOBAL name")?;
        let s = std::str::from_utf8(&rest[..n]).map_err(|_| "GLOBAL name is not UTF-8")?;
        self.pos += n + 1;
        Ok(s)
    }
    fn charge(&mut self, n: usize) -> Result<(), String> {
        self.work = self.work.saturating_add(n);
        if self.work > self.budget {
            return Err("pickle does more work than its size allows (a hostile file?)".into());
        }
        Ok(())
    }
    fn push(&mut self, v: Value) -> Result<(), String> {
        self.charge(1)?;
        self.stack.push(Rc::new(v));
        Ok(())
    }
    fn pop(&mut self) -> Result<Rc<Value>, String> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(format!("pickle stack underflow at byte {}", self.pos));
        }
        Ok(self.stack.pop().unwrap())
    }
    fn pop_mark(&mut self) -> Result<Vec<Rc<Value>>, String> {
        let m = self
            .marks
            .pop()
            .ok_or_else(|| format!("pickle has no MARK before byte {}", self.pos))?;
        Ok(self.stack.split_off(m))
    }
    fn top_mut(&mut self) -> Result<&mut Value, String> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(format!("pickle stack underflow at byte {}", self.pos));
        }
        let top = self.stack.last_mut().unwrap();
        if Rc::strong_count(top) > 1 {
            // Shared with the memo: copy on write, charged by its size.
            let n = match &**top {
                Value::List(v) | Value::Tuple(v) => v.len(),
                Value::Dict(v) => v.len(),
                _ => 1,
            };
            self.work = self.work.saturating_add(n);
            if self.work > self.budget {
                return Err("pickle does more work than its size allows (a hostile file?)".into());
            }
        }
        Ok(Rc::make_mut(self.stack.last_mut().unwrap()))
    }
    fn memo_put(&mut self, k: u32) -> Result<(), String> {
        let v = self
            .stack
            .last()
            .cloned()
            .ok_or("pickle memoizes an empty stack")?;
        self.charge(1)?;
        self.memo.insert(k, v);
        Ok(())
    }
    fn memo_get(&mut self, k: u32) -> Result<(), String> {
        let v = self
            .memo
            .get(&k)
            .cloned()
            .ok_or_else(|| format!("pickle reads memo entry {k}, which was never stored"))?;
        self.charge(1)?;
        self.stack.push(v);
        Ok(())
    }
    fn set_items(&mut self, items: Vec<Rc<Value>>) -> Result<(), String> {
        if !items.len().is_multiple_of(2) {
            return Err("SETITEMS with an odd number of values".into());
        }
        self.charge(items.len())?;
        match self.top_mut()? {
            Value::Dict(d) => {
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    d.push((k, v));
                }
                Ok(())
            }
            v => Err(format!("SETITEMS on a {}, not a dict", kind(v))),
        }
    }
    fn append(&mut self, items: Vec<Rc<Value>>) -> Result<(), String> {
        self.charge(items.len())?;
        match self.top_mut()? {
            Value::List(l) => {
                l.extend(items);
                Ok(())
            }
            v => Err(format!("APPEND on a {}, not a list", kind(v))),
        }
    }

    fn run(&mut self) -> Result<Rc<Value>, String> {
        loop {
            let at = self.pos;
            let op = self.u8()?;
            match op {
                0x80 => {
                    let p = self.u8()?;
                    if p > 5 {
                        return Err(format!("unsupported pickle protocol {p}"));
                    }
                }
                0x95 => {
                    self.take(8)?; // FRAME: length of the next frame; data follows inline.
                }
                b'.' => {
                    let v = self.pop()?;
                    if !self.stack.is_empty() || !self.marks.is_empty() {
                        return Err("pickle STOP with values left on the stack".into());
                    }
                    return Ok(v);
                }
                b'(' => {
                    self.charge(1)?;
                    self.marks.push(self.stack.len());
                }
                b'}' => self.push(Value::Dict(Vec::new()))?,
                b']' => self.push(Value::List(Vec::new()))?,
                b')' => self.push(Value::Tuple(Vec::new()))?,
                b'N' => self.push(Value::None)?,
                0x88 => self.push(Value::Bool(true))?,
                0x89 => self.push(Value::Bool(false))?,
                b'J' => {
                    let v = self.u32()? as i32;
                    self.push(Value::Int(v as i64))?
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(Value::Int(v as i64))?
                }
                b'M' => {
                    let v = self.u16()?;
                    self.push(Value::Int(v as i64))?
                }
                0x8a => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?.to_vec();
                    let v = if n == 0 {
                        Value::Int(0)
                    } else if n <= 8 {
                        // Sign-extend the little-endian two's complement bytes.
                        let fill = if b[n - 1] & 0x80 != 0 { 0xff } else { 0 };
                        let mut w = [fill; 8];
                        w[..n].copy_from_slice(&b);
                        Value::Int(i64::from_le_bytes(w))
                    } else {
                        Value::Long(b)
                    };
                    self.push(v)?
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.take(8)?.try_into().unwrap());
                    self.push(Value::Float(v))?
                }
                b'X' | 0x8c => {
                    let n = if op == b'X' {
                        self.u32()? as usize
                    } else {
                        self.u8()? as usize
                    };
                    let s = std::str::from_utf8(self.take(n)?)
                        .map_err(|_| format!("string at byte {at} is not UTF-8"))?
                        .to_string();
                    self.charge(n / 16)?;
                    self.push(Value::Str(s))?
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.push(Value::Global(global(module, name)?))?
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (&*module, &*name) {
                        (Value::Str(m), Value::Str(n)) => {
                            let g = global(m, n)?;
                            self.push(Value::Global(g))?
                        }
                        _ => return Err("STACK_GLOBAL needs two strings".into()),
                    }
                }
                b'q' => {
                    let k = self.u8()? as u32;
                    self.memo_put(k)?
                }
                b'r' => {
                    let k = self.u32()?;
                    self.memo_put(k)?
                }
                0x94 => {
                    let k = self.memo.len() as u32;
                    self.memo_put(k)?
                }
                b'h' => {
                    let k = self.u8()? as u32;
                    self.memo_get(k)?
                }
                b'j' => {
                    let k = self.u32()?;
                    self.memo_get(k)?
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Value::Tuple(items))?
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.push(Value::Tuple(items))?
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items(vec![k, v])?
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.set_items(items)?
                }
                b'a' => {
                    let v = self.pop()?;
                    self.append(vec![v])?
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.append(items)?
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let s = storage(&pid)?;
                    self.push(Value::Storage(s))?
                }
                b'R' => {
                    let args = self.pop()?;
                    let f = self.pop()?;
                    let v = reduce(&f, &args)?;
                    self.push(v)?
                }
                b'b' => {
                    // BUILD: an OrderedDict's attributes (the state_dict's `_metadata`,
                    // versions of submodules) are not needed; they are dropped.
                    let _state = self.pop()?;
                    match &**self.stack.last().ok_or("BUILD on an empty stack")? {
                        Value::Dict(_) => {}
                        v => return Err(format!("BUILD on a {}", kind(v))),
                    }
                }
                _ => {
                    return Err(format!(
                        "pickle opcode 0x{op:02x} at byte {at} is not one a state_dict uses"
                    ))
                }
            }
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::None => "None",
        Value::Bool(_) => "bool",
        Value::Int(_) | Value::Long(_) => "int",
        Value::Float(_) => "float",
        Value::Str(_) => "str",
        Value::Tuple(_) => "tuple",
        Value::List(_) => "list",
        Value::Dict(_) => "dict",
        Value::Global(_) => "global",
        Value::Storage(_) => "storage",
        Value::Tensor(_) => "tensor",
    }
}

fn int(v: &Value, what: &str) -> Result<u64, String> {
    match v {
        Value::Int(i) if *i >= 0 => Ok(*i as u64),
        _ => Err(format!("{what} is not a non-negative integer")),
    }
}

fn ints(v: &Value, what: &str) -> Result<Vec<u64>, String> {
    match v {
        Value::Tuple(t) => t.iter().map(|x| int(x, what)).collect(),
        _ => Err(format!("{what} is not a tuple")),
    }
}

/// `('storage', StorageType, key, location, numel[, view metadata])`.
fn storage(pid: &Value) -> Result<StorageRef, String> {
    let bad = || "persistent id is not a storage reference".to_string();
    let Value::Tuple(t) = pid else {
        return Err(bad());
    };
    if t.len() < 5 || *t[0] != Value::Str("storage".into()) {
        return Err(bad());
    }
    let Value::Global(Global::Storage(dtype)) = *t[1] else {
        return Err("persistent id names no storage type".into());
    };
    let Value::Str(key) = &*t[2] else {
        return Err("storage key is not a string".into());
    };
    if t.len() > 5 && *t[5] != Value::None {
        return Err("storage views (pre-1.0 shared storages) are not supported".into());
    }
    Ok(StorageRef {
        dtype,
        key: key.clone(),
        numel: int(&t[4], "storage size")?,
    })
}

fn reduce(f: &Value, args: &Value) -> Result<Value, String> {
    let Value::Tuple(a) = args else {
        return Err("REDUCE arguments are not a tuple".into());
    };
    match f {
        Value::Global(Global::OrderedDict) if a.is_empty() => Ok(Value::Dict(Vec::new())),
        Value::Global(Global::RebuildTensorV2) if a.len() >= 4 => {
            let Value::Storage(s) = &*a[0] else {
                return Err("_rebuild_tensor_v2 of something that is not a storage".into());
            };
            let size = ints(&a[2], "tensor size")?;
            let stride = ints(&a[3], "tensor stride")?;
            if size.len() != stride.len() {
                return Err("tensor size and stride differ in length".into());
            }
            Ok(Value::Tensor(TensorRef {
                storage: s.clone(),
                offset: int(&a[1], "storage offset")?,
                size,
                stride,
            }))
        }
        _ => Err(format!(
            "REDUCE of a {} with {} arguments is not part of a state_dict",
            kind(f),
            a.len()
        )),
    }
}

/// Reads one pickle from the start of `data`: its value and the bytes it took.
pub fn load(data: &[u8]) -> Result<(Rc<Value>, usize), String> {
    let mut r = Reader {
        data,
        pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: Default::default(),
        work: 0,
        budget: data.len().saturating_mul(WORK_PER_BYTE).max(1 << 16),
    };
    let v = r.run()?;
    Ok((v, r.pos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_foreign_global_is_refused_and_nothing_runs() {
        // pickle.dumps(os.system-style REDUCE): c os\nsystem\n (S'echo hi' tR.
        let p = b"\x80\x02cos\nsystem\nq\x00X\x07\x00\x00\x00echo hi\x85R.";
        let e = load(p).unwrap_err();
        assert!(e.contains("os.system"), "{e}");
        let p = b"\x80\x02cbuiltins\neval\n.";
        assert!(load(p).unwrap_err().contains("builtins.eval"));
    }

    #[test]
    fn an_ordered_dict_of_ints_reads() {
        let p = b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01(X\x01\x00\x00\x00aK\x05X\x01\x00\x00\x00bM\x00\x01u.";
        let (v, n) = load(p).unwrap();
        assert_eq!(n, p.len());
        let Value::Dict(d) = &*v else { panic!() };
        assert_eq!(d.len(), 2);
        assert_eq!(*d[1].1, Value::Int(256));
    }

    #[test]
    fn truncation_and_unknown_opcodes_are_errors() {
        let p = b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01(X\x01\x00\x00\x00aK\x05u.";
        for n in 0..p.len() {
            assert!(load(&p[..n]).is_err(), "{n}");
        }
        assert!(load(b"\x80\x02cposix\nsystem\n.").is_err());
        assert!(load(b"\x80\x02I1\n.").unwrap_err().contains("0x49"));
    }
}
