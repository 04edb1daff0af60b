//! The Moré–Thuente line search (MINPACK-2 `dcsrch` / `dcstep`, as used by L-BFGS-B and
//! ported here from SciPy's `scipy/optimize/_dcsrch.py`, BSD licence): finds a step `stp`
//! along a descent direction that satisfies the strong Wolfe conditions
//! `f(stp) ≤ f(0) + ftol·stp·f'(0)` and `|f'(stp)| ≤ gtol·|f'(0)|`, by safeguarded cubic and
//! quadratic interpolation inside an interval that brackets a minimiser. Scalars only: the
//! caller evaluates the function and its directional derivative at each trial step.
//! Computed in f64 whatever the precision of the function values.

/// What the search asks for, or how it ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// Evaluate the function and its derivative at the returned step, then call again.
    Evaluate,
    /// Both Wolfe conditions hold at the step.
    Converged,
    /// The conditions cannot be met (rounding errors, interval too small, step at a bound):
    /// the step is the best one found; L-BFGS-B accepts it.
    Warning(&'static str),
    /// Bad arguments (e.g. the direction is not a descent direction).
    Error(&'static str),
}

/// The state of one line search (`dcsrch`'s `isave` / `dsave`).
#[derive(Clone, Debug)]
pub struct Dcsrch {
    gtol: f64,
    xtol: f64,
    stpmin: f64,
    stpmax: f64,
    brackt: bool,
    stage: u8,
    ginit: f64,
    gtest: f64,
    finit: f64,
    stx: f64,
    fx: f64,
    gx: f64,
    sty: f64,
    fy: f64,
    gy: f64,
    stmin: f64,
    stmax: f64,
    width: f64,
    width1: f64,
}

const P5: f64 = 0.5;
const P66: f64 = 0.66;
const XTRAPL: f64 = 1.1;
const XTRAPU: f64 = 4.0;

impl Dcsrch {
    /// Starts a search from `f0 = f(0)`, `g0 = f'(0)` (must be negative) with the first trial
    /// step `stp`; returns the step to evaluate, or an error.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        stp: f64,
        f0: f64,
        g0: f64,
        ftol: f64,
        gtol: f64,
        xtol: f64,
        stpmin: f64,
        stpmax: f64,
    ) -> (Self, f64, Task) {
        let s = Dcsrch {
            gtol,
            xtol,
            stpmin,
            stpmax,
            brackt: false,
            stage: 1,
            ginit: g0,
            gtest: ftol * g0,
            finit: f0,
            stx: 0.0,
            fx: f0,
            gx: g0,
            sty: 0.0,
            fy: f0,
            gy: g0,
            stmin: 0.0,
            stmax: stp + XTRAPU * stp,
            width: stpmax - stpmin,
            width1: (stpmax - stpmin) / P5,
        };
        let task = if stp < stpmin {
            Task::Error("step below its minimum")
        } else if stp > stpmax {
            Task::Error("step above its maximum")
        } else if g0.is_nan() || g0 >= 0.0 {
            Task::Error("not a descent direction")
        } else if ftol < 0.0 || gtol < 0.0 || xtol < 0.0 || stpmin < 0.0 || stpmax < stpmin {
            Task::Error("bad tolerances")
        } else {
            Task::Evaluate
        };
        (s, stp, task)
    }

    /// Takes `f = f(stp)` and `g = f'(stp)` at the step last returned; returns the next step
    /// to evaluate (with [`Task::Evaluate`]) or the final one.
    pub fn next(&mut self, stp: f64, f: f64, g: f64) -> (f64, Task) {
        let ftest = self.finit + stp * self.gtest;
        if self.stage == 1 && f <= ftest && g >= 0.0 {
            self.stage = 2;
        }
        let mut task = None;
        if self.brackt && (stp <= self.stmin || stp >= self.stmax) {
            task = Some(Task::Warning("rounding errors prevent progress"));
        }
        if self.brackt && self.stmax - self.stmin <= self.xtol * self.stmax {
            task = Some(Task::Warning("xtol test satisfied"));
        }
        if stp == self.stpmax && f <= ftest && g <= self.gtest {
            task = Some(Task::Warning("step at its maximum"));
        }
        if stp == self.stpmin && (f > ftest || g >= self.gtest) {
            task = Some(Task::Warning("step at its minimum"));
        }
        if f <= ftest && g.abs() <= self.gtol * -self.ginit {
            task = Some(Task::Converged);
        }
        if let Some(t) = task {
            return (stp, t);
        }
        let mut stp = stp;
        if self.stage == 1 && f <= self.fx && f > ftest {
            // The modified function psi(stp) = f(stp) − f(0) − ftol·stp·f'(0).
            let mut st = Step {
                stx: self.stx,
                fx: self.fx - self.stx * self.gtest,
                dx: self.gx - self.gtest,
                sty: self.sty,
                fy: self.fy - self.sty * self.gtest,
                dy: self.gy - self.gtest,
                brackt: self.brackt,
            };
            stp = st.dcstep(
                stp,
                f - stp * self.gtest,
                g - self.gtest,
                self.stmin,
                self.stmax,
            );
            self.stx = st.stx;
            self.sty = st.sty;
            self.brackt = st.brackt;
            self.fx = st.fx + self.stx * self.gtest;
            self.fy = st.fy + self.sty * self.gtest;
            self.gx = st.dx + self.gtest;
            self.gy = st.dy + self.gtest;
        } else {
            let mut st = Step {
                stx: self.stx,
                fx: self.fx,
                dx: self.gx,
                sty: self.sty,
                fy: self.fy,
                dy: self.gy,
                brackt: self.brackt,
            };
            stp = st.dcstep(stp, f, g, self.stmin, self.stmax);
            (self.stx, self.fx, self.gx) = (st.stx, st.fx, st.dx);
            (self.sty, self.fy, self.gy) = (st.sty, st.fy, st.dy);
            self.brackt = st.brackt;
        }
        // Bisect when the interval does not shrink enough.
        if self.brackt {
            if (self.sty - self.stx).abs() >= P66 * self.width1 {
                stp = self.stx + P5 * (self.sty - self.stx);
            }
            self.width1 = self.width;
            self.width = (self.sty - self.stx).abs();
            self.stmin = self.stx.min(self.sty);
            self.stmax = self.stx.max(self.sty);
        } else {
            self.stmin = stp + XTRAPL * (stp - self.stx);
            self.stmax = stp + XTRAPU * (stp - self.stx);
        }
        stp = stp.clamp(self.stpmin, self.stpmax);
        // Without further progress possible, the best step so far.
        if self.brackt
            && (stp <= self.stmin
                || stp >= self.stmax
                || self.stmax - self.stmin <= self.xtol * self.stmax)
        {
            stp = self.stx;
        }
        (stp, Task::Evaluate)
    }
}

/// `dcstep`'s interval: the best step `stx` and the other end `sty`, with function values and
/// derivatives.
struct Step {
    stx: f64,
    fx: f64,
    dx: f64,
    sty: f64,
    fy: f64,
    dy: f64,
    brackt: bool,
}

impl Step {
    /// A safeguarded new trial step from the trial `stp` (value `fp`, derivative `dp`), and
    /// the updated interval.
    fn dcstep(&mut self, stp: f64, fp: f64, dp: f64, stpmin: f64, stpmax: f64) -> f64 {
        let (stx, fx, dx) = (self.stx, self.fx, self.dx);
        let sgnd = dp.signum() * dx.signum() * ((dp != 0.0 && dx != 0.0) as i32 as f64);
        let stpf;
        if fp > fx {
            // Higher value: the minimiser is bracketed; cubic or quadratic step.
            let theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp;
            let s = theta.abs().max(dx.abs()).max(dp.abs());
            let mut gamma = s * ((theta / s).powi(2) - (dx / s) * (dp / s)).sqrt();
            if stp < stx {
                gamma = -gamma;
            }
            let p = (gamma - dx) + theta;
            let q = ((gamma - dx) + gamma) + dp;
            let stpc = stx + p / q * (stp - stx);
            let stpq = stx + ((dx / ((fx - fp) / (stp - stx) + dx)) / 2.0) * (stp - stx);
            stpf = if (stpc - stx).abs() <= (stpq - stx).abs() {
                stpc
            } else {
                stpc + (stpq - stpc) / 2.0
            };
            self.brackt = true;
        } else if sgnd < 0.0 {
            // Derivatives of opposite sign: bracketed; cubic or secant step.
            let theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp;
            let s = theta.abs().max(dx.abs()).max(dp.abs());
            let mut gamma = s * ((theta / s).powi(2) - (dx / s) * (dp / s)).sqrt();
            if stp > stx {
                gamma = -gamma;
            }
            let p = (gamma - dp) + theta;
            let q = ((gamma - dp) + gamma) + dx;
            let stpc = stp + p / q * (stx - stp);
            let stpq = stp + (dp / (dp - dx)) * (stx - stp);
            stpf = if (stpc - stp).abs() > (stpq - stp).abs() {
                stpc
            } else {
                stpq
            };
            self.brackt = true;
        } else if dp.abs() < dx.abs() {
            // Same sign, derivative decreasing in magnitude.
            let theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp;
            let s = theta.abs().max(dx.abs()).max(dp.abs());
            let mut gamma = s * ((theta / s).powi(2) - (dx / s) * (dp / s)).max(0.0).sqrt();
            if stp > stx {
                gamma = -gamma;
            }
            let p = (gamma - dp) + theta;
            let q = (gamma + (dx - dp)) + gamma;
            let r = p / q;
            let stpc = if r < 0.0 && gamma != 0.0 {
                stp + r * (stx - stp)
            } else if stp > stx {
                stpmax
            } else {
                stpmin
            };
            let stpq = stp + (dp / (dp - dx)) * (stx - stp);
            if self.brackt {
                let f = if (stpc - stp).abs() < (stpq - stp).abs() {
                    stpc
                } else {
                    stpq
                };
                stpf = if stp > stx {
                    f.min(stp + P66 * (self.sty - stp))
                } else {
                    f.max(stp + P66 * (self.sty - stp))
                };
            } else {
                let f = if (stpc - stp).abs() > (stpq - stp).abs() {
                    stpc
                } else {
                    stpq
                };
                stpf = f.clamp(stpmin, stpmax);
            }
        } else if self.brackt {
            // Same sign, derivative not decreasing: cubic step towards sty.
            let (sty, fy, dy) = (self.sty, self.fy, self.dy);
            let theta = 3.0 * (fp - fy) / (sty - stp) + dy + dp;
            let s = theta.abs().max(dy.abs()).max(dp.abs());
            let mut gamma = s * ((theta / s).powi(2) - (dy / s) * (dp / s)).sqrt();
            if stp > sty {
                gamma = -gamma;
            }
            let p = (gamma - dp) + theta;
            let q = ((gamma - dp) + gamma) + dy;
            stpf = stp + p / q * (sty - stp);
        } else if stp > stx {
            stpf = stpmax;
        } else {
            stpf = stpmin;
        }
        // Update the interval.
        if fp > fx {
            (self.sty, self.fy, self.dy) = (stp, fp, dp);
        } else {
            if sgnd < 0.0 {
                (self.sty, self.fy, self.dy) = (stx, fx, dx);
            }
            (self.stx, self.fx, self.dx) = (stp, fp, dp);
        }
        stpf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a search on the 1-D function `phi` (value, derivative) from step `stp`.
    fn search(phi: impl Fn(f64) -> (f64, f64), stp: f64) -> (f64, Task, usize) {
        let (f0, g0) = phi(0.0);
        let (mut s, mut stp, mut task) = Dcsrch::start(stp, f0, g0, 1e-3, 0.9, 0.1, 0.0, 1e10);
        let mut evals = 0;
        while task == Task::Evaluate && evals < 50 {
            let (f, g) = phi(stp);
            evals += 1;
            (stp, task) = s.next(stp, f, g);
        }
        (stp, task, evals)
    }

    #[test]
    fn a_good_first_step_is_taken_at_once() {
        // (x − 1)²: from 0, step 1 lands on the minimum.
        let (stp, task, evals) = search(|a| ((a - 1.0).powi(2), 2.0 * (a - 1.0)), 1.0);
        assert_eq!((stp, task, evals), (1.0, Task::Converged, 1));
    }

    #[test]
    fn too_short_and_too_long_steps_are_corrected_to_satisfy_strong_wolfe() {
        let phi = |a: f64| ((a - 7.0).powi(2), 2.0 * (a - 7.0));
        for start in [1e-3, 0.5, 100.0, 1e4] {
            let (stp, task, evals) = search(phi, start);
            assert_eq!(task, Task::Converged, "from {start}");
            let (f, g) = phi(stp);
            assert!(f <= 49.0 + 1e-3 * stp * -14.0, "from {start}: {stp}");
            assert!(g.abs() <= 0.9 * 14.0, "from {start}: {stp}");
            assert!(evals <= 12, "from {start}: {evals} evaluations");
        }
    }

    #[test]
    fn an_ascent_direction_is_an_error() {
        let (_, _, task) = Dcsrch::start(1.0, 0.0, 1.0, 1e-3, 0.9, 0.1, 0.0, 1e10);
        assert!(matches!(task, Task::Error(_)));
    }
}
