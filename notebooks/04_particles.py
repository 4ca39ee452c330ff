# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Particles: the finite-$N$ picture of a mean-field game
#
# A mean-field game describes a continuum of agents through a density $m(t, x)$. Behind it is a
# system of $N$ interacting agents, each following a stochastic differential equation whose
# drift depends on the empirical measure of the others,
#
# $$
# dX^i_t = b\big(t, X^i_t, \mu^N_t\big)\,dt + \sigma\,dW^i_t,\qquad
# \mu^N_t = \frac1N\sum_{j=1}^N \delta_{X^j_t},
# $$
#
# a McKean–Vlasov system. As $N\to\infty$ the particles decouple (*propagation of chaos*) and
# each one has the law $\mu_t$ that solves the nonlinear Fokker–Planck equation
# $\partial_t\mu = -\partial_x(\mu\,b(t, x, \mu)) + \frac{\sigma^2}{2}\partial_{xx}\mu$.
# This tutorial
#
# 1. solves a linear-quadratic MFG on a grid and lets $N$ agents follow its optimal feedback
#    $-\partial_x u(t, x)$; their histogram is compared with the PDE density $m(T)$;
# 2. measures the $N^{-1/2}$ law of the Monte-Carlo error of the empirical moments against the
#    closed form of a linear McKean–Vlasov system;
# 3. shows propagation of chaos for a nonlinear (Gaussian-kernel) interaction: the empirical
#    measure approaches the solution of the McKean–Vlasov Fokker–Planck equation.
#
# All random numbers come from counter-based streams keyed by `(seed, particle, step)`: every
# cell gives the same numbers on any machine, thread count or number of MPI ranks.

# %%
import math
import time

import matplotlib.pyplot as plt
import numpy as np

from mfg_solvers import Grid, solve
from mfg_solvers.analytic import lq
from mfg_solvers.catalogue import load_problem
from mfg_solvers.metrics import wasserstein1_to_density
from mfg_solvers.particles import (
    Box,
    FeedbackDrift,
    GaussianKernel,
    PairwiseInteraction,
    deposit,
    gaussian_particles,
    run_particles,
    simulate,
)
from mfg_solvers.particles.mckean_vlasov import solve_mv_fokker_planck

t_start = time.perf_counter()

# %% [markdown]
# ## 1. Agents under the feedback of an MFG
#
# The catalogue entry `lq_mfg` is the linear-quadratic game of tutorial 01: agents pay
# $\frac12\alpha^2 + \frac q2(x - \kappa\bar x)^2$ and a terminal cost, start from
# $\mathcal N(\bar x_0, \Sigma_0)$ and move with $dX = \alpha\,dt + \sigma\,dW$ on $[-4, 4]$
# (reflecting walls). We solve it on a grid of 201 nodes and 50 time steps (first order in
# $h$ and $\Delta t$), then simulate $N$ agents who play the equilibrium feedback
# $\alpha^*(t, x) = -\partial_x u(t, x)$, interpolated from the grid
# (`mfg_solvers.particles.FeedbackDrift`), with Euler–Maruyama.

# %%
spec = load_problem("lq_mfg", {"parameters.nx": 201, "parameters.nt": 50})
problem, grid, nt = spec.build()
p = spec.parameters
solution = solve(problem, grid, nt, progress=False)
print(f"grid solution: {solution.iterations} Newton iterations, converged: {solution.converged}")

exact = lq.lq_finite_horizon(
    q=p["q"], q_T=p["q_T"], kappa=p["kappa"], kappa_T=p["kappa_T"], sigma2=p["sigma"] ** 2,
    T=p["T"], mean0=p["mean0"], var0=p["var0"],
)

N_AGENTS = 20_000
X0 = gaussian_particles(N_AGENTS, [p["mean0"]], p["var0"], seed=1)
agents = simulate(
    X0, T=p["T"], n_steps=100, sigma=p["sigma"], drift=FeedbackDrift(solution, grid),
    box=Box.from_grid(grid), seed=2, record_every=2,
)

x = grid.axes[0]
m_T = solution.m[-1]
pde_mean = float(grid.integrate(m_T * x))
pde_var = float(grid.integrate(m_T * (x - pde_mean) ** 2))
agent_mean, agent_var = float(agents.mean[-1, 0]), float(agents.cov[-1, 0, 0])
se_mean, se_var = math.sqrt(agent_var / N_AGENTS), agent_var * math.sqrt(2 / N_AGENTS)
w1_agents_pde = wasserstein1_to_density(agents.X[:, 0], m_T, grid)

print(f"{'':10s} {'mean(T)':>10s} {'var(T)':>10s}")
print(f"{'exact':10s} {float(exact.mean_T):10.5f} {float(exact.var_T):10.5f}")
print(f"{'grid PDE':10s} {pde_mean:10.5f} {pde_var:10.5f}")
print(f"{'agents':10s} {agent_mean:10.5f} {agent_var:10.5f}   (s.e. {se_mean:.1e}, {se_var:.1e})")
print(f"W1(agents, m_T) = {w1_agents_pde:.4f}")

# %% [markdown]
# The agents reproduce the equilibrium: their mean and variance agree with the closed form to
# a few standard errors plus the error of the grid feedback, and their empirical law is close
# to the PDE density in the Wasserstein distance $W_1$. (The agents are often *closer* to the
# exact moments than the grid density: the feedback $\partial_x u$ is accurate, while the
# upwind Fokker–Planck scheme adds numerical diffusion of order $h$.)

# %%
for name, value, ref, tol in (
    ("agent mean", agent_mean, float(exact.mean_T), 4 * se_mean + 0.015),
    ("agent var", agent_var, float(exact.var_T), 4 * se_var + 0.015),
    ("PDE mean", pde_mean, float(exact.mean_T), 0.02),
):
    assert abs(value - ref) < tol, (name, value, ref, tol)
assert w1_agents_pde < 0.03, w1_agents_pde
assert agents.mass[-1] == 1.0  # reflecting walls: nobody leaves

# %%
hist = deposit(agents.X, grid, method="ngp")  # histogram on the grid's node cells
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
ax = axes[0]
ax.bar(x, hist, width=grid.spacing[0], color="0.75", label=f"agents (N = {N_AGENTS})")
ax.plot(x, m_T, "C0", label="grid PDE $m(T)$")
ax.plot(x, np.exp(-0.5 * (x - exact.mean_T) ** 2 / exact.var_T)
        / math.sqrt(2 * math.pi * exact.var_T), "k--", lw=1, label="closed form")
ax.set_xlim(-1.5, 2.5)
ax.set_xlabel("x")
ax.set_title("density at T")
ax.legend(fontsize=8)
ax = axes[1]
ax.plot(solution.t, [float(grid.integrate(m * x)) for m in solution.m], "C0", label="grid PDE")
ax.plot(agents.t, agents.mean[:, 0], "C1.", ms=3, label="agents")
ax.plot(solution.t, exact.mean(solution.t), "k--", lw=1, label="closed form")
ax.set_xlabel("t")
ax.set_title("mean of the population")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## 2. The $N^{-1/2}$ law
#
# Take the linear McKean–Vlasov system of the catalogue entry `particles_mean_field`:
# Ornstein–Uhlenbeck agents attracted to the empirical mean,
#
# $$
# dX^i = \big[-\theta(X^i - \mu) - k(X^i - \bar X)\big]dt + \sigma\,dW^i .
# $$
#
# The empirical mean $\bar X$ is itself an Ornstein–Uhlenbeck process with noise
# $\sigma\,d\bar W$, $\operatorname{Var}\bar W_t = t/N$: its error against the mean-field mean
# $m(t) = \mu + (m_0 - \mu)e^{-\theta t}$ is Gaussian with standard deviation
# $\sqrt{\Sigma_{-\theta}(T)/N}$. We use the exact transition of the linear system
# (`scheme = "exact"`), so that there is no time-step bias, and average the squared error over
# eight seeds at each $N$.

# %%
base = load_problem("particles_mean_field").parameters
base = {k: v for k, v in base.items() if k not in ("box", "density", "record_every")}
base.update(scheme="exact", n_steps=10)
theta, mu, m0, S0, sigma, T = 1.0, 0.5, 1.5, 0.25, 0.8, 1.0
sd_mean = math.sqrt(S0 * math.exp(-2 * theta * T)
                    + sigma**2 * (1 - math.exp(-2 * theta * T)) / (2 * theta))

Ns = np.array([1000, 4000, 16000, 64000])
rms = []
for n in Ns:
    errors = [run_particles({**base, "n_particles": int(n), "seed": s})["mean_error"]
              for s in range(8)]
    rms.append(math.sqrt(np.mean(np.square(errors))))
rms = np.array(rms)
slope = np.polyfit(np.log(Ns), np.log(rms), 1)[0]
for n, e in zip(Ns, rms, strict=True):
    print(f"N = {n:6d}: rms error of the mean {e:.2e}   (predicted {sd_mean / math.sqrt(n):.2e})")
print(f"fitted order: {slope:.3f} (theory -1/2)")

# %%
assert -0.7 < slope < -0.3, slope
ratio = rms * np.sqrt(Ns) / sd_mean
assert np.all((0.4 < ratio) & (ratio < 1.8)), ratio

# %% [markdown]
# ## 3. Propagation of chaos
#
# Now a nonlinear interaction: on the circle $[0, 1)$ the agents attract each other through a
# Gaussian kernel $W(r) = -0.1\,e^{-r^2/(2\ell^2)}$, $\ell = 0.1$, so the drift is
# $-(W' * \mu^N)(x)$. The interaction force is computed particle–mesh (cloud-in-cell deposit,
# FFT convolution on 256 nodes, interpolation back). The mean-field limit is the McKean–Vlasov
# Fokker–Planck equation, solved on a grid of 100 nodes by a second-order finite-volume scheme
# (`mfg_solvers.particles.mckean_vlasov.solve_mv_fokker_planck`). As $N$ grows the
# empirical measure converges to its solution $\mu_T$; the $W_1$ distance falls like
# $N^{-1/2}$ (the rate of $N$ independent samples of $\mu_T$: the particles behave as if they
# were independent) until it meets the weak error of Euler–Maruyama, first order in
# $\Delta t$ (about $7\cdot10^{-4}$ with 200 steps, measured with $10^5$ particles).

# %%
kernel = GaussianKernel(-0.1, 0.1)
circle = Grid((0.0, 1.0), 100, "periodic")
T_c, sigma_c, var0_c = 0.5, 0.3, 0.02


def bump(x):
    return sum(np.exp(-0.5 * (x - 0.5 + j) ** 2 / var0_c) for j in (-1, 0, 1))


limit = solve_mv_fokker_planck(circle, bump, T_c, sigma_c, kernel=kernel)
mu_T = limit.m[-1]

chaos_N = np.array([100, 400, 1600, 6400])
w1 = []
for n in chaos_N:
    dists = []
    for s in range(6):
        X0 = np.mod(gaussian_particles(int(n), [0.5], var0_c, seed=100 + s), 1.0)
        run = simulate(X0, T=T_c, n_steps=200, sigma=sigma_c,
                       interaction=PairwiseInteraction(kernel, "pm", shape=256),
                       box=Box([(0.0, 1.0)], "periodic"), seed=200 + s)
        dists.append(wasserstein1_to_density(run.X[:, 0], mu_T, circle))
    w1.append(np.mean(dists))
w1 = np.array(w1)
chaos_slope = np.polyfit(np.log(chaos_N), np.log(w1), 1)[0]
for n, d in zip(chaos_N, w1, strict=True):
    print(f"N = {n:5d}: W1(empirical measure, mu_T) = {d:.2e}")
print(f"fitted order: {chaos_slope:.3f}")

# %%
assert -0.75 < chaos_slope < -0.3, chaos_slope
assert w1[-1] < w1[0] / 4, w1
# the attraction holds the cloud together: its peak stays above that of free diffusion,
# N(1/2, var0 + sigma^2 T)
free_peak = 1 / math.sqrt(2 * math.pi * (var0_c + sigma_c**2 * T_c))
print(f"peak of mu_T {mu_T.max():.3f}, of free diffusion {free_peak:.3f}")
assert mu_T.max() > 1.2 * free_peak

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
ax = axes[0]
xc = circle.axes[0]
ax.bar(xc, deposit(run.X, circle, method="ngp"), width=circle.spacing[0], color="0.75",
       label=f"particles (N = {chaos_N[-1]})")
ax.plot(xc, mu_T, "C0", label=r"McKean–Vlasov $\mu_T$")
ax.set_xlabel("x")
ax.set_title("density at T on the circle")
ax.legend(fontsize=8)
ax = axes[1]
ax.loglog(chaos_N, w1, "o-", label=r"$W_1(\mu^N_T, \mu_T)$")
ax.loglog(chaos_N, w1[0] * np.sqrt(chaos_N[0] / chaos_N), "k:", label=r"$N^{-1/2}$")
ax.loglog(Ns, rms, "s-", label="rms error of the mean (part 2)")
ax.set_xlabel("N")
ax.legend(fontsize=8)
ax.set_title("Monte-Carlo error against N")
plt.show()

# %% [markdown]
# ## 5. The same from the problem catalogue
#
# The entry `particles_mean_field` describes the linear model above (OU pull towards
# $\mu = 0.5$, quadratic attraction to the mean, Gaussian start) in a TOML file. Running it
# returns a `ParticleResult` -- moments over time and the deposited density, which
# `mfg-solvers run particles_mean_field --out DIR` writes to `solution.nc` -- and a summary
# that compares the final moments with the closed form of the McKean–Vlasov system.

# %%
from mfg_solvers.catalogue import run_problem  # noqa: E402

result, summary = run_problem("particles_mean_field", ci=True)  # N = 20 000, 200 steps
print(f"mean(T) = {summary['mean_T']:.4f}  (closed form {summary['mean_T_exact']:.4f}, "
      f"s.e. {summary['mean_T_se']:.4f})")
print(f"var(T)  = {summary['var_T']:.4f}  (closed form {summary['var_T_exact']:.4f}, "
      f"s.e. {summary['var_T_se']:.4f})")
assert abs(summary["mean_T"] - summary["mean_T_exact"]) < 5 * summary["mean_T_se"] + 2e-3
assert abs(summary["var_T"] - summary["var_T_exact"]) < 5 * summary["var_T_se"] + 2e-3

fig, ax = plt.subplots(figsize=(5, 3.2), layout="constrained")
ax.plot(result.t, result.mean[:, 0], "o-", label="empirical mean")
ax.plot(result.t, result.cov[:, 0, 0], "s-", label="empirical variance")
ax.set_xlabel("t")
ax.set_title("particles_mean_field: moments over time")
ax.legend(fontsize=8)
plt.show()

print(f"notebook ran in {time.perf_counter() - t_start:.1f} s")
