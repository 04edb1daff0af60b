"""Reference L-BFGS trajectories for tests/lbfgs.rs: SciPy's L-BFGS-B (unconstrained,
defaults: maxcor 10, maxls 20) on the problems that test evaluates on the CPU.
Run: python3 tests/data/lbfgs_reference.py > tests/data/lbfgs_reference.json"""
import json

import numpy as np
import scipy
from scipy.optimize import minimize


def rosenbrock(x):
    """Chained Rosenbrock: sum 100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2."""
    a, b = x[:-1], x[1:]
    f = np.sum(100.0 * (b - a * a) ** 2 + (1.0 - a) ** 2)
    g = np.zeros_like(x)
    g[:-1] += -400.0 * a * (b - a * a) - 2.0 * (1.0 - a)
    g[1:] += 200.0 * (b - a * a)
    return f, g


def quartic(x):
    """sum w_i (x_i - 1)^2 + 0.1 (sum x_i^2)^2 with w_i = 1 + i (ill-conditioned, not quadratic)."""
    w = 1.0 + np.arange(len(x))
    r = np.sum(x * x)
    f = np.sum(w * (x - 1.0) ** 2) + 0.1 * r * r
    g = 2.0 * w * (x - 1.0) + 0.4 * r * x
    return f, g


PROBLEMS = {
    "rosenbrock": (rosenbrock, np.tile([-1.2, 1.0], 4)),
    "quartic": (quartic, np.linspace(-2.0, 3.0, 16)),
}

out = {"scipy": scipy.__version__}
for name, (fun, x0) in PROBLEMS.items():
    xs, fs = [], []

    def cb(intermediate_result):
        xs.append(intermediate_result.x.tolist())
        fs.append(float(intermediate_result.fun))

    r = minimize(fun, x0, jac=True, method="L-BFGS-B", callback=cb,
                 options={"maxiter": 200, "ftol": 1e-12, "gtol": 1e-8})
    out[name] = {"x0": x0.tolist(), "f0": float(fun(x0)[0]), "f": fs, "x": xs,
                 "nit": int(r.nit), "nfev": int(r.nfev), "message": str(r.message)}
print(json.dumps(out, indent=1))
