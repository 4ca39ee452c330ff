"""Damped fixed point (Picard) and fictitious play.

Both alternate the two decoupled solves of the discretisation, ``disc.solve_hjb`` (the nonlinear
HJB for a frozen density path) and ``disc.solve_fp`` (the linear FP for a frozen value function),
and stop on the *full-system* residual, evaluated at a consistent pair: with relaxation on ``m``
the iterate is :math:`(U_k, M_k)` with :math:`U_k = \\mathrm{HJB}(M_k)` (its HJB residual vanishes,
the FP residual measures the distance to the fixed point).

Damped fixed point (docs/theory.md, Damped fixed point), relaxation on the density
(``relax="m"``):

.. math::

    \\tilde M_{k+1} = \\mathrm{FP}(U_k),\\qquad
    M_{k+1} = (1-\\theta)M_k + \\theta\\,\\tilde M_{k+1},
    \\qquad U_{k+1} = \\mathrm{HJB}(M_{k+1}).

For a mean coupling :math:`f(x, \\bar x(t))` the mean is linear in :math:`m`, so relaxing ``m`` is
exactly relaxing the mean path. With ``relax="u"`` the value function (and :math:`\\lambda`) is
relaxed instead: :math:`U_{k+1} = (1-\\theta)U_k + \\theta\\,\\mathrm{HJB}(\\mathrm{FP}(U_k))`,
the iterate being :math:`(U_k, \\mathrm{FP}(U_k))`. Convergence is linear, with a rate that depends
on :math:`\\theta`, the horizon and the coupling strength (undamped, it converges only for short
horizons or weak coupling).

Fictitious play (Cardaliaguet–Hadikhanloo; generalised conditional gradient of
Bonnans–Lavigne–Pfeiffer for ``schedule="2/(k+2)"``): the best response to the averaged density
:math:`\\bar M_k` is :math:`M_{k+1} = \\mathrm{FP}(\\mathrm{HJB}(\\bar M_k))` and

.. math::

    \\bar M_{k+1} = (1-\\delta_k)\\,\\bar M_k + \\delta_k\\,M_{k+1},\\qquad
    \\delta_k = \\tfrac1{k+1}\\ \\ \\text{(running average)}\\quad\\text{or}\\quad \\tfrac2{k+2},

:math:`k = 1, 2, \\dots` (the starting density counts as the first one). Convergence is proved for
potential MFGs and is sublinear (:math:`O(1/k)` for the potential gap), so the default
tolerance is looser than for the other solvers.

Ergodic discretisations: the state is :math:`(U, M, \\lambda)`; ``solve_hjb`` returns
:math:`(U, \\lambda)`, ``solve_fp`` the normalised stationary density.
"""

from __future__ import annotations

from ._loop import OuterLoop, check_choice, check_fraction
from ._state import mix, split_value_output

RELAX = ("m", "u")
SCHEDULES = {"1/(k+1)": lambda k: 1.0 / (k + 1.0), "2/(k+2)": lambda k: 2.0 / (k + 2.0)}


def _pack(U, M, lam, ergodic):
    return (U, M, lam) if ergodic else (U, M)


def _picard(disc, loop: OuterLoop, relax: str, weight):
    """Run the relaxed Picard iteration with step weight ``weight(k)``, ``k = 1, 2, ...``."""
    ergodic = bool(disc.ergodic)

    def hjb(M):
        U, lam = split_value_output(disc.solve_hjb(M), ergodic, "solve_hjb")
        return loop.check("U", U), lam

    def fp(U):
        return loop.check("M", disc.solve_fp(U))

    def guess():
        state = loop.state
        return state[0], state[1], (state[2] if ergodic else None)

    if relax == "m":

        def start():
            _, M, _ = guess()
            U, lam = hjb(M)
            return _pack(U, M, lam, ergodic)

        def step(state, residual):
            theta = weight(loop.iterations + 1)
            M_best = fp(state[0])
            M = mix(state[1], M_best, theta)
            U, lam = hjb(M)
            new = _pack(U, M, lam, ergodic)
            return new, disc.residual_norm(new)

    else:

        def start():
            U, _, lam = guess()
            return _pack(U, fp(U), lam, ergodic)

        def step(state, residual):
            theta = weight(loop.iterations + 1)
            U_best, lam_best = hjb(state[1])
            U = mix(state[0], U_best, theta)
            lam = mix(state[2], lam_best, theta) if ergodic else None
            new = _pack(U, fp(U), lam, ergodic)
            return new, disc.residual_norm(new)

    loop.run(start, step)
    return loop.finish()


def solve_fixed_point(
    disc,
    *,
    relaxation: float = 0.5,
    relax: str = "m",
    tol: float = 1e-10,
    max_iter: int = 500,
    initial_state=None,
    progress: bool = True,
    raise_on_failure: bool = True,
):
    """Damped fixed-point (Picard) iteration between the HJB and FP solves.

    Parameters
    ----------
    disc
        A discretisation offering the interface of ``docs/architecture.md``.
    relaxation
        :math:`\\theta \\in (0, 1]`; ``1`` is the undamped Picard iteration.
    relax
        ``"m"`` relaxes the density (equivalently the mean path of a mean coupling), ``"u"`` the
        value function (and :math:`\\lambda` for ergodic problems).
    tol, max_iter
        Stop when the full-system residual is below ``tol``; at most ``max_iter`` iterations
        (each one HJB solve and one FP solve).
    initial_state
        Starting state (default ``disc.initial_guess()``); only its ``M`` (``relax="m"``) or its
        ``U`` (and ``lam``) (``relax="u"``) is used.
    progress, raise_on_failure
        As in :func:`~mfg_solvers.coupling.solve_newton`.

    Returns
    -------
    Solution
        ``solver="fixed_point"``, with ``relaxation`` and ``relax`` in the attributes.
    """
    theta = check_fraction("relaxation", relaxation)
    relax = check_choice("relax", relax, RELAX)
    loop = OuterLoop(disc, "fixed_point", tol=tol, max_iter=max_iter, progress=progress,
                     raise_on_failure=raise_on_failure,
                     settings={"relaxation": theta, "relax": relax}, initial_state=initial_state)
    return _picard(disc, loop, relax, lambda k: theta)


def solve_fictitious_play(
    disc,
    *,
    schedule: str = "1/(k+1)",
    tol: float = 1e-3,
    max_iter: int = 2000,
    initial_state=None,
    progress: bool = True,
    raise_on_failure: bool = True,
):
    """Fictitious play: best response to the averaged density, then update the average.

    Parameters
    ----------
    disc
        A discretisation offering the interface of ``docs/architecture.md``.
    schedule
        Averaging weight :math:`\\delta_k`: ``"1/(k+1)"`` (the running average of all best
        responses) or ``"2/(k+2)"`` (conditional-gradient step).
    tol, max_iter
        Stop when the full-system residual at :math:`(\\mathrm{HJB}(\\bar M_k), \\bar M_k)` is
        below ``tol``. The convergence is sublinear (the residual decays roughly like
        :math:`C/k` with ``"1/(k+1)"``), hence the loose default; ``"2/(k+2)"`` is usually
        faster.
    initial_state
        Starting state (default ``disc.initial_guess()``); its ``M`` is the first average.
    progress, raise_on_failure
        As in :func:`~mfg_solvers.coupling.solve_newton`.

    Returns
    -------
    Solution
        ``solver="fictitious_play"``, with ``schedule`` in the attributes.
    """
    schedule = check_choice("schedule", schedule, tuple(SCHEDULES))
    loop = OuterLoop(disc, "fictitious_play", tol=tol, max_iter=max_iter, progress=progress,
                     raise_on_failure=raise_on_failure, settings={"schedule": schedule},
                     initial_state=initial_state)
    return _picard(disc, loop, "m", SCHEDULES[schedule])
