r"""LQG benchmark of MF-PID: OU agents with a Gaussian terminal law.

The benchmark of M. Chertkov, *Mean-Field Path-Integral Diffusion: From Samples to Interacting
Agents*, arXiv:2605.00007 (2026); its closed forms are also stated in the package documentation
(docs/mfpid.md, section "Closed forms").

Agents follow :math:`dx = (Ax + u)\,dt + dW` on :math:`[0, 1]` from a Dirac start :math:`x_0 = m_0`,
pay :math:`\tfrac12\|u\|^2 + \tfrac12(x-\nu_t)^\top Q(x-\nu_t)` and must reach
:math:`x_1\sim\mathcal N(m_{\rm tar}, \Sigma_{\rm tar})` (hard constraint, no terminal cost). The
optimal feedback is :math:`u = -(S_t x + s_t)` with

.. math::

    \dot S = S^2 - A^\top S - SA - Q,\qquad \dot s = (S - A^\top)s + Q\nu,\qquad
    \dot m = (A - S)m - s,\qquad \dot\Sigma = (A-S)\Sigma + \Sigma(A-S)^\top + I,

and, with the mean control :math:`\bar u = -(Sm + s)`, the mean obeys the two-point problem
:math:`\dot m = Am + \bar u`, :math:`\dot{\bar u} = -A^\top\bar u + Q(m - \nu)`,
:math:`m(0) = m_0`, :math:`m(1) = m_{\rm tar}`. The guidances are the mean field
(:math:`\nu = m`: :math:`\dot{\bar u} = -A^\top\bar u`, so :math:`\ddot m = A^2 m` for symmetric
:math:`A`) and the independent-agent constants :math:`\nu\equiv0` and
:math:`\nu\equiv m_{\rm tar}`. Power and cumulative energy carry no factor 1/2:
:math:`P = \operatorname{tr}(S\Sigma S) + \|\bar u\|^2`, :math:`\mathcal E(t) = \int_0^t P`.

One dimension (:class:`LQGBenchmark1D`, :math:`A = -\kappa`, :math:`Q = q`): with
:math:`\Delta = \sqrt{\kappa^2+q}`,

.. math::

    S_t = -\kappa + \Delta\frac{1+\rho e^{2\Delta(t-1)}}{1-\rho e^{2\Delta(t-1)}},\qquad
    \Sigma_t = \frac{(1-\rho e^{2\Delta(t-1)})(1-e^{-2\Delta t})}
                    {2\Delta(1-\rho e^{-2\Delta})},\qquad
    \rho = \frac{2\Delta\sigma^2_{\rm tar}+e^{-2\Delta}-1}
                {2\Delta\sigma^2_{\rm tar}e^{-2\Delta}+e^{-2\Delta}-1};

the mean-field mean :math:`m_t = [m_0\sinh\kappa(1-t) + m_{\rm tar}\sinh\kappa t]/\sinh\kappa`,
and for a constant centre :math:`\bar m`, :math:`\ddot m = \Delta^2 m - q\bar m`, i.e.
:math:`m_t = m_p + (m_0-m_p)\frac{\sinh\Delta(1-t)}{\sinh\Delta}
+ (m_{\rm tar}-m_p)\frac{\sinh\Delta t}{\sinh\Delta}`, :math:`m_p = q\bar m/\Delta^2`;
then :math:`\bar u = \dot m + \kappa m` and :math:`s = -\bar u - S m`.

Matrix form (:class:`LQGBenchmark`): the Riccati equation is linearised by
:math:`S = YX^{-1}`, :math:`\tfrac{d}{dt}[X; Y] = H[X; Y]`,
:math:`H = \begin{pmatrix}A&-I\\-Q&-A^\top\end{pmatrix}`,
and the precision of the forward Hopf--Cole factor :math:`G^{-1}` (the law of the path is
:math:`\propto\varphi_t\psi_t`) by :math:`G = UV^{-1}`,
:math:`\tfrac{d}{dt}[U; V] = \begin{pmatrix}A&I\\Q&-A^\top\end{pmatrix}[U; V]`,
:math:`U_0 = 0`, :math:`V_0 = I` (:math:`\dot G = I + AG + GA^\top - GQG`). Then
:math:`\Sigma_t = (G_t^{-1} + S_t)^{-1} = G_t(I + S_tG_t)^{-1}` and the terminal constraint gives
:math:`S_1 = \Sigma_{\rm tar}^{-1} - G_1^{-1}` explicitly. The mean two-point problem is solved with
one matrix exponential of the augmented linear system. Everything is closed form (matrix
exponentials); the energy is a Gauss--Legendre quadrature of the smooth power (exact to round-off).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import expm

from .mfpid import _float_array, _real, _times

__all__ = ["LQGBenchmark1D", "LQGBenchmark", "GUIDANCES"]

#: Named guidances: the mean field and the two independent-agent constant centres.
GUIDANCES = ("mf", "ia_zero", "ia_target")

_GL_X, _GL_W = np.polynomial.legendre.leggauss(40)


def _sinh_ratio(x: float, t: np.ndarray) -> np.ndarray:
    """sinh(x t) / sinh(x) for x >= 0 (t at x = 0), without overflow."""
    if x == 0.0:
        return np.asarray(t, dtype=float).copy()
    return np.exp(x * (t - 1.0)) * np.expm1(-2.0 * x * t) / np.expm1(-2.0 * x)


def _cosh_ratio(x: float, t: np.ndarray) -> np.ndarray:
    """x cosh(x t) / sinh(x) for x >= 0 (1 at x = 0), without overflow."""
    if x == 0.0:
        return np.ones_like(np.asarray(t, dtype=float))
    return x * np.exp(x * (t - 1.0)) * (1.0 + np.exp(-2.0 * x * t)) / (-np.expm1(-2.0 * x))


def _cumulative_integral(f, t: np.ndarray, panels: int = 4) -> np.ndarray:
    """:math:`\\int_0^{t} f` for each entry of t (composite 40-point Gauss--Legendre)."""
    t = np.asarray(t, dtype=float)
    out = np.zeros(t.shape)
    for p in range(panels):
        a = t * p / panels
        b = t * (p + 1) / panels
        nodes = 0.5 * (b - a)[:, None] * _GL_X[None, :] + 0.5 * (a + b)[:, None]
        vals = f(nodes.ravel()).reshape(nodes.shape)
        out += 0.5 * (b - a) * (vals @ _GL_W)
    return out


class LQGBenchmark1D:
    r"""One-dimensional LQG benchmark: :math:`dx = (-\kappa x + u)dt + dW`, running cost
    :math:`\tfrac12u^2 + \tfrac q2(x-\nu)^2`, :math:`x_0 = m_0`,
    :math:`x_1\sim\mathcal N(m_{\rm tar},\sigma_{\rm tar}^2)`.

    Defaults are the figure parameters
    :math:`(\kappa, q, m_{\rm tar}, \sigma_{\rm tar}) = (0.6, 12, 2, 0.5)`.
    Guidances: ``"mf"`` (:math:`\nu = m`), ``"ia_zero"`` (:math:`\nu\equiv0`), ``"ia_target"``
    (:math:`\nu\equiv m_{\rm tar}`) or any real number (a constant centre).
    """

    def __init__(self, kappa: float = 0.6, q: float = 12.0, m_tar: float = 2.0,
                 sigma_tar: float = 0.5, m0: float = 0.0):
        self.kappa = _real("kappa", kappa, nonneg=True)
        self.q = _real("q", q, nonneg=True)
        self.m_tar = _real("m_tar", m_tar)
        self.sigma_tar = _real("sigma_tar", sigma_tar, positive=True)
        self.m0 = _real("m0", m0)
        self.delta = float(np.sqrt(self.kappa**2 + self.q))
        if self.delta == 0.0:
            raise ValueError("kappa=0 and q=0: the Riccati closed form needs kappa^2 + q > 0")
        D, s2 = self.delta, self.sigma_tar**2
        e = np.exp(-2.0 * D)
        den = 2.0 * D * s2 * e + e - 1.0
        if den == 0.0:
            raise ValueError(f"sigma_tar={sigma_tar!r} makes rho singular")
        self.rho = float((2.0 * D * s2 + e - 1.0) / den)
        if not self.rho < 1.0:
            raise ValueError(
                f"sigma_tar={sigma_tar!r} gives rho={self.rho!r} >= 1: the Riccati solution "
                "blows up inside [0, 1]"
            )

    # interface shared with the matrix form
    dim = 1

    @property
    def drift_matrix(self) -> np.ndarray:
        return np.array([[-self.kappa]])

    def _t(self, t):
        return _times("t", t, lo_open=False, hi_open=False)

    def riccati(self, t) -> np.ndarray:
        """:math:`S_t`."""
        tt, sc = self._t(t)
        E = self.rho * np.exp(2.0 * self.delta * (tt - 1.0))
        out = -self.kappa + self.delta * (1.0 + E) / (1.0 - E)
        return out[0] if sc else out

    def variance(self, t) -> np.ndarray:
        """:math:`\\Sigma_t` (the same for every guidance)."""
        tt, sc = self._t(t)
        D, rho = self.delta, self.rho
        out = ((1.0 - rho * np.exp(2.0 * D * (tt - 1.0))) * (-np.expm1(-2.0 * D * tt))
               / (2.0 * D * (1.0 - rho * np.exp(-2.0 * D))))
        return out[0] if sc else out

    def _centre(self, guidance):
        if isinstance(guidance, str):
            if guidance == "mf":
                return None
            if guidance == "ia_zero":
                return 0.0
            if guidance == "ia_target":
                return self.m_tar
            raise ValueError(f"guidance={guidance!r}; allowed: {GUIDANCES} or a number")
        return _real("guidance", guidance)

    def _mean_and_rate(self, tt, guidance):
        c = self._centre(guidance)
        m0, m1 = self.m0, self.m_tar
        if c is None:
            k = self.kappa
            m = m0 * _sinh_ratio(k, 1.0 - tt) + m1 * _sinh_ratio(k, tt)
            dm = -m0 * _cosh_ratio(k, 1.0 - tt) + m1 * _cosh_ratio(k, tt)
        else:
            D = self.delta
            mp = self.q * c / D**2
            m = mp + (m0 - mp) * _sinh_ratio(D, 1.0 - tt) + (m1 - mp) * _sinh_ratio(D, tt)
            dm = -(m0 - mp) * _cosh_ratio(D, 1.0 - tt) + (m1 - mp) * _cosh_ratio(D, tt)
        return m, dm

    def mean(self, t, guidance="mf") -> np.ndarray:
        """Population mean :math:`m_t`."""
        tt, sc = self._t(t)
        m = self._mean_and_rate(tt, guidance)[0]
        return m[0] if sc else m

    def mean_control(self, t, guidance="mf") -> np.ndarray:
        """:math:`\\bar u_t = \\mathbb E[u_t] = \\dot m_t + \\kappa m_t`."""
        tt, sc = self._t(t)
        m, dm = self._mean_and_rate(tt, guidance)
        out = dm + self.kappa * m
        return out[0] if sc else out

    def offset(self, t, guidance="mf") -> np.ndarray:
        """:math:`s_t = -\\bar u_t - S_t m_t` (feedback :math:`u = -(S_tx + s_t)`)."""
        tt, sc = self._t(t)
        m, dm = self._mean_and_rate(tt, guidance)
        out = -(dm + self.kappa * m) - self.riccati(tt) * m
        return out[0] if sc else out

    def power(self, t, guidance="mf") -> np.ndarray:
        """:math:`P(t) = \\mathbb E[u_t^2] = S_t^2\\Sigma_t + \\bar u_t^2`."""
        tt, sc = self._t(t)
        out = self.riccati(tt) ** 2 * self.variance(tt) + self.mean_control(tt, guidance) ** 2
        return out[0] if sc else out

    def energy(self, t=1.0, guidance="mf") -> np.ndarray:
        """Cumulative energy :math:`\\mathcal E(t) = \\int_0^t\\mathbb E[u^2]\\,dt'` (no 1/2)."""
        tt, sc = self._t(t)
        out = _cumulative_integral(lambda s: self.power(s, guidance), tt)
        return out[0] if sc else out

    def offset_euler(self, guidance="ia_zero", n_points: int = 4001) -> float:
        r""":math:`s_0` by explicit-Euler shooting on a uniform grid of ``n_points`` points.

        Integrates :math:`\dot s = q\bar m + (\kappa+S)s`, :math:`\dot m = -(\kappa+S)m - s`
        (:math:`S` in closed form at the grid points, :math:`m_0` the start) with explicit Euler
        and solves the affine condition :math:`m_1 = m_{\rm tar}` for :math:`s_0` -- the
        first-order discretisation of the paper's companion code (its printed values carry
        an :math:`O(1/N)` relative error against :meth:`offset`). Constant centres only.
        """
        c = self._centre(guidance)
        if c is None:
            raise ValueError("offset_euler needs a constant centre ('ia_zero', 'ia_target' or "
                             "a number), not guidance='mf'")
        if isinstance(n_points, bool) or not isinstance(n_points, int | np.integer) \
                or n_points < 2:
            raise ValueError(f"n_points={n_points!r} must be an integer >= 2")
        t = np.linspace(0.0, 1.0, int(n_points))
        dt = t[1] - t[0]
        rate = self.kappa + self.riccati(t)

        def end_mean(s0):
            s, m = s0, self.m0
            for n in range(t.size - 1):
                s, m = s + dt * (self.q * c + rate[n] * s), m + dt * (-rate[n] * m - s)
            return m

        m_a, m_b = end_mean(0.0), end_mean(1.0)
        return float((self.m_tar - m_a) / (m_b - m_a))


class LQGBenchmark:
    r"""Matrix LQG benchmark: :math:`dx = (Ax+u)dt + dW` in :math:`\mathbb R^d`, running cost
    :math:`\tfrac12\|u\|^2+\tfrac12(x-\nu)^\top Q(x-\nu)`, :math:`x_0 = m_0`,
    :math:`x_1\sim\mathcal N(m_{\rm tar}, \Sigma_{\rm tar})`.

    Parameters
    ----------
    A
        (d, d) drift matrix (e.g. :math:`-\kappa I`).
    Q
        (d, d) symmetric positive semi-definite stiffness.
    sigma_tar
        (d, d) symmetric positive-definite terminal covariance.
    m_tar, m0
        (d,) terminal mean and start (default: the origin).

    The closed forms use matrix exponentials of :math:`2d\times2d` matrices; they are accurate
    while the growth :math:`e^{\lambda_{\max}}` of the Hamiltonian flow stays moderate
    (:math:`\lambda_{\max}\lesssim 30`).
    """

    def __init__(self, A, Q, sigma_tar, m_tar, m0=None):
        A = np.atleast_2d(_float_array("A", A))
        d = A.shape[0]
        if A.shape != (d, d):
            raise ValueError(f"A has shape {A.shape}; expected a square matrix")
        self.dim = d
        self.drift_matrix = A
        self.Q = self._sym("Q", Q, psd=True)
        self.sigma_tar = self._sym("sigma_tar", sigma_tar, psd=False)
        self.m_tar = self._vec("m_tar", m_tar)
        self.m0 = np.zeros(d) if m0 is None else self._vec("m0", m0)
        I = np.eye(d)
        self._H_S = np.block([[A, -I], [-self.Q, -A.T]])
        self._H_G = np.block([[A, I], [self.Q, -A.T]])
        G1 = self._forward(np.array([1.0]))[0]
        self.S1 = self._symm(np.linalg.inv(self.sigma_tar) - np.linalg.inv(G1))

    def _sym(self, name, value, psd):
        M = np.atleast_2d(_float_array(name, value))
        d = self.dim
        if M.shape == (1, 1) and d > 1:
            M = M[0, 0] * np.eye(d)
        if M.shape != (d, d):
            raise ValueError(f"{name} has shape {M.shape}; expected ({d}, {d})")
        scale = max(1.0, float(np.abs(M).max()))
        if np.abs(M - M.T).max() > 1e-12 * scale:
            raise ValueError(f"{name} must be symmetric")
        lam = np.linalg.eigvalsh(M)
        if psd and lam.min() < -1e-12 * scale:
            raise ValueError(f"{name} must be positive semi-definite")
        if not psd and lam.min() <= 0:
            raise ValueError(f"{name} must be positive definite")
        return 0.5 * (M + M.T)

    def _vec(self, name, value):
        v = np.atleast_1d(_float_array(name, value))
        if v.size == 1 and self.dim > 1:
            v = np.full(self.dim, float(v[0]))
        if v.shape != (self.dim,):
            raise ValueError(f"{name} has shape {v.shape}; expected ({self.dim},)")
        return v

    @staticmethod
    def _symm(M):
        return 0.5 * (M + np.swapaxes(M, -1, -2))

    def _t(self, t):
        return _times("t", t, lo_open=False, hi_open=False)

    def _forward(self, tt):
        """G_t = U V^{-1} (forward-factor covariance), shape (n, d, d); G_0 = 0."""
        d = self.dim
        E = expm(self._H_G[None] * tt[:, None, None])
        U, V = E[:, :d, d:], E[:, d:, d:]
        return self._symm(np.swapaxes(np.linalg.solve(np.swapaxes(V, 1, 2),
                                                      np.swapaxes(U, 1, 2)), 1, 2))

    def forward_covariance(self, t) -> np.ndarray:
        """:math:`G_t`: covariance of the forward Hopf--Cole factor from the Dirac start."""
        tt, sc = self._t(t)
        out = self._forward(tt)
        return out[0] if sc else out

    def riccati(self, t) -> np.ndarray:
        """:math:`S_t`, shape (n, d, d)."""
        tt, sc = self._t(t)
        d = self.dim
        base = np.vstack([np.eye(d), self.S1])
        XY = expm(self._H_S[None] * (tt - 1.0)[:, None, None]) @ base
        X, Y = XY[:, :d], XY[:, d:]
        out = self._symm(np.swapaxes(np.linalg.solve(np.swapaxes(X, 1, 2),
                                                     np.swapaxes(Y, 1, 2)), 1, 2))
        return out[0] if sc else out

    def variance(self, t) -> np.ndarray:
        """:math:`\\Sigma_t = G_t(I + S_tG_t)^{-1}`, shape (n, d, d)."""
        tt, sc = self._t(t)
        G = self._forward(tt)
        S = self.riccati(tt).reshape(tt.size, self.dim, self.dim)
        I = np.eye(self.dim)
        out = self._symm(np.linalg.solve(np.swapaxes(I + S @ G, -1, -2), G))
        return out[0] if sc else out

    def _centre(self, guidance):
        if isinstance(guidance, str):
            if guidance == "mf":
                return None
            if guidance == "ia_zero":
                return np.zeros(self.dim)
            if guidance == "ia_target":
                return self.m_tar.copy()
            raise ValueError(f"guidance={guidance!r}; allowed: {GUIDANCES} or a vector")
        return self._vec("guidance", guidance)

    def _mean_state(self, tt, guidance):
        """(m, ubar) at times tt from the augmented linear flow [m; ubar; 1]."""
        d = self.dim
        A, Q = self.drift_matrix, self.Q
        nu = self._centre(guidance)
        L = np.zeros((2 * d + 1, 2 * d + 1))
        L[:d, :d] = A
        L[:d, d:2 * d] = np.eye(d)
        L[d:2 * d, d:2 * d] = -A.T
        if nu is not None:
            L[d:2 * d, :d] = Q
            L[d:2 * d, 2 * d] = -Q @ nu
        E1 = expm(L)
        # m(1) = E_mm m0 + E_mu u0 + E_m1 = m_tar
        u0 = np.linalg.solve(E1[:d, d:2 * d], self.m_tar - E1[:d, :d] @ self.m0 - E1[:d, 2 * d])
        z0 = np.concatenate([self.m0, u0, [1.0]])
        Z = expm(L[None] * tt[:, None, None]) @ z0
        return Z[:, :d], Z[:, d:2 * d]

    def mean(self, t, guidance="mf") -> np.ndarray:
        """Population mean :math:`m_t`, shape (n, d)."""
        tt, sc = self._t(t)
        out = self._mean_state(tt, guidance)[0]
        return out[0] if sc else out

    def mean_control(self, t, guidance="mf") -> np.ndarray:
        """:math:`\\bar u_t = \\mathbb E[u_t]`, shape (n, d)."""
        tt, sc = self._t(t)
        out = self._mean_state(tt, guidance)[1]
        return out[0] if sc else out

    def offset(self, t, guidance="mf") -> np.ndarray:
        """:math:`s_t = -\\bar u_t - S_t m_t`, shape (n, d)."""
        tt, sc = self._t(t)
        m, ub = self._mean_state(tt, guidance)
        S = self.riccati(tt).reshape(tt.size, self.dim, self.dim)
        out = -ub - np.einsum("nij,nj->ni", S, m)
        return out[0] if sc else out

    def power(self, t, guidance="mf") -> np.ndarray:
        """:math:`P(t) = \\operatorname{tr}(S\\Sigma S) + \\|\\bar u\\|^2`."""
        tt, sc = self._t(t)
        S = self.riccati(tt).reshape(tt.size, self.dim, self.dim)
        Sig = self.variance(tt).reshape(tt.size, self.dim, self.dim)
        ub = self._mean_state(tt, guidance)[1]
        out = np.einsum("nij,njk,nik->n", S, Sig, S) + np.sum(ub**2, axis=1)
        return out[0] if sc else out

    def energy(self, t=1.0, guidance="mf") -> np.ndarray:
        """Cumulative energy :math:`\\int_0^t\\mathbb E\\|u\\|^2` (no 1/2)."""
        tt, sc = self._t(t)
        out = _cumulative_integral(lambda s: self.power(s, guidance), tt, panels=2)
        return out[0] if sc else out
