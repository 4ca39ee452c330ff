r"""Closed-form linear-quadratic mean-field games and stationary Gaussian equilibria.

Conventions: agents follow :math:`dX_t = \alpha_t\,dt + \sigma\,dW_t` in :math:`\mathbb R^d`, the
Hamiltonian is :math:`H(p) = \tfrac12|p|^2` (optimal feedback :math:`\alpha^* = -\nabla u`) and the
viscosity is :math:`\nu = \sigma^2/2`. Functions take :math:`\sigma^2` as ``sigma2`` except
:func:`ergodic_log_gaussian`, which takes the viscosity :math:`\nu` (the parameter in which its
formulas are simplest). The same formulas, with a numerical check case, are in the package
documentation (docs/theory.md, section "Verification cases").

Finite-horizon LQ game with mean coupling (:func:`lq_finite_horizon`)
    .. math::

        -\partial_t u - \tfrac{\sigma^2}{2}\Delta u + \tfrac12|\nabla u|^2
            &= \tfrac12 (x - \kappa\bar x)^\top Q (x - \kappa\bar x), \\
        u(T, x) &= \tfrac12 (x - \kappa_T\bar x_T)^\top Q_T (x - \kappa_T\bar x_T), \\
        \partial_t m - \tfrac{\sigma^2}{2}\Delta m - \operatorname{div}(m\nabla u) &= 0,
            \qquad m(0) = \mathcal N(\bar x_0, \Sigma_0),

    with :math:`\bar x(t) = \int x\,m(t, x)\,dx`. The solution is
    :math:`u = \tfrac12 x^\top P x + s^\top x + r`, :math:`m(t) = \mathcal N(\bar x(t), \Sigma(t))`:

    .. math::

        \dot P &= P^2 - Q, & P(T) &= Q_T,\\
        \dot s &= P s + \kappa Q \bar x, & s(T) &= -\kappa_T Q_T \bar x_T,\\
        \dot{\bar x} &= -(P\bar x + s), & \bar x(0) &= \bar x_0,\\
        \dot r &= \tfrac12|s|^2 - \tfrac{\sigma^2}{2}\operatorname{tr}P
                 - \tfrac12\kappa^2\bar x^\top Q\bar x,
            & r(T) &= \tfrac12\kappa_T^2\bar x_T^\top Q_T\bar x_T,\\
        \dot\Sigma &= -P\Sigma - \Sigma P + \sigma^2 I, & \Sigma(0) &= \Sigma_0 .

    Everything is evaluated in closed form (no ODE integration, no quadrature), with
    :math:`\tau = T - t` and the matrix functions :math:`C_A(\tau) = \cosh(\sqrt A\,\tau)`,
    :math:`S_A(\tau) = \sinh(\sqrt A\,\tau)/\sqrt A` of a symmetric matrix :math:`A`
    (:math:`\cos`/:math:`\sin` on negative eigenvalues, :math:`1`/:math:`\tau` on zero ones):

    * Riccati: :math:`P = \Phi'\Phi^{-1}` with :math:`\Phi'' = Q\Phi`, :math:`\Phi(0) = I`,
      :math:`\Phi'(0) = Q_T`, i.e. :math:`\Phi = C_Q + S_Q Q_T` (primes are
      :math:`d/d\tau`). In 1-D this is :math:`P = \sqrt q\,
      \frac{q_T + \sqrt q\tanh(\sqrt q\,\tau)}{\sqrt q + q_T\tanh(\sqrt q\,\tau)}`.
    * Mean / co-state two-point problem: :math:`y = P\bar x + s` satisfies
      :math:`\dot y = -(1-\kappa) Q \bar x`, so :math:`\ddot{\bar x} = A\bar x` with
      :math:`A = (1-\kappa)Q`, :math:`\bar x(0) = \bar x_0` and
      :math:`\dot{\bar x}(T) = -B\bar x_T`, :math:`B = (1-\kappa_T)Q_T`. Hence
      :math:`\bar x(t) = \Psi(\tau)\Psi(T)^{-1}\bar x_0` with :math:`\Psi = C_A + S_A B`, and
      :math:`s = -\dot{\bar x} - P\bar x`. (For :math:`\kappa > 1` the problem can be resonant:
      :math:`\Psi(T)` singular means no or infinitely many equilibria; a ``ValueError`` is raised.)
    * Offset: with :math:`\tfrac{d}{dt}(s^\top\bar x) = \kappa\bar x^\top Q\bar x - |s|^2`, the
      conserved quantity :math:`E = |\dot{\bar x}|^2 - \bar x^\top A\bar x` and
      :math:`\int_t^T \operatorname{tr}P = \log\det\Phi(\tau)`,
      :math:`r(t) = r(T) + \tfrac12[s^\top\bar x]_t^T - \tfrac\kappa2\int_t^T \bar x^\top A\bar x
      + \tfrac{\sigma^2}{2}\log\det\Phi(\tau)`, where
      :math:`\int_t^T \bar x^\top A \bar x
      = \tfrac12[\bar x^\top\dot{\bar x}]_t^T - \tfrac12 E\,(T-t)`.
    * Covariance: the flow of :math:`\dot z = -Pz` is :math:`G(t, t') = \Phi(\tau)\Phi(\tau')^{-1}`
      and, for any :math:`X'' = QX` with constant Wronskian
      :math:`W = \Phi^\top X' - \Phi'^\top X`, :math:`(\Phi^{-1}X)' = \Phi^{-1}\Phi^{-\top}W`. With
      the bounded choice :math:`X = e^{-\sqrt Q\tau} - S_Q(\tau)\,e^{-2\sqrt Q T}/T` (so that
      :math:`W = -(\sqrt Q + e^{-2\sqrt Q T}/T + Q_T)`, negative definite)
      :math:`\Sigma(t) = G\Sigma_0 G^\top + \sigma^2\,[G X(T) - X(\tau)]\,W^{-1}\Phi(\tau)^\top`,
      :math:`G = \Phi(\tau)\Phi(T)^{-1}`, which involves no cancellation of growing exponentials.

    Validity: :math:`\sqrt{\lambda_{\max}}\,T \le 300` for :math:`Q` and :math:`A` (beyond that the
    hyperbolic functions overflow); a ``ValueError`` is raised otherwise. The co-state
    :math:`s` is accurate in the absolute sense (to round-off relative to
    :math:`|\sqrt Q\,\bar x|`).

Ergodic LQ game (:func:`ergodic_lq`)
    :math:`\lambda - \tfrac{\sigma^2}{2}\Delta u + \tfrac12|\nabla u|^2
    = \tfrac12(x - \kappa\bar x)^\top Q(x - \kappa\bar x)`:
    :math:`u = \tfrac12 x^\top\sqrt Q x - \kappa\bar x^\top\sqrt Q x`,
    :math:`\lambda = \tfrac{\sigma^2}{2}\operatorname{tr}\sqrt Q`,
    :math:`m = \mathcal N(\kappa\bar x, \tfrac{\sigma^2}{2} Q^{-1/2})` with consistency
    :math:`\bar x = \kappa\bar x` (:math:`\bar x = 0` if :math:`\kappa \ne 1`; any
    :math:`\bar x` if :math:`\kappa = 1`).

Stationary Gaussian with logarithmic coupling (:func:`ergodic_log_gaussian`)
    :math:`\lambda - \nu\Delta u + \tfrac12|\nabla u|^2 = \tfrac c2|x|^2 + \alpha\log m`:
    :math:`u = \tfrac a2|x|^2`, :math:`a = (-\alpha + \sqrt{\alpha^2 + 4c\nu^2})/(2\nu)`,
    :math:`m = \mathcal N(0, \tfrac\nu a I)`,
    :math:`\lambda = d\,[\nu a + \tfrac\alpha2\log\tfrac{a}{2\pi\nu}]`.

Harmonic ground state (:func:`harmonic_ground_state`)
    :math:`V = \tfrac k2|x|^2`, no coupling: with :math:`u = -\sigma^2\log\varphi`,
    :math:`m = \varphi^2`,
    :math:`-\tfrac{\sigma^4}{2}\Delta\varphi + V\varphi = \lambda\varphi`; ground state
    :math:`\lambda = d\sigma^2\sqrt k/2`, :math:`m = \mathcal N(0, \tfrac{\sigma^2}{2\sqrt k}I)`.

Reference for the Hopf--Cole reduction of quadratic mean-field games: D. Ullmo, I. Swiecicki,
T. Gobron, *Quadratic mean field games*, Phys. Rep. (2019), arXiv:1708.07730.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._validation import real_number

#: Largest allowed sqrt(eigenvalue) * T (cosh/sinh must stay far from overflow).
MAX_GROWTH_EXPONENT = 300.0
#: Smallest allowed singular value of Psi(T) (relative to the size of Psi(T), T Psi'(T)):
#: below it the mean two-point problem is treated as resonant.
RESONANCE_TOLERANCE = 1e-10


# ---------------------------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------------------------
_real = real_number


def _infer_dim(dim, *values) -> int:
    """Dimension from ``dim`` or from the first non-scalar of ``values``."""
    if dim is not None:
        if isinstance(dim, bool) or int(dim) != dim or not 1 <= dim <= 3:
            raise ValueError(f"dim={dim!r} must be an integer in 1..3")
        return int(dim)
    for v in values:
        arr = np.asarray(v)
        if arr.ndim >= 1:
            return int(arr.shape[0])
    return 1


def _sym_matrix(name: str, value, dim: int, *, psd: bool = True) -> np.ndarray:
    """A scalar (times the identity) or a symmetric ``dim x dim`` matrix, float64."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name}={value!r} must be a number or a {dim}x{dim} matrix") from None
    if arr.ndim == 0:
        arr = float(arr) * np.eye(dim)
    if arr.shape != (dim, dim):
        raise ValueError(f"{name} has shape {arr.shape}; expected a scalar or ({dim}, {dim})")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}={value!r} must be finite")
    scale = max(1.0, float(np.abs(arr).max()))
    if np.abs(arr - arr.T).max() > 1e-12 * scale:
        raise ValueError(f"{name}={value!r} must be symmetric")
    arr = 0.5 * (arr + arr.T)
    if psd and np.linalg.eigvalsh(arr).min() < -1e-12 * scale:
        raise ValueError(f"{name}={value!r} must be positive semi-definite")
    return arr


def _vector(name: str, value, dim: int) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name}={value!r} must be a number or a length-{dim} vector") from None
    if arr.ndim == 0:
        arr = np.full(dim, float(arr))
    if arr.shape != (dim,):
        raise ValueError(f"{name} has shape {arr.shape}; expected a scalar or ({dim},)")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}={value!r} must be finite")
    return arr


def _points(x, dim: int) -> np.ndarray:
    """Points as an array of shape (..., dim); in 1-D any shape is accepted."""
    arr = np.asarray(x, dtype=float)
    if dim == 1:
        return arr[..., None]
    if arr.ndim == 0 or arr.shape[-1] != dim:
        raise ValueError(f"x has shape {arr.shape}; expected a trailing axis of length {dim}")
    return arr


# ---------------------------------------------------------------------------------------------
# matrix functions cosh(sqrt(A) tau), sinh(sqrt(A) tau)/sqrt(A), exp(-sqrt(A) tau)
# ---------------------------------------------------------------------------------------------
def _cosh_sinhc(a: np.ndarray, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Elementwise c = cosh(sqrt(a) tau), s = sinh(sqrt(a) tau)/sqrt(a), analytic in a:
    cos / sin on a < 0, and c = 1, s = tau at a = 0."""
    a, tau = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(tau, dtype=float))
    x = np.sqrt(np.abs(a)) * tau
    c = np.ones_like(x)
    ratio = np.ones_like(x)  # sinh(x)/x or sin(x)/x, 1 at x = 0
    pos = (a > 0) & (x != 0)
    neg = (a < 0) & (x != 0)
    c[pos] = np.cosh(x[pos])
    ratio[pos] = np.sinh(x[pos]) / x[pos]
    c[neg] = np.cos(x[neg])
    ratio[neg] = np.sin(x[neg]) / x[neg]
    return c, tau * ratio


def _c_s(A: np.ndarray, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """C_A(tau), S_A(tau) of shape (n, d, d) for symmetric A and tau of shape (n,)."""
    a, V = np.linalg.eigh(A)
    c, s = _cosh_sinhc(a[None, :], tau[:, None])
    return _spectral(V, c), _spectral(V, s)


def _spectral(V: np.ndarray, values: np.ndarray) -> np.ndarray:
    """V diag(values[n]) V^T for orthogonal V, ``values`` of shape (n, d)."""
    return np.einsum("ij,nj,kj->nik", V, values, V)


def _sqrtm_psd(A: np.ndarray) -> np.ndarray:
    a, V = np.linalg.eigh(A)
    return (V * np.sqrt(np.clip(a, 0.0, None))) @ V.T


def _sym(X: np.ndarray) -> np.ndarray:
    return 0.5 * (X + np.swapaxes(X, -1, -2))


def _right_divide(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """:math:`X Y^{-1}` for stacks of matrices (solves :math:`Y^\\top Z^\\top = X^\\top`)."""
    return np.swapaxes(np.linalg.solve(np.swapaxes(Y, -1, -2), np.swapaxes(X, -1, -2)), -1, -2)


# ---------------------------------------------------------------------------------------------
# finite horizon
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class LQFiniteHorizon:
    r"""Closed-form solution of the finite-horizon LQ MFG with mean coupling.

    Build it with :func:`lq_finite_horizon`. The equations and the closed forms are in the
    module docstring. Methods take times ``t`` (scalar or array, in :math:`[0, T]`); results
    have shape ``t.shape`` followed by ``(d,)`` for vectors and ``(d, d)`` for matrices. In
    1-D (``dim == 1``) the trailing axes are dropped: ``mean(t)``, ``riccati(t)``,
    ``cov(t)`` ... are arrays of shape ``t.shape``.

    Attributes
    ----------
    Q, Q_T : (d, d) arrays
        Running and terminal weights :math:`Q`, :math:`Q_T`.
    kappa, kappa_T : float
        Mean-coupling factors :math:`\kappa`, :math:`\kappa_T`.
    sigma2 : float
        :math:`\sigma^2` (the viscosity is :math:`\nu = \sigma^2/2`).
    T : float
        Horizon.
    mean0 : (d,) array, cov0 : (d, d) array
        :math:`\bar x_0`, :math:`\Sigma_0` of the Gaussian initial density.
    """

    Q: np.ndarray
    Q_T: np.ndarray
    kappa: float
    kappa_T: float
    sigma2: float
    T: float
    mean0: np.ndarray
    cov0: np.ndarray
    dim: int
    _c: np.ndarray = field(repr=False, compare=False)  # Psi(T)^{-1} mean0

    # -- internal pieces on flat arrays of tau = T - t --------------------------------------
    def _tau(self, t) -> tuple[np.ndarray, tuple[int, ...]]:
        t = np.asarray(t, dtype=float)
        if not np.all(np.isfinite(t)):
            raise ValueError(f"t={t!r} must be finite")
        tol = 1e-12 * max(1.0, self.T)
        if np.any(t < -tol) or np.any(t > self.T + tol):
            raise ValueError(f"t={t!r} must lie in [0, T] = [0, {self.T}]")
        tau = np.clip(self.T - t.ravel(), 0.0, self.T)
        return tau, t.shape

    def _phi(self, tau):
        """Phi(tau), Phi'(tau) (d/dtau) with Phi'' = Q Phi, Phi(0) = I, Phi'(0) = Q_T."""
        C, S = _c_s(self.Q, tau)
        return C + S @ self.Q_T, self.Q @ S + C @ self.Q_T

    def _psi(self, tau):
        """Psi(tau), Psi'(tau) with Psi'' = A Psi, Psi(0) = I, Psi'(0) = B."""
        A = (1.0 - self.kappa) * self.Q
        B = (1.0 - self.kappa_T) * self.Q_T
        C, S = _c_s(A, tau)
        return C + S @ B, A @ S + C @ B

    def _P(self, tau):
        Phi, dPhi = self._phi(tau)
        # P = Phi' Phi^{-1}  <=>  Phi^T P^T = Phi'^T
        return _sym(_right_divide(dPhi, Phi))

    def _mean(self, tau):
        """(xbar, d xbar/dt) at tau = T - t."""
        Psi, dPsi = self._psi(tau)
        return Psi @ self._c, -(dPsi @ self._c)

    def _s(self, tau):
        xbar, vbar = self._mean(tau)
        return -vbar - np.einsum("nij,nj->ni", self._P(tau), xbar)

    def _r(self, tau):
        xbar, vbar = self._mean(tau)
        s = -vbar - np.einsum("nij,nj->ni", self._P(tau), xbar)
        A = (1.0 - self.kappa) * self.Q
        B = (1.0 - self.kappa_T) * self.Q_T
        xT = self._mean(np.zeros(1))[0][0]
        sT = -self.kappa_T * (self.Q_T @ xT)
        vT = -(B @ xT)
        energy = vT @ vT - xT @ A @ xT  # |xbar'|^2 - xbar^T A xbar, constant in t
        int_xAx = 0.5 * (xT @ vT - np.einsum("ni,ni->n", xbar, vbar)) - 0.5 * energy * tau
        rT = 0.5 * self.kappa_T**2 * (xT @ self.Q_T @ xT)
        Phi, _ = self._phi(tau)
        sign, logdet = np.linalg.slogdet(Phi)
        if np.any(sign <= 0):  # cannot happen for Q, Q_T >= 0; guards against misuse
            raise ValueError("det Phi(tau) <= 0: the Riccati solution does not exist")
        return (
            rT
            + 0.5 * (sT @ xT - np.einsum("ni,ni->n", s, xbar))
            - 0.5 * self.kappa * int_xAx
            + 0.5 * self.sigma2 * logdet
        )

    def _cov(self, tau):
        T = self.T
        Phi, _ = self._phi(tau)
        PhiT, _ = self._phi(np.array([T]))
        G = _right_divide(Phi, PhiT)
        # bounded second solution X = exp(-sqrt(Q) tau) - S_Q(tau) K, K = exp(-2 sqrt(Q) T) / T
        q, V = np.linalg.eigh(self.Q)
        w = np.sqrt(np.clip(q, 0.0, None))
        K = (V * (np.exp(-2.0 * w * T) / T)) @ V.T
        rootQ = (V * w) @ V.T

        def X(tt):
            _, S = _c_s(self.Q, tt)
            E = _spectral(V, np.exp(-w[None, :] * tt[:, None]))
            return E - S @ K

        W = -(rootQ + K + self.Q_T)
        XT = X(np.array([T]))
        Xtau = X(tau)
        Winv = np.linalg.inv(W)
        noise = (G @ XT - Xtau) @ Winv @ np.swapaxes(Phi, -1, -2)
        cov = G @ self.cov0 @ np.swapaxes(G, -1, -2) + self.sigma2 * noise
        return _sym(cov)

    # -- output shaping ---------------------------------------------------------------------
    def _vec(self, arr, shape):
        arr = arr.reshape(shape + (self.dim,))
        return arr[..., 0] if self.dim == 1 else arr

    def _mat(self, arr, shape):
        arr = arr.reshape(shape + (self.dim, self.dim))
        return arr[..., 0, 0] if self.dim == 1 else arr

    # -- public API -------------------------------------------------------------------------
    def riccati(self, t):
        """:math:`P(t)`, solution of :math:`\\dot P = P^2 - Q`, :math:`P(T) = Q_T`."""
        tau, shape = self._tau(t)
        return self._mat(self._P(tau), shape)

    def mean(self, t):
        """:math:`\\bar x(t)`, the mean of :math:`m(t)`."""
        tau, shape = self._tau(t)
        return self._vec(self._mean(tau)[0], shape)

    def mean_velocity(self, t):
        """:math:`\\dot{\\bar x}(t) = -(P\\bar x + s)`."""
        tau, shape = self._tau(t)
        return self._vec(self._mean(tau)[1], shape)

    def costate(self, t):
        """:math:`s(t)`, the linear coefficient of :math:`u`
        (:math:`\\dot s = Ps + \\kappa Q\\bar x`, :math:`s(T) = -\\kappa_T Q_T \\bar x_T`)."""
        tau, shape = self._tau(t)
        return self._vec(self._s(tau), shape)

    def offset(self, t):
        """:math:`r(t)`, the constant term of :math:`u`."""
        tau, shape = self._tau(t)
        return self._r(tau).reshape(shape)

    def cov(self, t):
        """:math:`\\Sigma(t)`, the covariance of :math:`m(t)` (the variance in 1-D)."""
        tau, shape = self._tau(t)
        return self._mat(self._cov(tau), shape)

    @property
    def mean_T(self):
        """:math:`\\bar x(T)` (float in 1-D, else a (d,) array)."""
        out = self.mean(self.T)
        return float(out) if self.dim == 1 else out

    @property
    def cov_T(self):
        """:math:`\\Sigma(T)` (float in 1-D, else a (d, d) array)."""
        out = self.cov(self.T)
        return float(out) if self.dim == 1 else out

    @property
    def var_T(self) -> float:
        """:math:`\\operatorname{Var}(T)` in 1-D; :math:`\\operatorname{tr}\\Sigma(T)` in d-D."""
        return float(np.trace(np.atleast_2d(self.cov_T)))

    def value(self, t: float, x):
        """:math:`u(t, x) = \\tfrac12 x^\\top P(t) x + s(t)^\\top x + r(t)` at one time ``t``.

        ``x`` has shape ``(..., d)`` (any shape in 1-D); the result has shape ``x.shape[:-1]``
        (``x.shape`` in 1-D).
        """
        tau, shape = self._tau(t)
        if shape != ():
            raise ValueError(f"t={t!r} must be a single time for value(t, x)")
        X = _points(x, self.dim)
        P, s, r = self._P(tau)[0], self._s(tau)[0], self._r(tau)[0]
        return 0.5 * np.einsum("...i,ij,...j->...", X, P, X) + X @ s + r

    def gradient(self, t: float, x):
        """:math:`\\nabla u(t, x) = P(t)x + s(t)`; the optimal feedback is its negative."""
        tau, shape = self._tau(t)
        if shape != ():
            raise ValueError(f"t={t!r} must be a single time for gradient(t, x)")
        X = _points(x, self.dim)
        out = X @ self._P(tau)[0] + self._s(tau)[0]
        return out[..., 0] if self.dim == 1 else out

    def density(self, t: float, x):
        """:math:`m(t, x) = \\mathcal N(x; \\bar x(t), \\Sigma(t))` at one time ``t``."""
        tau, shape = self._tau(t)
        if shape != ():
            raise ValueError(f"t={t!r} must be a single time for density(t, x)")
        return _gaussian_pdf(_points(x, self.dim), self._mean(tau)[0][0], self._cov(tau)[0])


def lq_finite_horizon(
    q,
    q_T,
    kappa: float,
    kappa_T: float,
    sigma2: float,
    T: float,
    mean0,
    var0,
    *,
    dim: int | None = None,
) -> LQFiniteHorizon:
    r"""Closed-form solution of the finite-horizon LQ MFG with mean coupling.

    The equations and their closed-form solution are stated in the module docstring.

    Parameters
    ----------
    q, q_T
        Running and terminal weights: scalars (times the identity) or symmetric positive
        semi-definite ``(d, d)`` matrices.
    kappa, kappa_T
        Mean-coupling factors of the running and terminal costs.
    sigma2
        :math:`\sigma^2 \ge 0` (viscosity :math:`\nu = \sigma^2/2`).
    T
        Horizon, > 0.
    mean0, var0
        Mean and covariance of the Gaussian initial density (scalars broadcast; ``var0`` a
        scalar means ``var0 * I``).
    dim
        Space dimension; inferred from the first non-scalar argument if omitted (1 otherwise).

    Returns
    -------
    LQFiniteHorizon
        With ``riccati``, ``mean``, ``costate``, ``offset``, ``cov``, ``value``, ``density``,
        ``mean_T``, ``var_T``.

    Examples
    --------
    >>> sol = lq_finite_horizon(2.0, 0.5, 0.6, 0.3, 0.36, 1.0, 1.0, 0.2)
    >>> round(sol.mean_T, 10), round(sol.var_T, 10)
    (0.5476579284, 0.1965042738)
    """
    d = _infer_dim(dim, q, q_T, mean0, var0)
    Q = _sym_matrix("q", q, d)
    QT = _sym_matrix("q_T", q_T, d)
    kappa = _real("kappa", kappa)
    kappa_T = _real("kappa_T", kappa_T)
    sigma2 = _real("sigma2", sigma2, nonneg=True)
    T = _real("T", T, positive=True)
    m0 = _vector("mean0", mean0, d)
    S0 = _sym_matrix("var0", var0, d)

    A = (1.0 - kappa) * Q
    grow = max(
        np.sqrt(np.clip(np.linalg.eigvalsh(Q), 0.0, None)).max(),
        np.sqrt(np.clip(np.linalg.eigvalsh(A), 0.0, None)).max(),
    )
    if grow * T > MAX_GROWTH_EXPONENT:
        raise ValueError(
            f"q={q!r}, kappa={kappa!r}, T={T!r}: sqrt(largest eigenvalue) * T = {grow * T:.4g} "
            f"exceeds {MAX_GROWTH_EXPONENT}; the hyperbolic closed forms would overflow"
        )
    sol = LQFiniteHorizon(Q, QT, kappa, kappa_T, sigma2, T, m0, S0, d, np.zeros(d))
    PsiT, dPsiT = sol._psi(np.array([T]))
    PsiT = PsiT[0]
    sv = np.linalg.svd(PsiT, compute_uv=False)
    scale = max(1.0, sv[0], T * np.linalg.norm(dPsiT[0], 2))
    if not np.all(np.isfinite(sv)) or sv[-1] <= RESONANCE_TOLERANCE * scale:
        raise ValueError(
            f"kappa={kappa!r}, kappa_T={kappa_T!r}, q={q!r}, q_T={q_T!r}, T={T!r}: the mean "
            f"two-point problem is resonant (smallest singular value of Psi(T) = {sv[-1]:.3g}); "
            "the LQ game has no unique equilibrium"
        )
    object.__setattr__(sol, "_c", np.linalg.solve(PsiT, m0))
    return sol


# ---------------------------------------------------------------------------------------------
# stationary (ergodic) Gaussian solutions
# ---------------------------------------------------------------------------------------------
def _gaussian_pdf(X: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    d = mean.shape[0]
    L = np.linalg.cholesky(cov)
    z = np.linalg.solve(L, (X - mean).reshape(-1, d).T).T.reshape(X.shape)
    logdet = 2.0 * np.log(np.diag(L)).sum()
    return np.exp(-0.5 * np.sum(z * z, axis=-1) - 0.5 * (d * np.log(2 * np.pi) + logdet))


@dataclass(frozen=True, eq=False)
class StationaryGaussian:
    r"""A stationary MFG solution :math:`(\lambda, u, m)`: quadratic :math:`u`, Gaussian :math:`m`.

    :math:`u(x) = \tfrac12 x^\top H x + b^\top x` (defined up to an additive constant),
    :math:`m = \mathcal N(\mu, \Sigma)`, ergodic constant :math:`\lambda`.

    Attributes
    ----------
    lam : float
        :math:`\lambda`.
    hessian : (d, d) array, linear : (d,) array
        :math:`H` and :math:`b`.
    mean : (d,) array, cov : (d, d) array
        :math:`\mu`, :math:`\Sigma`.
    """

    lam: float
    hessian: np.ndarray
    linear: np.ndarray
    mean: np.ndarray
    cov: np.ndarray

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    @property
    def variance(self) -> float:
        """:math:`\\Sigma` in 1-D (:math:`\\operatorname{tr}\\Sigma` in d-D)."""
        return float(np.trace(self.cov))

    def value(self, x):
        """:math:`u(x) = \\tfrac12 x^\\top H x + b^\\top x`.

        ``x`` has shape ``(..., d)`` (any shape in 1-D)."""
        X = _points(x, self.dim)
        return 0.5 * np.einsum("...i,ij,...j->...", X, self.hessian, X) + X @ self.linear

    def gradient(self, x):
        """:math:`\\nabla u(x) = Hx + b`."""
        X = _points(x, self.dim)
        out = X @ self.hessian + self.linear
        return out[..., 0] if self.dim == 1 else out

    def density(self, x):
        """:math:`m(x) = \\mathcal N(x; \\mu, \\Sigma)`."""
        return _gaussian_pdf(_points(x, self.dim), self.mean, self.cov)


def ergodic_lq(q, kappa: float, sigma2: float, *, mean=None, dim: int | None = None):
    r"""Ergodic LQ MFG:
    :math:`\lambda - \tfrac{\sigma^2}{2}\Delta u + \tfrac12|\nabla u|^2
    = \tfrac12 (x-\kappa\bar x)^\top Q (x-\kappa\bar x)`,
    :math:`-\tfrac{\sigma^2}{2}\Delta m - \operatorname{div}(m\nabla u) = 0`.

    Solution: :math:`u = \tfrac12 x^\top\sqrt Q x - \kappa\,\bar x^\top\sqrt Q x`,
    :math:`\lambda = \tfrac{\sigma^2}{2}\operatorname{tr}\sqrt Q` (:math:`d\sigma^2\sqrt q/2` for
    :math:`Q = qI`), :math:`m = \mathcal N(\kappa\bar x, \tfrac{\sigma^2}{2}Q^{-1/2})`.
    Consistency :math:`\bar x = \kappa\bar x` gives :math:`\bar x = 0` when :math:`\kappa \ne 1`;
    when :math:`\kappa = 1` every :math:`\bar x` is an equilibrium (pass it as ``mean``).

    Parameters
    ----------
    q
        Positive scalar or symmetric positive definite ``(d, d)`` matrix.
    kappa
        Mean-coupling factor.
    sigma2
        :math:`\sigma^2 > 0`.
    mean
        :math:`\bar x`; only allowed (and then arbitrary) when ``kappa == 1``.
    dim
        Space dimension (inferred from ``q`` / ``mean`` if omitted).
    """
    d = _infer_dim(dim, q, mean)
    Q = _sym_matrix("q", q, d)
    if np.linalg.eigvalsh(Q).min() <= 0:
        raise ValueError(f"q={q!r} must be positive definite for an ergodic LQ game")
    kappa = _real("kappa", kappa)
    sigma2 = _real("sigma2", sigma2, positive=True)
    if mean is None:
        xbar = np.zeros(d)
    else:
        xbar = _vector("mean", mean, d)
        if kappa != 1.0 and np.any(xbar != 0.0):
            raise ValueError(
                f"mean={mean!r}: with kappa={kappa!r} != 1 consistency (xbar = kappa xbar) forces "
                "xbar = 0; a non-zero mean is only allowed for kappa = 1"
            )
    R = _sqrtm_psd(Q)
    cov = 0.5 * sigma2 * np.linalg.inv(R)
    lam = 0.5 * sigma2 * float(np.trace(R))
    return StationaryGaussian(lam, R, -kappa * (R @ xbar), kappa * xbar, _sym(cov))


def ergodic_log_gaussian(c: float, alpha: float, nu: float, *, dim: int = 1):
    r"""Stationary MFG with quadratic potential and logarithmic coupling:
    :math:`\lambda - \nu\Delta u + \tfrac12|\nabla u|^2 = \tfrac c2|x|^2 + \alpha\log m`,
    :math:`-\nu\Delta m - \operatorname{div}(m\nabla u) = 0`, :math:`\int m = 1`.

    Solution (zero-flux ansatz :math:`m \propto e^{-u/\nu}`): :math:`u = \tfrac a2|x|^2` with
    :math:`a = (-\alpha + \sqrt{\alpha^2 + 4c\nu^2})/(2\nu)` (the root of
    :math:`\nu a^2 + \alpha a - c\nu = 0`), :math:`m = \mathcal N(0, \tfrac\nu a I)`,
    :math:`\lambda = d\,[\nu a + \tfrac\alpha2\log\tfrac{a}{2\pi\nu}]`.
    :math:`\alpha > 0` is crowd aversion, :math:`\alpha < 0` crowd seeking; :math:`a` must be
    positive.
    """
    c = _real("c", c)
    alpha = _real("alpha", alpha)
    nu = _real("nu", nu, positive=True)
    d = _infer_dim(dim)
    disc = alpha * alpha + 4.0 * c * nu * nu
    if disc < 0:
        raise ValueError(
            f"c={c!r}, alpha={alpha!r}, nu={nu!r}: alpha^2 + 4 c nu^2 < 0, no Gaussian solution"
        )
    a = (-alpha + np.sqrt(disc)) / (2.0 * nu)
    if a <= 0:
        raise ValueError(
            f"c={c!r}, alpha={alpha!r}, nu={nu!r}: a = {a:.4g} <= 0, no normalisable solution"
        )
    lam = d * (nu * a + 0.5 * alpha * np.log(a / (2.0 * np.pi * nu)))
    eye = np.eye(d)
    return StationaryGaussian(float(lam), a * eye, np.zeros(d), np.zeros(d), (nu / a) * eye)


def harmonic_ground_state(k: float, sigma2: float, *, dim: int = 1):
    r"""Ground state of the Hopf--Cole reduction with a harmonic potential and no coupling.

    :math:`\lambda - \tfrac{\sigma^2}{2}\Delta u + \tfrac12|\nabla u|^2 = \tfrac k2|x|^2`; with
    :math:`u = -\sigma^2\log\varphi`, :math:`m = \varphi^2` this is the linear eigenproblem
    :math:`-\tfrac{\sigma^4}{2}\Delta\varphi + \tfrac k2|x|^2\varphi = \lambda\varphi`, whose ground
    state gives :math:`\lambda = d\sigma^2\sqrt k/2`, :math:`u = \tfrac{\sqrt k}{2}|x|^2`,
    :math:`m = \mathcal N(0, \tfrac{\sigma^2}{2\sqrt k} I)`.
    """
    k = _real("k", k, positive=True)
    sigma2 = _real("sigma2", sigma2, positive=True)
    d = _infer_dim(dim)
    rk = np.sqrt(k)
    eye = np.eye(d)
    return StationaryGaussian(
        float(0.5 * d * sigma2 * rk), rk * eye, np.zeros(d), np.zeros(d), (sigma2 / (2 * rk)) * eye
    )
