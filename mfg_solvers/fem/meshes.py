"""Meshes with named boundary parts for the finite-element MFG solver.

A :class:`FEMMesh` is a dolfinx mesh plus *facet tags* with names: every boundary facet carries
the tag of ``"walls"`` (reflecting: natural boundary condition for :math:`u`, zero normal flux for
:math:`m`) or of one of the named exits (Dirichlet for :math:`u`, absorbing outflow for
:math:`m`); which tags act as exits is decided by the discretisation
(:class:`~mfg_solvers.fem.FEMDiscretisation`, argument ``exits``).

Constructors

* :func:`interval_mesh`, :func:`rectangle_mesh`, :func:`box_mesh` -- structured simplex meshes
  from dolfinx (1-D, 2-D triangles, 3-D tetrahedra); exits are boundary patches given by a
  marker function or a :func:`boundary_patch` specification;
* :func:`mesh_for_domain` -- the structured mesh of a :class:`~mfg_solvers.grid.Domain`
  (reflecting walls only; periodic axes are not supported by the finite-element solver);
* :func:`room_mesh` -- a rectangular room with rectangular / circular obstacles and doors on its
  walls, meshed at run time with gmsh (built-in kernel, physical groups ``room``, ``walls`` and
  one per door) and read through :func:`dolfinx.io.gmsh.model_to_mesh`.

Facet tag values: ``walls`` is 1, exits are 2, 3, ... in the order given; :attr:`FEMMesh.names`
maps names to tags. Meshes are distributed over the communicator (default ``MPI.COMM_WORLD``);
every query here returns global (all-rank) values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from ..grid import Domain
from ._backend import MPI, mesh

#: Tag of the reflecting walls.
WALLS = 1
#: Face names of boxes, in the order (axis, side).
FACES = {"xmin": (0, 0), "xmax": (0, 1), "ymin": (1, 0), "ymax": (1, 1), "zmin": (2, 0),
         "zmax": (2, 1)}


class FEMMesh:
    """A dolfinx mesh with named facet tags.

    Parameters
    ----------
    msh
        The :class:`dolfinx.mesh.Mesh` (simplices: interval, triangle or tetrahedron).
    facet_tags
        :class:`dolfinx.mesh.MeshTags` on the facets (every exterior facet tagged), or ``None``
        (then every exterior facet is a wall).
    names
        Mapping ``name -> tag value`` of the facet tags (``"walls"`` and the exits).
    description
        A short label (kept in the Solution's attributes).
    """

    def __init__(self, msh, facet_tags=None, names: Mapping[str, int] | None = None,
                 description: str = ""):
        if not isinstance(msh, mesh.Mesh):
            raise TypeError(f"msh={msh!r} must be a dolfinx.mesh.Mesh")
        cell = msh.topology.cell_type
        allowed = (mesh.CellType.interval, mesh.CellType.triangle, mesh.CellType.tetrahedron)
        if cell not in allowed:
            raise ValueError(
                f"cell type {cell.name!r} is not supported; allowed: interval, triangle, "
                "tetrahedron (simplices)"
            )
        if msh.geometry.dim != msh.topology.dim:
            raise ValueError(
                f"the mesh has geometric dimension {msh.geometry.dim} and topological dimension "
                f"{msh.topology.dim}; they must agree"
            )
        self.mesh = msh
        tdim = msh.topology.dim
        msh.topology.create_connectivity(tdim - 1, tdim)
        if facet_tags is None:
            facet_tags = _tags_from_markers(msh, {})
            names = {"walls": WALLS}
        self.facet_tags = facet_tags
        self.names = dict(names or {"walls": WALLS})
        for name, tag in self.names.items():
            if not isinstance(name, str) or int(tag) != tag:
                raise ValueError(f"names={names!r} must map strings to integer tags")
        self.description = str(description)

    # -- basic data -----------------------------------------------------------------------------
    @property
    def comm(self):
        return self.mesh.comm

    @property
    def dim(self) -> int:
        return int(self.mesh.topology.dim)

    @property
    def cell_name(self) -> str:
        return self.mesh.topology.cell_type.name

    @property
    def num_cells(self) -> int:
        """Number of cells over all ranks."""
        imap = self.mesh.topology.index_map(self.dim)
        return int(imap.size_global)

    @property
    def bounds(self) -> tuple[tuple[float, float], ...]:
        """The bounding box ``((xmin, xmax), ...)`` over all ranks."""
        x = self.mesh.geometry.x[:, : self.dim]
        lo = np.full(self.dim, np.inf) if x.size == 0 else x.min(axis=0)
        hi = np.full(self.dim, -np.inf) if x.size == 0 else x.max(axis=0)
        lo, hi = np.ascontiguousarray(lo, dtype=float), np.ascontiguousarray(hi, dtype=float)
        self.comm.Allreduce(MPI.IN_PLACE, lo, op=MPI.MIN)
        self.comm.Allreduce(MPI.IN_PLACE, hi, op=MPI.MAX)
        return tuple((float(a), float(b)) for a, b in zip(lo, hi, strict=True))

    @property
    def domain(self) -> Domain:
        """The bounding box as a :class:`~mfg_solvers.grid.Domain` with reflecting walls."""
        return Domain(self.bounds, "neumann")

    def cell_sizes(self) -> np.ndarray:
        """Diameters of the cells owned by this rank."""
        ncell = self.mesh.topology.index_map(self.dim).size_local
        return self.mesh.h(self.dim, np.arange(ncell, dtype=np.int32))

    @property
    def hmax(self) -> float:
        """Largest cell diameter over all ranks."""
        h = self.cell_sizes()
        return float(self.comm.allreduce(h.max() if h.size else 0.0, op=MPI.MAX))

    @property
    def hmin(self) -> float:
        """Smallest cell diameter over all ranks."""
        h = self.cell_sizes()
        return float(self.comm.allreduce(h.min() if h.size else np.inf, op=MPI.MIN))

    def tag(self, name: str) -> int:
        """The facet tag value of ``name``."""
        if name not in self.names:
            raise ValueError(f"boundary part {name!r} is not a facet tag of this mesh; "
                             f"known: {sorted(self.names)}")
        return int(self.names[name])

    def facets(self, name: str) -> np.ndarray:
        """Local indices of the facets tagged ``name`` (owned and ghost facets of this rank)."""
        tag = self.tag(name)
        return self.facet_tags.indices[self.facet_tags.values == tag].astype(np.int32)

    def boundary_measure(self, name: str) -> float:
        """Length (2-D) / area (3-D) / point count (1-D) of the boundary part ``name``."""
        from ._backend import fem, ufl

        ds = ufl.Measure("ds", domain=self.mesh, subdomain_data=self.facet_tags)
        one = fem.Constant(self.mesh, 1.0)
        value = fem.assemble_scalar(fem.form(one * ds(self.tag(name))))
        return float(self.comm.allreduce(value, op=MPI.SUM))

    def area(self) -> float:
        """Measure of the mesh (length / area / volume)."""
        from ._backend import fem, ufl

        one = fem.Constant(self.mesh, 1.0)
        value = fem.assemble_scalar(fem.form(one * ufl.dx(domain=self.mesh)))
        return float(self.comm.allreduce(value, op=MPI.SUM))

    def __repr__(self):
        return (f"FEMMesh({self.description or self.cell_name!r}, dim={self.dim}, "
                f"cells={self.num_cells}, boundary={sorted(self.names)})")


# ---------------------------------------------------------------------------------------------
# Boundary markers
# ---------------------------------------------------------------------------------------------
def boundary_patch(face: str, intervals=None, *, bounds=None, tol: float = 1e-10) -> Callable:
    """A marker of the points of the face ``face`` of a box that lie in ``intervals``.

    Parameters
    ----------
    face
        ``"xmin"``, ``"xmax"``, ``"ymin"``, ``"ymax"``, ``"zmin"`` or ``"zmax"``.
    intervals
        For each remaining axis in increasing order, ``(lo, hi)``; ``None`` for the whole face.
        In 2-D a single pair may be given.
    bounds
        The box ``((xmin, xmax), ...)``; needed to place the face.
    """
    if face not in FACES:
        raise ValueError(f"face={face!r} is not known; allowed: {list(FACES)}")
    if bounds is None:
        raise ValueError("bounds=None: the box bounds are needed to place a boundary patch")
    axis, side = FACES[face]
    bounds = np.asarray(bounds, dtype=float)
    dim = bounds.shape[0]
    if axis >= dim:
        raise ValueError(f"face={face!r} does not exist in {dim}-D")
    value = bounds[axis, side]
    others = [k for k in range(dim) if k != axis]
    if intervals is None:
        ivals = [tuple(bounds[k]) for k in others]
    else:
        arr = np.asarray(intervals, dtype=float)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.shape != (len(others), 2) or np.any(arr[:, 1] <= arr[:, 0]):
            raise ValueError(
                f"intervals={intervals!r} must be one (lo, hi) pair with lo < hi for each of the "
                f"{len(others)} axes along the face {face!r}"
            )
        ivals = [tuple(r) for r in arr]

    def marker(x):
        inside = np.isclose(x[axis], value, atol=tol, rtol=0.0)
        for k, (lo, hi) in zip(others, ivals, strict=True):
            inside &= (x[k] >= lo - tol) & (x[k] <= hi + tol)
        return inside

    return marker


def _marker(spec, bounds) -> Callable:
    if callable(spec):
        return spec
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"face", "interval", "intervals"}
        if "face" not in spec or unknown:
            raise ValueError(
                f"exit specification {dict(spec)!r} must have a 'face' and optionally "
                "'interval'/'intervals'"
            )
        intervals = spec.get("intervals", spec.get("interval"))
        return boundary_patch(spec["face"], intervals, bounds=bounds)
    if isinstance(spec, str):
        return boundary_patch(spec, None, bounds=bounds)
    raise TypeError(
        f"exit specification {spec!r} must be a marker function, a face name or a mapping "
        "{'face': ..., 'interval(s)': ...}"
    )


def _tags_from_markers(msh, markers: Mapping[str, Callable]):
    """Facet tags: every exterior facet is a wall, those selected by a marker are exits."""
    tdim = msh.topology.dim
    fdim = tdim - 1
    msh.topology.create_connectivity(fdim, tdim)
    boundary = mesh.exterior_facet_indices(msh.topology)
    values = np.full(boundary.shape, WALLS, dtype=np.int32)
    for k, marker in enumerate(markers.values()):
        facets = mesh.locate_entities_boundary(msh, fdim, marker)
        values[np.isin(boundary, facets)] = WALLS + 1 + k
    order = np.argsort(boundary)
    return mesh.meshtags(msh, fdim, boundary[order].astype(np.int32), values[order])


def _with_exits(msh, exits, bounds, description):
    exits = dict(exits or {})
    for name in exits:
        if not isinstance(name, str) or name == "walls":
            raise ValueError(f"exit name {name!r} must be a string other than 'walls'")
    markers = {name: _marker(spec, bounds) for name, spec in exits.items()}
    tags = _tags_from_markers(msh, markers)
    names = {"walls": WALLS}
    names.update({name: WALLS + 1 + k for k, name in enumerate(markers)})
    out = FEMMesh(msh, tags, names, description)
    for name in markers:
        if out.boundary_measure(name) <= 0:
            raise ValueError(f"exit {name!r} selects no boundary facet of the mesh")
    return out


def _check_counts(n, dim: int, name: str = "n") -> tuple[int, ...]:
    n = (n,) * dim if np.isscalar(n) else tuple(n)
    if len(n) != dim or any(int(k) != k or k < 1 for k in n):
        raise ValueError(f"{name}={n!r} must be {dim} positive integers (cells per axis)")
    return tuple(int(k) for k in n)


def _check_bounds(bounds, dim: int) -> np.ndarray:
    if isinstance(bounds, Domain):
        bounds = bounds.bounds
    arr = np.asarray(bounds, dtype=float)
    if arr.shape == (2,) and dim == 1:
        arr = arr[None, :]
    if arr.shape != (dim, 2) or not np.all(np.isfinite(arr)) or np.any(arr[:, 1] <= arr[:, 0]):
        raise ValueError(f"bounds={bounds!r} must be {dim} finite (a, b) pairs with a < b")
    return arr


# ---------------------------------------------------------------------------------------------
# Structured meshes
# ---------------------------------------------------------------------------------------------
def interval_mesh(bounds, n: int, *, exits=None, comm=None) -> FEMMesh:
    """The interval ``bounds = (a, b)`` with ``n`` cells; exits ``"xmin"`` / ``"xmax"``."""
    comm = MPI.COMM_WORLD if comm is None else comm
    b = _check_bounds(bounds, 1)
    (nx,) = _check_counts(n, 1)
    msh = mesh.create_interval(comm, nx, [b[0, 0], b[0, 1]])
    return _with_exits(msh, exits, b, f"interval {nx}")


def rectangle_mesh(bounds, n, *, diagonal: str = "right", exits=None, comm=None) -> FEMMesh:
    """A structured triangle mesh of the rectangle ``bounds = ((x0, x1), (y0, y1))``.

    Parameters
    ----------
    bounds
        The rectangle (or a 2-D :class:`~mfg_solvers.grid.Domain`).
    n
        Cells per axis (int or pair): ``2 * nx * ny`` triangles.
    diagonal
        ``"right"``, ``"left"``, ``"crossed"``, ``"right/left"`` or ``"left/right"`` (dolfinx).
    exits
        Mapping ``name -> marker`` where a marker is a function of the points ``x`` (shape
        ``(3, npts)``) returning booleans, a face name, or ``{"face": ..., "interval": (lo, hi)}``
        (see :func:`boundary_patch`). Every other boundary facet is a wall.
    comm
        MPI communicator (default ``MPI.COMM_WORLD``).
    """
    comm = MPI.COMM_WORLD if comm is None else comm
    b = _check_bounds(bounds, 2)
    nx, ny = _check_counts(n, 2)
    diagonals = {
        "right": mesh.DiagonalType.right, "left": mesh.DiagonalType.left,
        "crossed": mesh.DiagonalType.crossed, "right/left": mesh.DiagonalType.right_left,
        "left/right": mesh.DiagonalType.left_right,
    }
    if diagonal not in diagonals:
        raise ValueError(f"diagonal={diagonal!r} is not known; allowed: {list(diagonals)}")
    msh = mesh.create_rectangle(
        comm, [b[:, 0], b[:, 1]], [nx, ny], mesh.CellType.triangle, diagonal=diagonals[diagonal]
    )
    return _with_exits(msh, exits, b, f"rectangle {nx}x{ny} ({diagonal})")


def box_mesh(bounds, n, *, exits=None, comm=None) -> FEMMesh:
    """A structured tetrahedral mesh of the box ``bounds`` (``6 * nx * ny * nz`` cells).

    ``exits`` as in :func:`rectangle_mesh`, with 2 intervals per patch
    (``{"face": "xmin", "intervals": [(y0, y1), (z0, z1)]}``).
    """
    comm = MPI.COMM_WORLD if comm is None else comm
    b = _check_bounds(bounds, 3)
    nx, ny, nz = _check_counts(n, 3)
    msh = mesh.create_box(comm, [b[:, 0], b[:, 1]], [nx, ny, nz], mesh.CellType.tetrahedron)
    return _with_exits(msh, exits, b, f"box {nx}x{ny}x{nz}")


def mesh_for_domain(domain: Domain, n, *, exits=None, comm=None, **kwargs) -> FEMMesh:
    """The structured simplex mesh of ``domain`` with ``n`` cells per axis.

    All axes of ``domain`` must be reflecting (``"neumann"``); the finite-element solver has no
    periodic boundary conditions.
    """
    if not isinstance(domain, Domain):
        raise TypeError(f"domain={domain!r} must be a mfg_solvers.Domain")
    periodic = [ax for ax, bc in zip(domain.axis_names, domain.boundary, strict=True)
                if bc != "neumann"]
    if periodic:
        raise ValueError(
            f"domain has boundary={domain.boundary!r}; the finite-element solver supports "
            f"reflecting ('neumann') walls and exits only, not periodic axes {periodic}"
        )
    builders = {1: interval_mesh, 2: rectangle_mesh, 3: box_mesh}
    return builders[domain.dim](domain.bounds, n, exits=exits, comm=comm, **kwargs)


# ---------------------------------------------------------------------------------------------
# gmsh: a room with obstacles and doors
# ---------------------------------------------------------------------------------------------
def _check_room(width, height, obstacles, exits, h):
    for label, v in (("width", width), ("height", height), ("h", h)):
        if not np.isfinite(v) or v <= 0:
            raise ValueError(f"{label}={v!r} must be a positive finite number")
    if h > 0.5 * min(width, height):
        raise ValueError(f"h={h!r} is too coarse for a {width} x {height} room")
    walls = {"xmin": height, "xmax": height, "ymin": width, "ymax": width}
    doors = []
    for k, e in enumerate(exits):
        if not isinstance(e, Mapping) or "wall" not in e or "interval" not in e:
            raise ValueError(f"exits[{k}]={e!r} must be a mapping with 'wall' and 'interval'")
        name = str(e.get("name", f"exit_{k + 1}"))
        if name == "walls" or name == "room":
            raise ValueError(f"exits[{k}] has the reserved name {name!r}")
        wall = e["wall"]
        if wall not in walls:
            raise ValueError(f"exits[{k}]['wall']={wall!r}; allowed: {list(walls)}")
        lo, hi = (float(v) for v in e["interval"])
        if not 0 <= lo < hi <= walls[wall]:
            raise ValueError(
                f"exits[{k}]['interval']={e['interval']!r} must satisfy 0 <= lo < hi <= "
                f"{walls[wall]} (length of wall {wall!r})"
            )
        doors.append((name, wall, lo, hi))
    names = [d[0] for d in doors]
    if len(set(names)) != len(names):
        raise ValueError(f"exit names {names!r} must be distinct")
    for wall in walls:
        ivals = sorted((lo, hi) for _, w, lo, hi in doors if w == wall)
        for (a0, a1), (b0, b1) in zip(ivals, ivals[1:], strict=False):
            if b0 <= a1:
                raise ValueError(f"doors on wall {wall!r} overlap or touch: {ivals}")
    obs = []
    for k, o in enumerate(obstacles):
        if not isinstance(o, Mapping) or o.get("type") not in ("rectangle", "disc"):
            raise ValueError(
                f"obstacles[{k}]={o!r} must be {{'type': 'rectangle', 'x': (x0, x1), "
                "'y': (y0, y1)}} or {'type': 'disc', 'center': (cx, cy), 'radius': r}"
            )
        if o["type"] == "rectangle":
            x0, x1 = (float(v) for v in o["x"])
            y0, y1 = (float(v) for v in o["y"])
            ok = 0 < x0 < x1 < width and 0 < y0 < y1 < height
            box = (x0, x1, y0, y1)
        else:
            cx, cy = (float(v) for v in o["center"])
            r = float(o["radius"])
            ok = r > 0 and 0 < cx - r and cx + r < width and 0 < cy - r and cy + r < height
            box = (cx - r, cx + r, cy - r, cy + r)
        if not ok:
            raise ValueError(f"obstacles[{k}]={o!r} must lie strictly inside the room")
        obs.append((o, box))
    for i in range(len(obs)):
        for j in range(i + 1, len(obs)):
            a, b = obs[i][1], obs[j][1]
            if a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]:
                raise ValueError(f"obstacles[{i}] and obstacles[{j}] overlap")
    return doors, [o for o, _ in obs]


def room_mesh(width: float = 10.0, height: float = 6.0, *, obstacles: Sequence = (),
              exits: Sequence = (), h: float = 0.5, comm=None) -> FEMMesh:
    """A rectangular room ``[0, width] x [0, height]`` with obstacles and doors, meshed by gmsh.

    Parameters
    ----------
    width, height
        Size of the room.
    obstacles
        Holes: ``{"type": "rectangle", "x": (x0, x1), "y": (y0, y1)}`` or
        ``{"type": "disc", "center": (cx, cy), "radius": r}``, strictly inside, not overlapping.
        Their boundaries are walls.
    exits
        Doors: ``{"name": "east", "wall": "xmax", "interval": (lo, hi)}`` with ``wall`` one of
        ``xmin``, ``xmax``, ``ymin``, ``ymax`` and the interval measured along that wall.
    h
        Target mesh size (gmsh ``Mesh.MeshSizeMax``).
    comm
        Communicator; gmsh runs on rank 0 and dolfinx distributes the mesh.

    Returns
    -------
    FEMMesh
        Physical groups: surface ``room``; curves ``walls`` (tag 1) and one per door (2, 3, ...).
    """
    comm = MPI.COMM_WORLD if comm is None else comm
    doors, obstacles = _check_room(float(width), float(height), list(obstacles), list(exits),
                                   float(h))
    import gmsh

    from dolfinx.io import gmsh as dgmsh

    we_started = False
    model_name = "mfg_room"
    if comm.rank == 0:
        if not gmsh.isInitialized():
            gmsh.initialize(interruptible=False)
            we_started = True
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.option.setNumber("General.NumThreads", 1)
        gmsh.model.add(model_name)
        gmsh.model.setCurrent(model_name)
        _build_room(gmsh, float(width), float(height), obstacles, doors, float(h))
    try:
        # interior-facet (CIP) integrals need the facets on process boundaries to be ghosted
        import dolfinx.graph

        partitioner = mesh.create_cell_partitioner(
            dolfinx.graph.partitioner(), mesh.GhostMode.shared_facet, 2
        )
        data = dgmsh.model_to_mesh(gmsh.model, comm, 0, gdim=2, partitioner=partitioner)
    finally:
        if comm.rank == 0:
            gmsh.model.remove()
            if we_started:
                gmsh.finalize()
    groups = data.physical_groups
    names = {"walls": int(groups["walls"].tag)}
    for name, *_ in doors:
        names[name] = int(groups[name].tag)
    desc = f"room {width:g}x{height:g}, {len(obstacles)} obstacles, {len(doors)} doors, h={h:g}"
    return FEMMesh(data.mesh, data.facet_tags, names, desc)


def _build_room(gmsh, width, height, obstacles, doors, h):
    geo = gmsh.model.geo
    # outer boundary, counter-clockwise: ymin (x increasing), xmax (y increasing),
    # ymax (x decreasing), xmin (y decreasing); door end points split the sides
    sides = [
        ("ymin", lambda s: (s, 0.0), width, False),
        ("xmax", lambda s: (width, s), height, False),
        ("ymax", lambda s: (s, height), width, True),
        ("xmin", lambda s: (0.0, s), height, True),
    ]
    pts, kinds = [], []  # start point of each boundary segment in order, and its door (or None)
    for wall, where, length, reverse in sides:
        mine = {(lo, hi): name for name, w, lo, hi in doors if w == wall}
        breaks = sorted({0.0, length} | {v for ab in mine for v in ab})
        segments = [(a, b, mine.get((a, b))) for a, b in zip(breaks, breaks[1:], strict=False)]
        if reverse:
            segments = [(b, a, name) for a, b, name in reversed(segments)]
        for a, _, name in segments:
            pts.append(where(a))
            kinds.append(name)
    point_ids = [geo.addPoint(x, y, 0.0, h) for x, y in pts]
    wall_lines, door_lines = [], {name: [] for name, *_ in doors}
    outer = []
    for i in range(len(point_ids)):
        line = geo.addLine(point_ids[i], point_ids[(i + 1) % len(point_ids)])
        outer.append(line)
        (door_lines[kinds[i]] if kinds[i] else wall_lines).append(line)
    loops = [geo.addCurveLoop(outer)]
    for o in obstacles:
        if o["type"] == "rectangle":
            (x0, x1), (y0, y1) = o["x"], o["y"]
            p = [geo.addPoint(x, y, 0.0, h) for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))]
            lines = [geo.addLine(p[i], p[(i + 1) % 4]) for i in range(4)]
        else:
            (cx, cy), r = o["center"], float(o["radius"])
            c = geo.addPoint(cx, cy, 0.0, h)
            p = [geo.addPoint(cx + r * np.cos(a), cy + r * np.sin(a), 0.0, h)
                 for a in (0.0, 0.5 * np.pi, np.pi, 1.5 * np.pi)]
            lines = [geo.addCircleArc(p[i], c, p[(i + 1) % 4]) for i in range(4)]
        wall_lines += lines
        loops.append(geo.addCurveLoop(lines))
    surface = geo.addPlaneSurface(loops)
    geo.synchronize()
    gmsh.model.addPhysicalGroup(2, [surface], 1, name="room")
    gmsh.model.addPhysicalGroup(1, wall_lines, WALLS, name="walls")
    for k, (name, *_) in enumerate(doors):
        gmsh.model.addPhysicalGroup(1, door_lines[name], WALLS + 1 + k, name=name)
    gmsh.option.setNumber("Mesh.MeshSizeMax", h)
    gmsh.option.setNumber("Mesh.MeshSizeMin", 0.2 * h)
    gmsh.option.setNumber("Mesh.Algorithm", 6)
    gmsh.model.mesh.generate(2)


__all__ = [
    "FEMMesh", "WALLS", "boundary_patch", "box_mesh", "interval_mesh", "mesh_for_domain",
    "rectangle_mesh", "room_mesh",
]
