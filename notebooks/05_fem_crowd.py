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
# # Evacuating a room: a congestion mean-field game by finite elements
#
# A crowd leaves a room with a pillar, a round table and two doors. Every pedestrian chooses
# a velocity $a$, pays $\tfrac12 (c + m)^\alpha |a|^2$ for it (walking is harder in a crowd),
# a cost $V$ per unit time spent inside, a crowd-aversion cost $s\,m$, and at the horizon a
# penalty $\kappa_T\,d(x, \text{doors})$. This tutorial
#
# 1. writes the weak form solved by `mfg_solvers.fem`;
# 2. builds the gmsh mesh of the room from the catalogue entry `crowd_room`;
# 3. solves the game with Newton's method on the whole space-time system;
# 4. draws the density and the outflow through each door, and checks the mass balance;
# 5. compares the finite-element solver with the finite-difference one on a square.
#
# ## The equations and their weak form
#
# On the room $\Omega$ (obstacles removed), for $t \in (0, T)$,
#
# $$
# \begin{aligned}
# -\partial_t u - \nu\Delta u + \frac{|\nabla u|^2}{2(c + m)^\alpha} &= V + s\,m,
# & u(T) &= \kappa_T\, d(\cdot, \text{doors}),\\
# \partial_t m - \nu\Delta m - \operatorname{div}\Big(m\,\frac{\nabla u}{(c+m)^\alpha}\Big) &= 0,
# & m(0) &= m_0 .
# \end{aligned}
# $$
#
# Walls and obstacles reflect ($\partial_n u = 0$ and no flux of $m$); at the doors $u = 0$
# and $m = 0$: whoever reaches a door leaves. With continuous P1 elements $V_h$ and implicit
# Euler steps $\Delta t$, the discrete HJB step reads: find $U^n \in V_h$ ($U^n = 0$ on the
# doors) such that for every test function $v$
#
# $$
# \int_\Omega \frac{U^n - U^{n+1}}{\Delta t}\,v
# + \nu\nabla U^n\!\cdot\nabla v + H(\nabla U^n, M^{n+1})\,v
# + J_{\rm CIP}(U^n, v) = \int_\Omega (V + s M^{n+1})\,v ,
# $$
#
# and the FP step is the **adjoint** (transpose) of the HJB step linearised in $u$: with
# $b = \partial_p H(\nabla U^n, M^{n+1})$ (pedestrians move with velocity $-b$),
#
# $$
# \int_\Omega \frac{M^{n+1} - M^{n}}{\Delta t}\,w + \nu\nabla M^{n+1}\!\cdot\nabla w
# + M^{n+1}\, b\cdot\nabla w + J'_{\rm CIP}(M^{n+1}, w) = 0 .
# $$
#
# $J_{\rm CIP}$, the *continuous interior penalty*, adds over the interior edges $F$
# $\sum_F \int_F \gamma h_F^2\,|\{b\}\cdot n_F|_\delta\,[\nabla U\cdot n_F]\,[\nabla v\cdot n_F]$
# ($[\cdot]$ the jump, $|a|_\delta = \sqrt{a^2+\delta^2}$; $J'_{\rm CIP}$ its derivative in $u$
# with the density in the test slot). It damps the oscillations of the transport terms on
# coarse meshes, is consistent (the gradient jumps of a smooth solution vanish) and keeps the
# optimal orders. Because the HJB form depends on $u$ only through $\nabla u$, testing the FP
# with $w = 1$ shows that $\int M^n$ changes only by what leaves through the doors, step by
# step. Newton's method is applied to all steps at once: the Jacobian comes from the UFL
# derivatives of these forms and is factorised by MUMPS (in parallel under MPI).

# %%
import matplotlib.pyplot as plt
import numpy as np

from mfg_solvers.catalogue import load_problem, run_problem

spec = load_problem("crowd_room", ci=True)  # h = 0.5, 16 time steps: a few seconds
print(spec.description)
print({k: spec.parameters[k] for k in ("nu", "T", "nt", "aversion", "running_cost")})
print(spec.parameters["congestion"], spec.parameters["room"]["exits"])

# %% [markdown]
# ## The mesh
#
# `spec.build()` returns the problem (`MFGProblem` with the `Congestion` Hamiltonian), the
# gmsh mesh of the room with the doors tagged, the door names and the solver settings.

# %%
problem, mesh, exits, settings = spec.build()
msh = mesh.mesh
x = msh.geometry.x
cells = msh.geometry.dofmaps[0]
print(mesh, "| doors:", exits, "| hmax =", round(mesh.hmax, 3))
fig, ax = plt.subplots(figsize=(7, 4.2))
ax.triplot(x[:, 0], x[:, 1], cells, lw=0.4, color="0.4")
for name in exits:
    f = mesh.facets(name)
    msh.topology.create_connectivity(1, 0)
    conn = msh.topology.connectivity(1, 0)
    for facet in f:
        v = conn.links(facet)
        ax.plot(x[v, 0], x[v, 1], lw=4, label=None)
ax.set_aspect("equal")
ax.set_title("the room: gmsh triangles, doors in colour")
assert set(exits) == {"west", "east"}
assert abs(mesh.boundary_measure("east") - 1.0) < 1e-12  # the door is 1 m wide

# %% [markdown]
# ## The solve
#
# `run_problem` runs the catalogue entry: one decoupled HJB/FP sweep as a starting state,
# then Newton with a backtracking line search on the coupled system.

# %%
solution, summary = run_problem(spec)
for key in ("newton_iterations", "final_residual", "evacuated_fraction", "time_to_half",
            "share_east", "share_west", "min_density", "conservation_error", "time_total"):
    print(f"{key:>20s}  {summary[key]:.6g}")
assert summary["converged"] and summary["newton_iterations"] <= 8

# %% [markdown]
# ## Pictures: the crowd and the doors

# %%
from mfg_solvers.fem.plotting import plot_density_snapshots, plot_exit_flux

t = solution.t
plot_density_snapshots(solution, t[[0, 4, 8, 16]]);

# %%
plot_exit_flux(solution);

# %% [markdown]
# The crowd starts nearer the east door and most of it leaves there; a small part, on the
# west side of the blob, walks around the pillar to the west door.
#
# **Mass balance.** The mass inside plus what has flowed out through the doors
# ($\sum_k \Delta t\,F_k$, the discrete outflow) is one at every time, to round-off: the FP
# step is the exact adjoint of the HJB step.

# %%
ds = solution.dataset
inside = (ds["m"].values * ds["weight"].values).sum(axis=1)
out = np.concatenate([[0.0], np.cumsum(np.diff(t) * ds["exit_flux"].values[1:].sum(axis=1))])
print("max |mass inside + outflow - 1| =", np.abs(inside + out - 1).max())
assert np.abs(inside + out - 1).max() < 1e-10
assert summary["share_east"] > 0.9 and summary["evacuated_fraction"] > 0.99

# %% [markdown]
# **Positivity.** The CIP scheme is not monotone: on this coarse mesh (cell Péclet number
# about 5 near the doors) the density undershoots a little; the summary reports it rather
# than clipping it, and it vanishes under refinement (relative undershoot 4 % at $h = 0.5$,
# $7\cdot10^{-4}$ at $h = 0.25$, none at $h = 0.125$).

# %%
print(f"min m = {summary['min_density']:.3g}, max m = {summary['max_density']:.3g}, "
      f"undershoot = {summary['undershoot']:.3g}")
assert summary["undershoot"] < 0.06

# %% [markdown]
# ## Finite elements against finite differences
#
# In a closed square (no doors, reflecting walls) both solvers apply: the finite-difference
# ACD scheme on an $n \times n$ grid and P1 elements on the triangulated grid with the same
# nodes. Their difference falls as both are refined (at the first order of the monotone
# FD scheme).

# %%
from mfg_solvers import Congestion, Domain, LocalCoupling, MFGProblem, solve
from mfg_solvers.fem import rectangle_mesh
from mfg_solvers.fem import solve as fem_solve

square = MFGProblem(
    Domain([(0, 1), (0, 1)], "neumann"), 0.1, hamiltonian=Congestion(1.0, 0.5),
    coupling=LocalCoupling("linear", 1.0),
    potential=lambda x, y: -np.cos(2 * np.pi * x) * np.cos(np.pi * y),
    m0=lambda x, y: 1 + 0.5 * np.cos(np.pi * x) * np.cos(np.pi * y), T=0.5,
    terminal_cost=lambda x, y: 0.5 * (x - 0.8) ** 2, name="square",
)
nt, diffs = 8, []
for n in (9, 17, 33):
    fd = solve(square, square.domain.grid((n, n)), nt, progress=False, tol=1e-10)
    fe = fem_solve(square, rectangle_mesh([(0, 1), (0, 1)], n - 1), nt, progress=False,
                   tol=1e-10)
    # the FEM nodes, sorted by (x, y), are the FD nodes in C order
    diffs.append(np.abs(fd.m.reshape(nt + 1, -1) - fe.m).max())
    print(f"n = {n:3d}: max |m_FD - m_FEM| = {diffs[-1]:.3e}")
rates = np.log2(np.asarray(diffs[:-1]) / diffs[1:])
print("observed rates:", np.round(rates, 2))
assert np.all(np.diff(diffs) < 0) and rates[-1] > 0.7

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
X, Y = np.meshgrid(*fd.axes, indexing="ij")
for ax, m, title in ((axes[0], fd.m[-1], "FD: m(T)"), (axes[1], fe.m[-1].reshape(n, n),
                                                         "FEM (P1): m(T)")):
    pc = ax.pcolormesh(X, Y, m.reshape(n, n), shading="auto")
    ax.set_aspect("equal")
    ax.set_title(title)
    fig.colorbar(pc, ax=ax, shrink=0.8)

# %% [markdown]
# ## Running it from the command line
#
# ```bash
# mfg-solvers run crowd_room --out crowd            # h = 0.25, 32 steps
# mpiexec -n 2 mfg-solvers run crowd_room --out crowd
# ```
#
# writes `solution.nc`, the XDMF series `solution.xdmf`/`solution.h5` (open it in ParaView),
# the figures and `summary.json`. `mfg-solvers verify --problems crowd_room` checks the mass
# balance, the undershoot and the converged values of `time_to_half` and `share_east`.
