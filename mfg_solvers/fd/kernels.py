"""Numba kernels of the finite-difference (ACD) discretisation.

Every kernel is dimension-agnostic: a grid of ``N`` nodes in ``d`` dimensions is described by
the neighbour tables ``nbp[k, i]`` / ``nbm[k, i]`` (index of the next / previous node of node ``i``
along axis ``k``, ``-1`` when a reflecting wall cuts the difference) and ``inv_h[k] = 1/h_k``.

Slots. Node ``i`` carries ``2d`` one-sided differences (the *slots* of the numerical Hamiltonian)

.. math::

    q_{i,2k} = (D_k^+U)_i = \\frac{U_{i+e_k}-U_i}{h_k},\\qquad
    q_{i,2k+1} = (D_k^-U)_i = \\frac{U_i-U_{i-e_k}}{h_k},

a slot whose difference would leave the box is dropped (set to 0 and never differentiated).
``D`` denotes the linear map ``U -> q`` and ``D^T`` its adjoint (:func:`slot_adjoint`).

Stencil matrices. A matrix with the sparsity of the ``2d+1``-point stencil is stored as
coefficients ``coef[i, e]``: ``e = 0`` the diagonal, ``e = 1 + 2k`` the coefficient of
``U_{nbp[k, i]}``, ``e = 2 + 2k`` that of ``U_{nbm[k, i]}`` (0 where the neighbour is absent).
The HJB Jacobian :math:`\\sigma I - \\nu\\Delta_h + A(U)` (:func:`stencil_coefficients`) is of
this form,
and so (transposed) is the FP operator.

Arrays with a leading *batch* axis ``B`` hold several time levels at once.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: Hamiltonian kind codes shared with :mod:`mfg_solvers.fd.numerical_hamiltonians`.
QUADRATIC = 0
POWER = 1
CONGESTION = 2


# ---------------------------------------------------------------------------------------------
# slots and their adjoint
# ---------------------------------------------------------------------------------------------
@njit(cache=True)
def compute_slots(U, nbp, nbm, inv_h, q):
    """``q[b, i, :] = [D_h U[b]]_i`` (shape ``(B, N, 2d)``)."""
    B, N = U.shape
    d = nbp.shape[0]
    for b in range(B):
        for i in range(N):
            ui = U[b, i]
            for k in range(d):
                p = nbp[k, i]
                m = nbm[k, i]
                q[b, i, 2 * k] = (U[b, p] - ui) * inv_h[k] if p >= 0 else 0.0
                q[b, i, 2 * k + 1] = (ui - U[b, m]) * inv_h[k] if m >= 0 else 0.0


@njit(cache=True)
def slot_adjoint(W, nbp, nbm, inv_h, out):
    """``out[b] = D^T W[b]``, i.e. :math:`\\sum_i\\sum_j W_{ij}\\,\\partial q_{ij}/\\partial U_l`.

    Overwrites ``out``.
    """
    B, N, _ = W.shape
    d = nbp.shape[0]
    for b in range(B):
        for i in range(N):
            out[b, i] = 0.0
        for i in range(N):
            for k in range(d):
                p = nbp[k, i]
                if p >= 0:
                    w = W[b, i, 2 * k] * inv_h[k]
                    out[b, p] += w
                    out[b, i] -= w
                m = nbm[k, i]
                if m >= 0:
                    w = W[b, i, 2 * k + 1] * inv_h[k]
                    out[b, i] += w
                    out[b, m] -= w


@njit(cache=True)
def laplacian_apply(U, nbp, nbm, inv_h, out):
    """``out[b] = Delta_h U[b]`` (walls drop the differences that leave the box)."""
    B, N = U.shape
    d = nbp.shape[0]
    for b in range(B):
        for i in range(N):
            ui = U[b, i]
            acc = 0.0
            for k in range(d):
                ih2 = inv_h[k] * inv_h[k]
                p = nbp[k, i]
                if p >= 0:
                    acc += (U[b, p] - ui) * ih2
                m = nbm[k, i]
                if m >= 0:
                    acc += (U[b, m] - ui) * ih2
            out[b, i] = acc


# ---------------------------------------------------------------------------------------------
# Godunov numerical Hamiltonians
# ---------------------------------------------------------------------------------------------
@njit(cache=True)
def _upwind_part(v, j):
    # forward slots (even j) keep their negative part, backward slots their positive part
    if j % 2 == 0:
        return v if v < 0.0 else 0.0
    return v if v > 0.0 else 0.0


@njit(cache=True)
def ham_values(q, m, kind, p0, p1, g, dg):
    """Numerical Hamiltonian ``g[r]`` and slot gradient ``dg[r, :]`` for the rows of ``q`` (K, 2d).

    ``S = sum_j s_j^2`` with ``s`` the upwind parts; quadratic ``g = S/2``; power law
    ``g = S^{gamma/2}/gamma`` (``p0 = gamma``); congestion ``g = S/(2 (c+m)^alpha)``
    (``p0 = c``, ``p1 = alpha``; ``m`` has shape (K,), ignored otherwise).
    """
    K, s = q.shape
    for r in range(K):
        S = 0.0
        for j in range(s):
            v = _upwind_part(q[r, j], j)
            dg[r, j] = v
            S += v * v
        if kind == QUADRATIC:
            g[r] = 0.5 * S
        elif kind == POWER:
            if S > 0.0:
                fac = S ** (0.5 * p0 - 1.0)
                g[r] = fac * S / p0
                for j in range(s):
                    dg[r, j] *= fac
            else:
                g[r] = 0.0
                for j in range(s):
                    dg[r, j] = 0.0
        else:
            w = (p0 + m[r]) ** (-p1)
            g[r] = 0.5 * S * w
            for j in range(s):
                dg[r, j] *= w


@njit(cache=True)
def ham_m_derivatives(q, m, kind, p0, p1, gm, dgm):
    """``gm = dg/dm`` and ``dgm = d(dg)/dm`` (non-zero for the congestion Hamiltonian only)."""
    K, s = q.shape
    for r in range(K):
        if kind != CONGESTION:
            gm[r] = 0.0
            for j in range(s):
                dgm[r, j] = 0.0
            continue
        wm = -p1 * (p0 + m[r]) ** (-p1 - 1.0)
        S = 0.0
        for j in range(s):
            v = _upwind_part(q[r, j], j)
            dgm[r, j] = wm * v
            S += v * v
        gm[r] = 0.5 * S * wm


@njit(cache=True)
def ham_hessian_apply(q, m, kind, p0, p1, weight, v, out):
    """``out[r, :] = weight[r] * (d^2 g / dq^2)(q[r]) v[r, :]`` (Hessian in the slots)."""
    K, s = q.shape
    for r in range(K):
        S = 0.0
        sv = 0.0
        for j in range(s):
            sj = _upwind_part(q[r, j], j)
            S += sj * sj
            sv += sj * v[r, j]
        if kind == POWER:
            if S > 0.0:
                a = S ** (0.5 * p0 - 1.0)
                bb = (p0 - 2.0) * S ** (0.5 * p0 - 2.0)
            else:
                a = 0.0
                bb = 0.0
        elif kind == CONGESTION:
            a = (p0 + m[r]) ** (-p1)
            bb = 0.0
        else:
            a = 1.0
            bb = 0.0
        wr = weight[r]
        for j in range(s):
            sj = _upwind_part(q[r, j], j)
            chi = 1.0 if sj != 0.0 else 0.0
            out[r, j] = wr * (a * chi * v[r, j] + bb * sj * sv)


@njit(cache=True)
def transport_jacobian_coo(q, m, weight, kind, p0, p1, nbp, nbm, inv_h, rows, cols, vals):
    """COO triplets of ``E = D^T diag_i(weight_i * d^2g/dq^2(q_i)) D`` for one time level.

    ``rows``/``cols``/``vals`` have length ``N * 4 * npair`` with ``npair = (2d)^2`` for the
    power law (full slot Hessian) and ``2d`` otherwise (diagonal Hessian); unused triplets are
    ``(i, i, 0)``. Returns nothing; duplicates are summed by the caller (``coo -> csr``).
    """
    N, s = q.shape
    full = kind == POWER
    npair = s * s if full else s
    nodes = np.empty(2, np.int64)
    coeff = np.empty(2)
    nodes2 = np.empty(2, np.int64)
    coeff2 = np.empty(2)
    for i in range(N):
        S = 0.0
        for j in range(s):
            sj = _upwind_part(q[i, j], j)
            S += sj * sj
        if kind == POWER:
            if S > 0.0:
                a = S ** (0.5 * p0 - 1.0)
                bb = (p0 - 2.0) * S ** (0.5 * p0 - 2.0)
            else:
                a = 0.0
                bb = 0.0
        elif kind == CONGESTION:
            a = (p0 + m[i]) ** (-p1)
            bb = 0.0
        else:
            a = 1.0
            bb = 0.0
        base = i * 4 * npair
        t = 0
        for j in range(s):
            sj = _upwind_part(q[i, j], j)
            k = j // 2
            if j % 2 == 0:
                nb = nbp[k, i]
                nodes[0] = nb
                coeff[0] = inv_h[k]
                nodes[1] = i
                coeff[1] = -inv_h[k]
            else:
                nb = nbm[k, i]
                nodes[0] = i
                coeff[0] = inv_h[k]
                nodes[1] = nb
                coeff[1] = -inv_h[k]
            jl_lo = 0 if full else j
            jl_hi = s if full else j + 1
            for jl in range(jl_lo, jl_hi):
                sl = _upwind_part(q[i, jl], jl)
                kl = jl // 2
                if jl % 2 == 0:
                    nbl = nbp[kl, i]
                    nodes2[0] = nbl
                    coeff2[0] = inv_h[kl]
                    nodes2[1] = i
                    coeff2[1] = -inv_h[kl]
                else:
                    nbl = nbm[kl, i]
                    nodes2[0] = i
                    coeff2[0] = inv_h[kl]
                    nodes2[1] = nbl
                    coeff2[1] = -inv_h[kl]
                h = bb * sj * sl
                if jl == j and sj != 0.0:
                    h += a
                h *= weight[i]
                ok = nb >= 0 and nbl >= 0 and h != 0.0
                for x in range(2):
                    for y in range(2):
                        pos = base + t
                        if ok:
                            rows[pos] = nodes[x]
                            cols[pos] = nodes2[y]
                            vals[pos] = h * coeff[x] * coeff2[y]
                        else:
                            rows[pos] = i
                            cols[pos] = i
                            vals[pos] = 0.0
                        t += 1
        while t < 4 * npair:
            rows[base + t] = i
            cols[base + t] = i
            vals[base + t] = 0.0
            t += 1


# ---------------------------------------------------------------------------------------------
# stencil matrices
# ---------------------------------------------------------------------------------------------
@njit(cache=True)
def stencil_coefficients(dg, shift, nu, nbp, nbm, inv_h, coef):
    """Coefficients of ``shift*I - nu*Delta_h + A`` with ``(A W)_i = sum_j dg[i,j] [D_h W]_{ij}``.

    ``dg`` (B, N, 2d) -> ``coef`` (B, N, 2d+1). With ``dg`` the slot gradient of a monotone
    ``g`` the result is a Z-matrix with row sums ``shift`` (an M-matrix for ``shift > 0``).
    """
    B, N, _ = dg.shape
    d = nbp.shape[0]
    for b in range(B):
        for i in range(N):
            diag = shift
            for k in range(d):
                ih = inv_h[k]
                nih2 = nu * ih * ih
                if nbp[k, i] >= 0:
                    a = dg[b, i, 2 * k] * ih
                    diag += nih2 - a
                    coef[b, i, 1 + 2 * k] = -nih2 + a
                else:
                    coef[b, i, 1 + 2 * k] = 0.0
                if nbm[k, i] >= 0:
                    a = dg[b, i, 2 * k + 1] * ih
                    diag += nih2 + a
                    coef[b, i, 2 + 2 * k] = -nih2 - a
                else:
                    coef[b, i, 2 + 2 * k] = 0.0
            coef[b, i, 0] = diag


@njit(cache=True)
def stencil_apply(coef, nbp, nbm, x, out):
    """``out[b] = C[b] x[b]`` for stencil coefficients ``coef`` (B, N, 2d+1)."""
    B, N, _ = coef.shape
    d = nbp.shape[0]
    for b in range(B):
        for i in range(N):
            acc = coef[b, i, 0] * x[b, i]
            for k in range(d):
                p = nbp[k, i]
                if p >= 0:
                    acc += coef[b, i, 1 + 2 * k] * x[b, p]
                m = nbm[k, i]
                if m >= 0:
                    acc += coef[b, i, 2 + 2 * k] * x[b, m]
            out[b, i] = acc


@njit(cache=True)
def stencil_apply_transpose(coef, nbp, nbm, x, out):
    """``out[b] = C[b]^T x[b]``."""
    B, N, _ = coef.shape
    d = nbp.shape[0]
    for b in range(B):
        for i in range(N):
            out[b, i] = 0.0
        for i in range(N):
            xi = x[b, i]
            out[b, i] += coef[b, i, 0] * xi
            for k in range(d):
                p = nbp[k, i]
                if p >= 0:
                    out[b, p] += coef[b, i, 1 + 2 * k] * xi
                m = nbm[k, i]
                if m >= 0:
                    out[b, m] += coef[b, i, 2 + 2 * k] * xi


# ---------------------------------------------------------------------------------------------
# 1-D tridiagonal (and cyclic tridiagonal) solves
# ---------------------------------------------------------------------------------------------
# A 1-D stencil matrix has rows  a_i x_{i-1} + b_i x_i + c_i x_{i+1} = r_i  with coef[:, 0] = b,
# coef[:, 1] = c (next node), coef[:, 2] = a (previous node); on a periodic axis the row 0 couples
# to x_{N-1} through a_0 and the row N-1 to x_0 through c_{N-1}. The matrices solved here are
# M-matrices: Gaussian elimination without pivoting is stable, and the elimination below only
# ever adds non-negative quantities when the right-hand side is non-negative, so positivity of
# the FP solution is preserved exactly (no cancellation).


@njit(cache=True)
def _thomas(a, b, c, r, n, cp, x):
    # solves rows 0..n-1 of the tridiagonal system (a[0], c[n-1] ignored)
    beta = b[0]
    x[0] = r[0] / beta
    for i in range(1, n):
        cp[i - 1] = c[i - 1] / beta
        beta = b[i] - a[i] * cp[i - 1]
        x[i] = (r[i] - a[i] * x[i - 1]) / beta
    for i in range(n - 2, -1, -1):
        x[i] -= cp[i] * x[i + 1]


@njit(cache=True)
def tridiag_solve(a, b, c, r, periodic, work, x):
    """Solve the (cyclic if ``periodic``) tridiagonal system; ``work`` has shape (3, N)."""
    n = b.shape[0]
    if not periodic:
        _thomas(a, b, c, r, n, work[0], x)
        return
    # border elimination on the last unknown: x[:n-1] = y - z x[n-1]
    cp = work[0]
    y = work[1]
    z = work[2]
    _thomas(a, b, c, r, n - 1, cp, y)
    # column of x[n-1] in rows 0..n-2: a[0] at row 0, c[n-2] at row n-2
    for i in range(n - 1):
        x[i] = 0.0
    x[0] = a[0]
    x[n - 2] += c[n - 2]
    _thomas(a, b, c, x, n - 1, cp, z)
    num = r[n - 1] - c[n - 1] * y[0] - a[n - 1] * y[n - 2]
    den = b[n - 1] - c[n - 1] * z[0] - a[n - 1] * z[n - 2]
    xl = num / den
    for i in range(n - 1):
        x[i] = y[i] - z[i] * xl
    x[n - 1] = xl


@njit(cache=True)
def _transpose_coefficients_1d(coef, periodic, a, b, c):
    # rows of C^T: (C^T)_{i,i-1} = C_{i-1,i} = c_{i-1};  (C^T)_{i,i+1} = C_{i+1,i} = a_{i+1}
    n = coef.shape[0]
    for i in range(n):
        b[i] = coef[i, 0]
        im = i - 1
        ip = i + 1
        if im < 0:
            a[i] = coef[n - 1, 1] if periodic else 0.0
        else:
            a[i] = coef[im, 1]
        if ip >= n:
            c[i] = coef[0, 2] if periodic else 0.0
        else:
            c[i] = coef[ip, 2]


@njit(cache=True)
def solve_stencil_1d(coef, periodic, transpose, r, x):
    """Solve ``C x = r`` (or ``C^T x = r``) for one 1-D stencil matrix ``coef`` (N, 3)."""
    n = coef.shape[0]
    a = np.empty(n)
    b = np.empty(n)
    c = np.empty(n)
    work = np.empty((3, n))
    if transpose:
        _transpose_coefficients_1d(coef, periodic, a, b, c)
    else:
        for i in range(n):
            b[i] = coef[i, 0]
            c[i] = coef[i, 1]
            a[i] = coef[i, 2]
    tridiag_solve(a, b, c, r, periodic, work, x)


# ---------------------------------------------------------------------------------------------
# 1-D factorised blocks (reused by every sweep of a Newton step)
# ---------------------------------------------------------------------------------------------
# fac[t] rows: 0 a (sub-diagonal), 1 1/beta (inverse pivots), 2 cp (upper multipliers),
# 3 z (border column solved by the leading block; cyclic only); scal[t] = (c_last, a_last, 1/den).


@njit(cache=True)
def factor_1d(coef, periodic, transpose, fac, scal):
    """LU factors (no pivoting) of every 1-D stencil block ``coef[t]`` (or its transpose)."""
    nb, N, _ = coef.shape
    a = np.empty(N)
    b = np.empty(N)
    c = np.empty(N)
    for t in range(nb):
        if transpose:
            _transpose_coefficients_1d(coef[t], periodic, a, b, c)
        else:
            for i in range(N):
                b[i] = coef[t, i, 0]
                c[i] = coef[t, i, 1]
                a[i] = coef[t, i, 2]
        n = N - 1 if periodic else N
        fa = fac[t, 0]
        ib = fac[t, 1]
        cp = fac[t, 2]
        z = fac[t, 3]
        for i in range(N):
            fa[i] = a[i]
        beta = b[0]
        ib[0] = 1.0 / beta
        for i in range(1, n):
            cp[i - 1] = c[i - 1] * ib[i - 1]
            beta = b[i] - a[i] * cp[i - 1]
            ib[i] = 1.0 / beta
        if periodic:
            for i in range(n):
                z[i] = 0.0
            z[0] = a[0]
            z[n - 1] += c[n - 1]
            _factored_thomas(fa, ib, cp, z, n, z)
            den = b[N - 1] - c[N - 1] * z[0] - a[N - 1] * z[n - 1]
            scal[t, 0] = c[N - 1]
            scal[t, 1] = a[N - 1]
            scal[t, 2] = 1.0 / den
        else:
            scal[t, 0] = 0.0
            scal[t, 1] = 0.0
            scal[t, 2] = 0.0


@njit(cache=True)
def _factored_thomas(a, ib, cp, r, n, x):
    # x may alias r
    x[0] = r[0] * ib[0]
    for i in range(1, n):
        x[i] = (r[i] - a[i] * x[i - 1]) * ib[i]
    for i in range(n - 2, -1, -1):
        x[i] -= cp[i] * x[i + 1]


@njit(cache=True)
def _factored_solve(fac_t, scal_t, periodic, r, x):
    N = r.shape[0]
    if not periodic:
        _factored_thomas(fac_t[0], fac_t[1], fac_t[2], r, N, x)
        return
    n = N - 1
    _factored_thomas(fac_t[0], fac_t[1], fac_t[2], r, n, x)
    xl = (r[N - 1] - scal_t[0] * x[0] - scal_t[1] * x[n - 1]) * scal_t[2]
    z = fac_t[3]
    for i in range(n):
        x[i] -= z[i] * xl
    x[N - 1] = xl


@njit(cache=True)
def factored_sweep_1d(fac, scal, periodic, inv_dt, rhs, backward, terminal, out):
    """Block substitution with factorised 1-D blocks.

    ``backward``: ``F_t x_t - x_{t+1} inv_dt = rhs_t`` for ``t = nb-1..0`` (``x_nb = rhs_nb``
    when ``terminal``, ``rhs``/``out`` then having ``nb+1`` rows). Forward:
    ``F_t x_t - x_{t-1} inv_dt = rhs_t`` for ``t = 0..nb-1``. ``F_t`` is the factorised block.
    """
    nb = fac.shape[0]
    N = fac.shape[2]
    r = np.empty(N)
    x = np.empty(N)
    if backward:
        if terminal:
            for i in range(N):
                out[nb, i] = rhs[nb, i]
        for t in range(nb - 1, -1, -1):
            if t + 1 < nb or terminal:
                for i in range(N):
                    r[i] = rhs[t, i] + out[t + 1, i] * inv_dt
            else:
                for i in range(N):
                    r[i] = rhs[t, i]
            _factored_solve(fac[t], scal[t], periodic, r, x)
            for i in range(N):
                out[t, i] = x[i]
    else:
        for t in range(nb):
            if t > 0:
                for i in range(N):
                    r[i] = rhs[t, i] + out[t - 1, i] * inv_dt
            else:
                for i in range(N):
                    r[i] = rhs[t, i]
            _factored_solve(fac[t], scal[t], periodic, r, x)
            for i in range(N):
                out[t, i] = x[i]


@njit(cache=True)
def hessian_weights(q, m, kind, p0, p1, weight, hw, hb, sl):
    """Per-node data of ``E = D^T diag(weight * d2g) D``: ``d2g = diag(hw) + hb s s^T``.

    ``hw`` (B, N, 2d) already includes ``weight``; ``hb`` (B, N) too (0 unless power law);
    ``sl`` (B, N, 2d) are the upwind parts ``s``.
    """
    B, N, s = q.shape
    for b in range(B):
        for i in range(N):
            S = 0.0
            for j in range(s):
                sj = _upwind_part(q[b, i, j], j)
                sl[b, i, j] = sj
                S += sj * sj
            if kind == POWER:
                if S > 0.0:
                    a = S ** (0.5 * p0 - 1.0)
                    bb = (p0 - 2.0) * S ** (0.5 * p0 - 2.0)
                else:
                    a = 0.0
                    bb = 0.0
            elif kind == CONGESTION:
                a = (p0 + m[b, i]) ** (-p1)
                bb = 0.0
            else:
                a = 1.0
                bb = 0.0
            wr = weight[b, i]
            for j in range(s):
                hw[b, i, j] = wr * a if sl[b, i, j] != 0.0 else 0.0
            hb[b, i] = wr * bb


@njit(cache=True)
def hessian_weights_apply(hw, hb, sl, power, v, nbp, nbm, inv_h, out):
    """``out[b] = D^T ((diag(hw) + hb s s^T) D v[b])`` with the data of :func:`hessian_weights`."""
    B, N, s = hw.shape
    d = s // 2
    dv = np.empty(s)
    for b in range(B):
        for i in range(N):
            out[b, i] = 0.0
        for i in range(N):
            vi = v[b, i]
            sv = 0.0
            for k in range(d):
                p = nbp[k, i]
                mm = nbm[k, i]
                dv[2 * k] = (v[b, p] - vi) * inv_h[k] if p >= 0 else 0.0
                dv[2 * k + 1] = (vi - v[b, mm]) * inv_h[k] if mm >= 0 else 0.0
            if power:
                for j in range(s):
                    sv += sl[b, i, j] * dv[j]
                sv *= hb[b, i]
            for k in range(d):
                ih = inv_h[k]
                j = 2 * k
                hv = hw[b, i, j] * dv[j] + sv * sl[b, i, j]
                if hv != 0.0:
                    w = hv * ih
                    out[b, nbp[k, i]] += w
                    out[b, i] -= w
                j = 2 * k + 1
                hv = hw[b, i, j] * dv[j] + sv * sl[b, i, j]
                if hv != 0.0:
                    w = hv * ih
                    out[b, i] += w
                    out[b, nbm[k, i]] -= w


# ---------------------------------------------------------------------------------------------
# 1-D backward HJB solve (fixed-point iterations call it at every outer iteration)
# ---------------------------------------------------------------------------------------------
@njit(cache=True)
def hjb_backward_1d(U, F, Mh, nbp, nbm, inv_h, nu, inv_dt, periodic, kind, p0, p1, tol, maxit):
    """Backward implicit HJB steps in 1-D, each solved by semismooth Newton (Howard).

    ``U`` (nt+1, N) holds ``U[nt]`` on entry and receives ``U[0..nt-1]``; ``F`` (nt, N) is
    ``V + f(M^{n+1})`` and ``Mh`` (nt, N) the densities ``M^{n+1}`` (congestion only). Step ``n``
    solves ``U^n inv_dt - nu Lap U^n + g(D U^n, M^{n+1}) = U^{n+1} inv_dt + F^n`` until
    ``max|R| <= tol (1 + max|rhs|)``. Returns -1 on success, else the index of the failed step.
    """
    nt, N = F.shape
    x = np.empty((1, N))
    q = np.empty((1, N, 2))
    g = np.empty(N)
    dg = np.empty((1, N, 2))
    lap = np.empty((1, N))
    coef = np.empty((1, N, 3))
    rhs = np.empty(N)
    R = np.empty(N)
    dx = np.empty(N)
    for n in range(nt - 1, -1, -1):
        scale = 0.0
        for i in range(N):
            x[0, i] = U[n + 1, i]
            rhs[i] = U[n + 1, i] * inv_dt + F[n, i]
            scale = max(scale, abs(rhs[i]))
        ok = False
        polish = False
        for _ in range(maxit):
            compute_slots(x, nbp, nbm, inv_h, q)
            ham_values(q[0], Mh[n], kind, p0, p1, g, dg[0])
            laplacian_apply(x, nbp, nbm, inv_h, lap)
            rn = 0.0
            for i in range(N):
                R[i] = x[0, i] * inv_dt - nu * lap[0, i] + g[i] - rhs[i]
                rn = max(rn, abs(R[i]))
            if polish:
                ok = True
                break
            if rn <= tol * (1.0 + scale):
                # relative test met: one more quadratically convergent step takes the absolute
                # residual to round-off (outer solvers use absolute tolerances)
                if rn == 0.0:
                    ok = True
                    break
                polish = True
            stencil_coefficients(dg, inv_dt, nu, nbp, nbm, inv_h, coef)
            solve_stencil_1d(coef[0], periodic, False, R, dx)
            step = 0.0
            xmax = 0.0
            for i in range(N):
                x[0, i] -= dx[i]
                step = max(step, abs(dx[i]))
                xmax = max(xmax, abs(x[0, i]))
            if not np.isfinite(step):
                return n
            if step <= 1e-15 * (1.0 + xmax):
                # converged to round-off: accept if the residual is at round-off level
                compute_slots(x, nbp, nbm, inv_h, q)
                ham_values(q[0], Mh[n], kind, p0, p1, g, dg[0])
                laplacian_apply(x, nbp, nbm, inv_h, lap)
                rn = 0.0
                for i in range(N):
                    rn = max(rn, abs(x[0, i] * inv_dt - nu * lap[0, i] + g[i] - rhs[i]))
                ok = rn <= 1e-9 * (1.0 + scale)
                break
        if not ok:
            return n
        for i in range(N):
            U[n, i] = x[0, i]
    return -1
