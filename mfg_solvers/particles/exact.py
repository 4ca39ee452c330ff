"""Closed forms used to verify the particle integrators.

Linear McKean--Vlasov system
----------------------------
:math:`N` exchangeable particles with

.. math::

    dX^i = \\big(A X^i + B \\bar X + c\\big)\\,dt + L\\,dW^i,\\qquad
    \\bar X = \\frac1N\\sum_j X^j,\\qquad X^i_0 \\overset{iid}\\sim \\mathcal N(m_0, S_0).

The empirical mean follows :math:`d\\bar X = ((A+B)\\bar X + c)dt + L\\,d\\bar W`
(:math:`\\operatorname{Cov}\\bar W_t = tI/N`) and the deviations :math:`X^i - \\bar X` follow
:math:`A` with noise :math:`L\\,d(W^i - \\bar W)`, independently. Hence, with
:math:`\\Sigma_M(t) = e^{Mt}S_0e^{M^\\top t} + \\int_0^t e^{Ms}LL^\\top e^{M^\\top s}ds`:

* mean of every particle: :math:`m(t) = e^{(A+B)t}m_0 + \\int_0^t e^{(A+B)s}ds\\,c`;
* covariance of one particle: :math:`(1 - \\tfrac1N)\\Sigma_A(t) + \\tfrac1N\\Sigma_{A+B}(t)`;
* expected empirical covariance (:math:`1/N` normalisation): :math:`(1-\\tfrac1N)\\Sigma_A(t)`;
* mean-field limit (:math:`N\\to\\infty`): law :math:`\\mathcal N(m(t), \\Sigma_A(t))`.

The quadratic interaction :math:`W = \\tfrac k2|x|^2` is :math:`A \\to A - kI`, :math:`B = kI`. The
OU process is :math:`B = 0`.

With ``scheme="euler"`` the same quantities are returned for the Euler--Maruyama iterates
(:math:`e^{M\\Delta t}\\to I + M\\Delta t`,
:math:`\\int_0^{\\Delta t}\\to LL^\\top\\Delta t`), exact
for every :math:`\\Delta t`: their difference from the exact values is the weak error of the scheme.

Brownian motion in an interval
------------------------------
:func:`interval_survival`: :math:`P(\\tau > t)` for :math:`x_0 + sW` in :math:`(0, \\ell)` with
absorbing ends,
:math:`\\sum_{k\\,odd} \\frac4{k\\pi}\\sin\\frac{k\\pi x_0}{\\ell}
\\,e^{-k^2\\pi^2 s^2 t/(2\\ell^2)}`.
"""

from __future__ import annotations

import numpy as np

from .integrators import ou_transition


def _mat(name, v, d):
    a = np.asarray(v, dtype=float)
    if a.ndim == 0:
        return float(a) * np.eye(d)
    if a.ndim == 1:
        return np.diag(a)
    if a.shape != (d, d):
        raise ValueError(f"{name} has shape {a.shape}; expected ({d}, {d})")
    return a


def _euler_transition(M, c, LLt, dt, n):
    d = M.shape[0]
    E1 = np.eye(d) + M * dt
    E = np.eye(d)
    f = np.zeros(d)
    Q = np.zeros((d, d))
    for _ in range(n):
        E = E1 @ E
        f = E1 @ f + c * dt
        Q = E1 @ Q @ E1.T + LLt * dt
    return E, f, Q


def linear_mv_moments(t, m0, S0, A, B=0.0, c=0.0, L=0.0, N=None, scheme="exact", n_steps=None):
    """Mean and covariances of the linear McKean--Vlasov system at time ``t`` (module docstring).

    Returns a dict with ``mean`` (``(d,)``), ``cov_particle`` (one particle's covariance at
    finite ``N``; the mean-field covariance if ``N`` is None), ``cov_empirical`` (expected
    :math:`1/N` empirical covariance), ``cov_meanfield`` (:math:`\\Sigma_A`) and ``cov_mean``
    (covariance of the empirical mean, :math:`\\Sigma_{A+B}/N`).
    ``scheme="euler"`` with ``n_steps`` gives the Euler--Maruyama iterates' moments.
    """
    m0 = np.atleast_1d(np.asarray(m0, dtype=float))
    d = m0.size
    S0 = _mat("S0", S0, d)
    A = _mat("A", A, d)
    B = _mat("B", B, d)
    c = np.broadcast_to(np.asarray(c, dtype=float), (d,)).copy()
    Lm = _mat("L", L, d)
    LLt = Lm @ Lm.T
    t = float(t)
    if scheme == "exact":
        E_dev, _, Q_dev = ou_transition(A, c, LLt, t)
        E_mean, f_mean, Q_mean = ou_transition(A + B, c, LLt, t)
    elif scheme == "euler":
        if n_steps is None or n_steps < 1:
            raise ValueError(f"n_steps={n_steps!r}: the Euler moments need a positive step count")
        dt = t / n_steps
        E_dev, _, Q_dev = _euler_transition(A, c, LLt, dt, n_steps)
        E_mean, f_mean, Q_mean = _euler_transition(A + B, c, LLt, dt, n_steps)
    else:
        raise ValueError(f"scheme={scheme!r} must be 'exact' or 'euler'")
    mean = E_mean @ m0 + f_mean
    sig_dev = E_dev @ S0 @ E_dev.T + Q_dev
    sig_mean = E_mean @ S0 @ E_mean.T + Q_mean
    if N is None:
        cov_p = sig_dev
        cov_emp = sig_dev
        cov_mean = np.zeros((d, d))
    else:
        cov_p = (1.0 - 1.0 / N) * sig_dev + sig_mean / N
        cov_emp = (1.0 - 1.0 / N) * sig_dev
        cov_mean = sig_mean / N
    return {
        "mean": mean,
        "cov_particle": cov_p,
        "cov_empirical": cov_emp,
        "cov_meanfield": sig_dev,
        "cov_mean": cov_mean,
    }


def interval_survival(x0, length, s, t, terms=200) -> float:
    """:math:`P(\\tau > t)` for Brownian motion :math:`x_0 + sW` killed outside
    :math:`(0, \\ell)`."""
    if not 0 < x0 < length:
        return 0.0
    k = 2 * np.arange(terms) + 1
    return float(np.sum(4.0 / (k * np.pi) * np.sin(k * np.pi * x0 / length)
                        * np.exp(-(k * np.pi * s / length) ** 2 * t / 2.0)))
