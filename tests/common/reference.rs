//! CPU references in float64, written plainly and independently of the kernels, shared by
//! the kernel tests (`kernels`, `backward`, `train_grad*`): one convolution (any stride,
//! zero or reflect padding, transposed), one instance norm with its backward, one nearest
//! upsampling, 2×2 pooling, the Gram matrix, a matrix product. Tensors are NHWC, kernels
//! `[k, k, cin, cout]`.

/// `v` in float64.
pub fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// `Σ a · b`, in float64.
pub fn dot(a: &[f64], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * *y as f64).sum()
}

/// TensorFlow "SAME": output length and padding before.
pub fn same(n: usize, k: usize, s: usize) -> (usize, usize) {
    let out = n.div_ceil(s);
    (out, ((out - 1) * s + k).saturating_sub(n) / 2)
}

/// Padding before of a transposed convolution from `n` to `out` pixels.
pub fn tpad(n: usize, k: usize, s: usize, out: usize) -> usize {
    ((n - 1) * s + k).saturating_sub(out) / 2
}

/// The geometry of a `k × k` convolution over a batch of `n`: input `(h, w)`, output
/// `(ho, wo)`, padding before `(top, left)`.
/// - regular: output row `oy` reads input row `oy·stride − top + ky`; outside the input it
///   reads zero, or with `reflect` the row mirrored at the border (`-1 → 1`, `h → h − 2`);
/// - `transposed`: input row `i` adds into output row `stride·i + ky − top`.
#[derive(Clone, Copy, Debug)]
pub struct ConvGeometry {
    pub n: usize,
    pub input: (usize, usize),
    pub output: (usize, usize),
    pub k: usize,
    pub stride: usize,
    pub pad: (usize, usize),
    pub reflect: bool,
    pub transposed: bool,
}

/// A convolution as its list of connections (input pixel, output pixel, tap): the forward,
/// the weight gradient and the input gradient are sums over the same list.
#[derive(Clone)]
pub struct Conv {
    pairs: Vec<(usize, usize, usize)>,
    taps: usize,
    in_px: usize,
    out_px: usize,
}

/// `i` mirrored into `[0, n)` at the border (once, without repeating the edge).
fn reflect(i: isize, n: usize) -> isize {
    let n = n as isize;
    let r = i.abs();
    if r >= n {
        2 * n - 2 - r
    } else {
        r
    }
}

impl ConvGeometry {
    /// A regular convolution with TensorFlow "SAME" padding (zero).
    pub fn same(n: usize, (h, w): (usize, usize), k: usize, stride: usize) -> Self {
        let ((ho, pt), (wo, pl)) = (same(h, k, stride), same(w, k, stride));
        ConvGeometry {
            n,
            input: (h, w),
            output: (ho, wo),
            k,
            stride,
            pad: (pt, pl),
            reflect: false,
            transposed: false,
        }
    }

    /// A transposed convolution from `(h, w)` to `output`, padded as the library pads it.
    pub fn transposed(
        n: usize,
        (h, w): (usize, usize),
        output: (usize, usize),
        k: usize,
        stride: usize,
    ) -> Self {
        ConvGeometry {
            n,
            input: (h, w),
            output,
            k,
            stride,
            pad: (tpad(h, k, stride, output.0), tpad(w, k, stride, output.1)),
            reflect: false,
            transposed: true,
        }
    }

    /// The connections of this geometry.
    pub fn conv(&self) -> Conv {
        assert!(
            !(self.reflect && self.transposed),
            "no reflect padding transposed"
        );
        let ((h, w), (ho, wo), k, s) = (self.input, self.output, self.k, self.stride);
        let src = |o: usize, kk: usize, p: usize, lim: usize| -> Option<usize> {
            let v = if self.transposed {
                let t = o as isize + p as isize - kk as isize;
                if t < 0 || t % s as isize != 0 {
                    return None;
                }
                t / s as isize
            } else {
                let v = (o * s + kk) as isize - p as isize;
                if self.reflect {
                    reflect(v, lim)
                } else {
                    v
                }
            };
            (v >= 0 && (v as usize) < lim).then_some(v as usize)
        };
        let mut pairs = Vec::new();
        for b in 0..self.n {
            for oy in 0..ho {
                for ox in 0..wo {
                    for ky in 0..k {
                        for kx in 0..k {
                            let (sy, sx) = (src(oy, ky, self.pad.0, h), src(ox, kx, self.pad.1, w));
                            if let (Some(iy), Some(ix)) = (sy, sx) {
                                pairs.push((
                                    (b * h + iy) * w + ix,
                                    (b * ho + oy) * wo + ox,
                                    ky * k + kx,
                                ));
                            }
                        }
                    }
                }
            }
        }
        Conv {
            pairs,
            taps: k * k,
            in_px: self.n * h * w,
            out_px: self.n * ho * wo,
        }
    }
}

impl Conv {
    /// `y = conv(x, wt)` (`ci` input, `co` output channels).
    pub fn forward(&self, x: &[f64], ci: usize, wt: &[f64], co: usize) -> Vec<f64> {
        let mut y = vec![0.0; self.out_px * co];
        for &(pi, po, t) in &self.pairs {
            for c in 0..ci {
                let xv = x[pi * ci + c];
                for o in 0..co {
                    y[po * co + o] += xv * wt[(t * ci + c) * co + o];
                }
            }
        }
        y
    }

    /// `dL/dwt` for `dy = dL/dy`.
    pub fn weight_grad(&self, x: &[f64], ci: usize, dy: &[f64], co: usize) -> Vec<f64> {
        let mut dw = vec![0.0; self.taps * ci * co];
        for &(pi, po, t) in &self.pairs {
            for c in 0..ci {
                for o in 0..co {
                    dw[(t * ci + c) * co + o] += x[pi * ci + c] * dy[po * co + o];
                }
            }
        }
        dw
    }

    /// `dL/dx` for `dy = dL/dy`.
    pub fn input_grad(&self, dy: &[f64], co: usize, wt: &[f64], ci: usize) -> Vec<f64> {
        let mut dx = vec![0.0; self.in_px * ci];
        for &(pi, po, t) in &self.pairs {
            for c in 0..ci {
                for o in 0..co {
                    dx[pi * ci + c] += dy[po * co + o] * wt[(t * ci + c) * co + o];
                }
            }
        }
        dx
    }
}

/// `relu?(y + bias)`, the bias per channel of `y`'s last axis.
pub fn bias_relu(mut y: Vec<f64>, bias: Option<&[f64]>, relu: bool) -> Vec<f64> {
    if let Some(b) = bias {
        for (i, v) in y.iter_mut().enumerate() {
            *v += b[i % b.len()];
        }
    }
    if relu {
        y.iter_mut().for_each(|v| *v = v.max(0.0));
    }
    y
}

/// The mean of `v` and `1 / sqrt(var + eps)`, its variance biased (divided by the count).
fn mean_istd(v: impl Iterator<Item = f64> + Clone, eps: f64) -> (f64, f64) {
    let count = v.clone().count() as f64;
    let mean = v.clone().sum::<f64>() / count;
    let var = v.map(|x| (x - mean).powi(2)).sum::<f64>() / count;
    (mean, 1.0 / (var + eps).sqrt())
}

/// Instance norm: `relu?(scale · (x − mean) / sqrt(var + eps) + shift (+ residual))`, the
/// mean and (biased) variance per image and channel.
#[allow(clippy::too_many_arguments)]
pub fn instance_norm(
    x: &[f64],
    [n, h, w, c]: [usize; 4],
    scale: &[f64],
    shift: &[f64],
    residual: Option<&[f64]>,
    eps: f64,
    relu: bool,
) -> Vec<f64> {
    let hw = h * w;
    let mut y = vec![0.0; x.len()];
    for b in 0..n {
        for ch in 0..c {
            let at = |p: usize| (b * hw + p) * c + ch;
            let (mean, istd) = mean_istd((0..hw).map(|p| x[at(p)]), eps);
            for p in 0..hw {
                let i = at(p);
                let mut v = scale[ch] * (x[i] - mean) * istd + shift[ch];
                if let Some(r) = residual {
                    v += r[i];
                }
                y[i] = if relu { v.max(0.0) } else { v };
            }
        }
    }
    y
}

/// The backward of [`instance_norm`] (`y` its output, `dy = dL/dy`): (dx, dscale, dshift).
pub fn instance_norm_backward(
    x: &[f64],
    [n, h, w, c]: [usize; 4],
    scale: &[f64],
    y: &[f64],
    dy: &[f64],
    eps: f64,
    relu: bool,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let hw = h * w;
    let (mut dx, mut dg, mut db) = (vec![0.0; x.len()], vec![0.0; c], vec![0.0; c]);
    for b in 0..n {
        for ch in 0..c {
            let at = |p: usize| (b * hw + p) * c + ch;
            let (mean, istd) = mean_istd((0..hw).map(|p| x[at(p)]), eps);
            let g = |p: usize| {
                if relu && y[at(p)] <= 0.0 {
                    0.0
                } else {
                    dy[at(p)]
                }
            };
            let xh = |p: usize| (x[at(p)] - mean) * istd;
            let s1: f64 = (0..hw).map(g).sum();
            let s2: f64 = (0..hw).map(|p| g(p) * xh(p)).sum();
            db[ch] += s1;
            dg[ch] += s2;
            for p in 0..hw {
                dx[at(p)] = scale[ch] * istd * (g(p) - s1 / hw as f64 - xh(p) * s2 / hw as f64);
            }
        }
    }
    (dx, dg, db)
}

/// Nearest-neighbour upsampling by `factor`.
pub fn upsample_nearest(x: &[f64], [n, h, w, c]: [usize; 4], factor: usize) -> Vec<f64> {
    let (ho, wo) = (factor * h, factor * w);
    let mut y = vec![0.0; n * ho * wo * c];
    for b in 0..n {
        for oy in 0..ho {
            for ox in 0..wo {
                for ch in 0..c {
                    y[((b * ho + oy) * wo + ox) * c + ch] =
                        x[((b * h + oy / factor) * w + ox / factor) * c + ch];
                }
            }
        }
    }
    y
}

/// 2×2 pooling with stride 2 (max, or average), odd last rows and columns dropped.
pub fn pool2x2(x: &[f64], [n, h, w, c]: [usize; 4], max: bool) -> Vec<f64> {
    let (ho, wo) = (h / 2, w / 2);
    let mut y = vec![0.0; n * ho * wo * c];
    for b in 0..n {
        for oy in 0..ho {
            for ox in 0..wo {
                for ch in 0..c {
                    let at = |k: usize| ((b * h + 2 * oy + k / 2) * w + 2 * ox + k % 2) * c + ch;
                    let v = (0..4).map(|k| x[at(k)]);
                    y[((b * ho + oy) * wo + ox) * c + ch] = if max {
                        v.fold(f64::MIN, f64::max)
                    } else {
                        v.sum::<f64>() / 4.0
                    };
                }
            }
        }
    }
    y
}

/// The backward of 2×2 max pooling: each window's gradient goes to its first maximum
/// (row-major); the rest, and dropped rows and columns, get 0.
pub fn max_pool2x2_backward(x: &[f64], dy: &[f64], [n, h, w, c]: [usize; 4]) -> Vec<f64> {
    let (ho, wo) = (h / 2, w / 2);
    let mut dx = vec![0.0; x.len()];
    for b in 0..n {
        for oy in 0..ho {
            for ox in 0..wo {
                for ch in 0..c {
                    let at = |k: usize| ((b * h + 2 * oy + k / 2) * w + 2 * ox + k % 2) * c + ch;
                    let arg = (1..4).fold(0, |m, k| if x[at(k)] > x[at(m)] { k } else { m });
                    dx[at(arg)] = dy[((b * ho + oy) * wo + ox) * c + ch];
                }
            }
        }
    }
    dx
}

/// The Gram matrix of `hw` pixels of `c` channels, divided by `hw · c`.
pub fn gram(f: &[f64], hw: usize, c: usize) -> Vec<f64> {
    let mut g = vec![0.0; c * c];
    for k in 0..hw {
        for i in 0..c {
            for j in 0..c {
                g[i * c + j] += f[k * c + i] * f[k * c + j];
            }
        }
    }
    g.iter().map(|v| v / (hw * c) as f64).collect()
}

/// `C = A·B` (or `Aᵀ·B` with `a` stored `k × m`), `m × k` by `k × n`.
pub fn gemm(a: &[f64], b: &[f64], [m, k, n]: [usize; 3], trans_a: bool) -> Vec<f64> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for kk in 0..k {
            let av = if trans_a {
                a[kk * m + i]
            } else {
                a[i * k + kk]
            };
            for j in 0..n {
                c[i * n + j] += av * b[kk * n + j];
            }
        }
    }
    c
}

/// Max over the largest gradient and 11 random coordinates of
/// |central difference of `loss` at step `h` − grad| / max |grad|.
pub fn finite_diff(
    x: &[f32],
    grad: &[f32],
    loss: impl Fn(&[f64]) -> f64,
    rng: &mut super::Rng,
    h: f64,
) -> f64 {
    let scale = grad.iter().fold(0.0f64, |m, g| m.max(g.abs() as f64));
    let scale = scale.max(1e-12);
    let mut xv = f64s(x);
    let mut worst = 0.0f64;
    let argmax = (0..grad.len())
        .max_by(|&a, &b| grad[a].abs().total_cmp(&grad[b].abs()))
        .unwrap();
    for j in 0..12 {
        let i = if j == 0 {
            argmax
        } else {
            rng.range(0, x.len() - 1)
        };
        let o = xv[i];
        xv[i] = o + h;
        let lp = loss(&xv);
        xv[i] = o - h;
        let lm = loss(&xv);
        xv[i] = o;
        let fd = (lp - lm) / (2.0 * h);
        worst = worst.max((fd - grad[i] as f64).abs() / scale);
    }
    worst
}
