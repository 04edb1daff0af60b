//! Recording one convolution of a given [`ConvAlgo`]: channel padding for the direct kernel,
//! the specialisation of its body, and the workgroup grid.

use crate::error::Result;
use crate::gpu::record::Recorder;
use crate::gpu::tensor::Tensor;
use crate::ops::conv::algo::{ConvAlgo, DIRECT_PIXELS};
use crate::ops::conv::params::{Params, MODE_TRANSPOSED};
use crate::ops::conv::shape::ConvShape;
use crate::ops::conv::winograd;
use crate::ops::crop::pad;

/// Records one dispatch of `algo` for the problem `p` and returns its output.
pub(crate) fn run(
    rec: &mut Recorder,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    p: Params,
    algo: ConvAlgo,
    label: &str,
) -> Result<Tensor> {
    let y = Tensor::uninit(
        rec.context(),
        label,
        [p.n as usize, p.ho as usize, p.wo as usize, p.cout as usize],
    )?;
    run_into(rec, x, w, bias, p, algo, &y)?;
    Ok(y)
}

/// [`run`] writing into `y` (`[n, ho, wo, cout]`).
///
/// The direct kernel pads channel counts that are not multiples of 4 (the input's and the
/// kernel's input channels, and the kernel's output channels: its rows are then `wcout`
/// long, the output keeps `cout`) so that every shape runs a vec4 body: on lavapipe, where
/// loads cost per instruction and lane, conv1 (3 input channels) and conv_out (3 output
/// channels) of the fast network gain more from vec4 loads than padding costs.
pub(crate) fn run_into(
    rec: &mut Recorder,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    p: Params,
    algo: ConvAlgo,
    y: &Tensor,
) -> Result<()> {
    algo.check_usable(rec.context())?;
    if let ConvAlgo::Winograd(_) = algo {
        if algo.applies(rec.context(), &ConvShape::of(&p)) {
            return winograd::run_into(rec, x, w, bias, p, algo, y);
        }
        let fallback = ConvAlgo::default_on(rec.context(), p.cout as usize);
        return run_into(rec, x, w, bias, p, fallback, y);
    }
    let direct = algo.is_direct();
    let wide = matches!(algo, ConvAlgo::Wide { .. });
    let mut p = p;
    let padded;
    // The kernel's rows: a multiple of 4 (vec4 bodies), of 32 for the `wide` block.
    let row = if wide { 32 } else { 4 };
    let (x, w) = if direct && (!p.cin.is_multiple_of(4) || !p.cout.is_multiple_of(row)) {
        let [_, h, wd, _] = x.shape();
        let [_, kw, _, _] = w.shape();
        let (cin4, cout4) = (p.cin.next_multiple_of(4), p.cout.next_multiple_of(row));
        padded = (
            pad(rec, x, h, wd, cin4 as usize)?,
            pad(rec, w, kw, cin4 as usize, cout4 as usize)?,
        );
        (p.cin, p.wcout) = (cin4, cout4);
        (&padded.0, &padded.1)
    } else {
        (x, w)
    };
    let body = if wide {
        DirectBody::ALL[0]
    } else {
        DirectBody::of(&p)
    };
    debug_assert!(!direct || (p.cin.is_multiple_of(4) && p.wcout.is_multiple_of(row)));
    let m = if direct {
        direct_slots(&p, body, algo)
    } else {
        p.n as u64 * p.ho as u64 * p.wo as u64
    };
    let tiles_m = m.div_ceil(algo.pixels() as u64) as u32;
    let tiles_n = p.cout.div_ceil(algo.channels());
    let (gm, gz) = if tiles_m <= 65535 {
        (tiles_m, 1)
    } else {
        (65535, tiles_m.div_ceil(65535))
    };
    // Tiled: x = channel tiles, y (and z) = pixel tiles. Direct: the other way round.
    let groups = if direct {
        [gm, tiles_n, gz]
    } else {
        [tiles_n, gm, gz]
    };
    let bias = bias.unwrap_or(w);
    rec.dispatch(
        &algo.kernel(body, rec.context().adapter_info().subgroup_max_size),
        &p,
        &[(1, x), (2, w), (3, bias), (4, y)],
        groups,
    );
    Ok(())
}

/// Which specialisation of the direct kernel (`direct` in `shaders/conv2d/direct.wgsl`) a shape uses,
/// through its pipeline constants `ROWS` and `NARROW`. Every one takes channel counts that are
/// multiples of 4 ([`run_into`] pads the others).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirectBody {
    /// Each invocation's pixels lie in one output row and slide one window of input columns
    /// along each kernel row (`ROWS`; stride 1, not transposed); else vec4 loads per tap (any
    /// stride, transposed too).
    pub rows: bool,
    /// At most 4 output channels (after padding): only the first of the invocation's two
    /// 4-channel blocks is computed (`NARROW`; on lavapipe the fast network's last layer,
    /// 32→3, runs 1.5× faster than with the block of zeros).
    pub narrow: bool,
}

impl DirectBody {
    /// Every body.
    pub const ALL: [DirectBody; 4] = [
        DirectBody {
            rows: false,
            narrow: false,
        },
        DirectBody {
            rows: true,
            narrow: false,
        },
        DirectBody {
            rows: false,
            narrow: true,
        },
        DirectBody {
            rows: true,
            narrow: true,
        },
    ];

    /// The body for the problem `p` (channels padded to multiples of 4).
    pub(crate) fn of(p: &Params) -> DirectBody {
        DirectBody {
            rows: p.stride == 1 && p.mode != MODE_TRANSPOSED,
            narrow: p.wcout == 4,
        }
    }
}

/// Output slots of the direct kernel `algo`: one per output pixel, except for transposed
/// convolutions, which it visits by parity class (`stride²` sub-grids of `⌈ho/s⌉ × ⌈wo/s⌉`
/// pixels, each padded to a multiple of 16 slots, or with subgroups of a workgroup's
/// `16 * wg_x`), and for the `rows` body, which pads every output row to a multiple of 16
/// slots; as `direct_slots`, `class_unit` and `row_len` in `shaders/conv2d/direct.wgsl`.
fn direct_slots(p: &Params, body: DirectBody, algo: ConvAlgo) -> u64 {
    let (n, ho, wo, s) = (p.n as u64, p.ho as u64, p.wo as u64, p.stride as u64);
    let px = DIRECT_PIXELS as u64;
    let wg_x = match algo {
        ConvAlgo::Direct { wg_x, .. } => wg_x,
        _ => 64,
    };
    let class_unit = if algo.uses_subgroups() {
        px * wg_x as u64
    } else {
        px
    };
    if p.mode == MODE_TRANSPOSED {
        n * s * s * (ho.div_ceil(s) * wo.div_ceil(s)).next_multiple_of(class_unit)
    } else if body.rows {
        n * ho * wo.next_multiple_of(px)
    } else {
        n * ho * wo
    }
}
