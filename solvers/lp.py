"""A small linear-program builder: named, vectorised column and row blocks.

The scheduling formulation is written once against this builder and compiled
into plain arrays (costs, bounds, integrality and a CSR constraint matrix) that
any back end consumes: highspy takes them as they are, the pyomo back end builds
one indexed ``Var`` per column block and one indexed ``Constraint`` per row
block from the same arrays. Nothing is kept in sync by hand.

Row blocks carry what the result needs to talk about them: the constraint's
name as the user wrote it (``soc-minima``), the device, the step or boundary
index of every row and the unit. A row block is

- *hard* (the default), *soft* (it has a ``Soft`` spec: slack columns priced at
  the breach price absorb violations), or *definitional* (``elastic=False``:
  physics such as SOC dynamics, never relaxed, not even to diagnose);
- a *bound block* (``add_bounds``: one column per row, coefficient 1). Hard bound
  blocks are folded into the column bounds, which keeps the hot-path model small.

``compile(elastic=True)`` gives the diagnosis model: the original costs are
dropped and every non-definitional block gets slack columns, priced at its
``elastic_weight`` for hard blocks and free for soft ones. The blocks that need
slack in its optimum are the conflicting constraints.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

INF = np.inf


@dataclass(frozen=True)
class ColumnBlock:
    """A contiguous range of columns with one name (e.g. ``bat.charge``)."""

    name: str
    start: int
    size: int

    @property
    def index(self) -> np.ndarray:
        """Global column indices of this block."""
        return np.arange(self.start, self.start + self.size)

    def values(self, x: np.ndarray) -> np.ndarray:
        """Return the block's values in a solution vector ``x``."""
        return x[self.start : self.start + self.size]


@dataclass(frozen=True)
class Soft:
    """Breach prices of a soft row block, per unit below ``lower`` and above ``upper``."""

    price_lower: np.ndarray | float | None
    price_upper: np.ndarray | float | None


@dataclass
class RowBlock:
    """A block of constraints ``lower <= A x <= upper`` with reporting metadata."""

    name: str
    rows: np.ndarray  # local row index per non-zero
    cols: np.ndarray  # global column index per non-zero
    vals: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    constraint: str
    device: str | None
    steps: np.ndarray  # step or boundary index per row
    unit: str
    soft: Soft | None = None
    elastic: bool = True
    elastic_weight: float = 1.0
    is_bound: bool = False
    #: A valid inequality (implied by the model with its binaries): left out of the
    #: elastic model, where the constraints it derives from may give way.
    cut: bool = False

    @property
    def size(self) -> int:
        """Number of rows in the block."""
        return len(self.lower)


@dataclass
class CompiledBlock:
    """Where a row block ended up in a compiled model."""

    block: RowBlock
    kept: np.ndarray  # local rows kept (finite on at least one side)
    slack_lower: np.ndarray | None = None  # column per kept row absorbing shortfall
    slack_upper: np.ndarray | None = None  # column per kept row absorbing excess


@dataclass
class CompiledLP:
    """Arrays for a back end: minimise ``c x`` s.t. bounds, rows and integrality."""

    c: np.ndarray
    lb: np.ndarray
    ub: np.ndarray
    integer: np.ndarray  # bool per column
    a_start: np.ndarray  # CSR
    a_index: np.ndarray
    a_value: np.ndarray
    row_lower: np.ndarray
    row_upper: np.ndarray
    columns: list[ColumnBlock]
    blocks: list[CompiledBlock]
    row_block_slices: list[tuple[str, int, int]]
    elastic: bool = False
    c2: np.ndarray | None = None  # the tie-breaking objective
    #: A hint for back ends with a choice: columns whose bounds are the only coupling
    #: between otherwise independent blocks (a fleet's site flows under the connection
    #: capacity). A back end may solve first with these bounds lifted, then restore
    #: them and continue from that optimal basis (see ``solvers.highs_backend``).
    staged_columns: np.ndarray | None = None
    #: A hint for back ends with a choice: some binaries choose a device's operation mode
    #: (off, or on within a band) per step.
    mode_choices: bool = False
    #: A hint for back ends with a choice: a small MILP of one device's charge-or-discharge
    #: choices, one of many solved in a row (``solvers.decomposition``).
    device_choices: bool = False

    @property
    def has_secondary(self) -> bool:
        """Whether a tie-breaking objective is set."""
        return self.c2 is not None and bool(np.any(self.c2 != 0))

    def on_optimal_face(self, optimum: float, tolerance: float) -> CompiledLP:
        """The same model minimising ``c2`` among the solutions costing at most ``optimum``.

        One row ``c x <= optimum + tolerance`` is appended (named
        ``objective-bound``) and the objective becomes ``c2``: the lexicographic
        second stage of a two-objective solve.
        """
        nz = np.flatnonzero(self.c)
        n_rows = self.num_row
        a_start = np.concatenate([self.a_start, [self.a_start[-1] + len(nz)]]).astype(np.int32)
        return CompiledLP(
            c=self.c2.copy(),
            lb=self.lb,
            ub=self.ub,
            integer=self.integer,
            a_start=a_start,
            a_index=np.concatenate([self.a_index, nz]).astype(np.int32),
            a_value=np.concatenate([self.a_value, self.c[nz]]),
            row_lower=np.concatenate([self.row_lower, [-INF]]),
            row_upper=np.concatenate([self.row_upper, [optimum + tolerance]]),
            columns=self.columns,
            blocks=self.blocks,
            row_block_slices=[*self.row_block_slices, ("objective-bound", n_rows, n_rows + 1)],
            elastic=self.elastic,
            c2=None,
        )

    def with_integers_fixed(self, x: np.ndarray) -> CompiledLP:
        """The same model with every integer column fixed at its value in ``x``: an LP."""
        ints = np.flatnonzero(self.integer)
        lb, ub = self.lb.copy(), self.ub.copy()
        lb[ints] = ub[ints] = np.round(x[ints])
        return dataclasses.replace(self, lb=lb, ub=ub, integer=np.zeros_like(self.integer))

    @property
    def num_col(self) -> int:
        """Number of columns."""
        return len(self.c)

    @property
    def num_row(self) -> int:
        """Number of rows."""
        return len(self.row_lower)

    @property
    def has_integers(self) -> bool:
        """Whether any column is integer."""
        return bool(self.integer.any())


def _as_array(value: np.ndarray | float | None, size: int, default: float) -> np.ndarray:
    if value is None:
        return np.full(size, default)
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        return np.full(size, float(arr))
    return arr.astype(float, copy=True)


@dataclass
class LinearProgram:
    """Collects column and row blocks; ``compile`` turns them into arrays."""

    columns: list[ColumnBlock] = field(default_factory=list)
    blocks: list[RowBlock] = field(default_factory=list)
    _lb: list[np.ndarray] = field(default_factory=list)
    _ub: list[np.ndarray] = field(default_factory=list)
    _cost: list[np.ndarray] = field(default_factory=list)
    _cost2: list[np.ndarray] = field(default_factory=list)
    _int: list[np.ndarray] = field(default_factory=list)
    _cost_at: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    #: Position of each column block in ``columns`` by its first column (no list search).
    _position: dict[int, int] = field(default_factory=dict)
    num_col: int = 0

    def add_columns(
        self,
        name: str,
        size: int,
        lower: np.ndarray | float = 0.0,
        upper: np.ndarray | float = INF,
        cost: np.ndarray | float = 0.0,
        integer: bool = False,
    ) -> ColumnBlock:
        """Add ``size`` columns named ``name`` and return their block."""
        block = ColumnBlock(name, self.num_col, size)
        self._lb.append(_as_array(lower, size, 0.0))
        self._ub.append(_as_array(upper, size, INF))
        self._cost.append(_as_array(cost, size, 0.0))
        self._cost2.append(np.zeros(size))
        self._int.append(np.full(size, integer, dtype=bool))
        self._position[block.start] = len(self.columns)
        self.columns.append(block)
        self.num_col += size
        return block

    def add_cost(
        self, block: ColumnBlock, cost: np.ndarray | float, secondary: bool = False
    ) -> None:
        """Add ``cost`` to the objective coefficients of ``block``.

        ``secondary`` adds it to the second, tie-breaking objective instead (see
        ``CompiledLP.on_optimal_face``).
        """
        i = self._position.get(block.start, -1)
        if i < 0 or self.columns[i] != block:
            i = self.columns.index(block)
        costs = self._cost2 if secondary else self._cost
        costs[i] = costs[i] + _as_array(cost, block.size, 0.0)

    def add_cost_at(self, cols: np.ndarray, cost: np.ndarray) -> None:
        """Add ``cost[i]`` to the objective coefficient of column ``cols[i]`` (repeats add up)."""
        self._cost_at.append((np.asarray(cols, dtype=np.int64), np.asarray(cost, dtype=float)))

    def add_rows(
        self,
        name: str,
        rows: np.ndarray,
        cols: np.ndarray,
        vals: np.ndarray,
        lower: np.ndarray | float | None,
        upper: np.ndarray | float | None,
        *,
        size: int,
        constraint: str,
        device: str | None = None,
        steps: np.ndarray | None = None,
        unit: str = "",
        soft: Soft | None = None,
        elastic: bool = True,
        elastic_weight: float = 1.0,
        cut: bool = False,
    ) -> RowBlock:
        """Add ``size`` rows given as COO triplets (local row, global column, value).

        ``nan`` in ``lower``/``upper`` means unbounded on that side. ``cut=True``
        marks a valid inequality, left out of the elastic model.
        """
        lo = _as_array(lower, size, -INF)
        up = _as_array(upper, size, INF)
        lo[np.isnan(lo)] = -INF
        up[np.isnan(up)] = INF
        block = RowBlock(
            name=name,
            rows=np.asarray(rows, dtype=np.int64),
            cols=np.asarray(cols, dtype=np.int64),
            vals=np.asarray(vals, dtype=float),
            lower=lo,
            upper=up,
            constraint=constraint,
            device=device,
            steps=np.arange(size) if steps is None else np.asarray(steps),
            unit=unit,
            soft=soft,
            elastic=elastic,
            elastic_weight=elastic_weight,
            cut=cut,
        )
        self.blocks.append(block)
        return block

    def add_bounds(
        self,
        name: str,
        cols: np.ndarray,
        lower: np.ndarray | float | None,
        upper: np.ndarray | float | None,
        **meta: object,
    ) -> RowBlock:
        """Bound single columns (``lower <= x[cols] <= upper``) as a named block."""
        cols = np.asarray(cols, dtype=np.int64)
        size = len(cols)
        block = self.add_rows(
            name, np.arange(size), cols, np.ones(size), lower, upper, size=size, **meta
        )
        block.is_bound = True
        return block

    def compile(self, elastic: bool = False) -> CompiledLP:
        """Assemble the arrays; ``elastic=True`` gives the infeasibility-diagnosis model."""
        lb = np.concatenate(self._lb) if self._lb else np.zeros(0)
        ub = np.concatenate(self._ub) if self._ub else np.zeros(0)
        cost = np.concatenate(self._cost) if self._cost else np.zeros(0)
        cost2 = np.concatenate(self._cost2) if self._cost2 else np.zeros(0)
        integer = np.concatenate(self._int) if self._int else np.zeros(0, dtype=bool)
        for cols_at, cost_at in self._cost_at:
            np.add.at(cost, cols_at, cost_at)
        if elastic:
            cost = np.zeros_like(cost)
            cost2 = np.zeros_like(cost2)
        extra_cost: list[np.ndarray] = []
        n_extra = 0
        r_rows: list[np.ndarray] = []
        r_cols: list[np.ndarray] = []
        r_vals: list[np.ndarray] = []
        r_lo: list[np.ndarray] = []
        r_up: list[np.ndarray] = []
        compiled: list[CompiledBlock] = []
        slack_blocks: list[ColumnBlock] = []
        slices: list[tuple[str, int, int]] = []
        n_rows = 0
        for block in self.blocks:
            kept_mask = np.isfinite(block.lower) | np.isfinite(block.upper)
            if elastic and block.cut:
                kept_mask = np.zeros(block.size, dtype=bool)
            kept = np.flatnonzero(kept_mask)
            cb = CompiledBlock(block, kept)
            compiled.append(cb)
            if len(kept) == 0:
                continue
            relaxable = block.soft is not None or (elastic and block.elastic)
            if block.is_bound and not relaxable:
                cols = block.cols[kept]
                np.maximum.at(lb, cols, block.lower[kept])
                np.minimum.at(ub, cols, block.upper[kept])
                continue
            # Re-index the kept rows 0..k-1 and keep their non-zeros.
            new_index = np.full(block.size, -1, dtype=np.int64)
            new_index[kept] = np.arange(len(kept))
            nz = kept_mask[block.rows]
            rows = new_index[block.rows[nz]] + n_rows
            cols = block.cols[nz]
            vals = block.vals[nz]
            lo = block.lower[kept]
            up = block.upper[kept]
            if relaxable:
                if block.soft is not None and not elastic:
                    p_lo = _as_array(block.soft.price_lower, block.size, np.nan)[kept]
                    p_up = _as_array(block.soft.price_upper, block.size, np.nan)[kept]
                elif block.soft is not None:
                    # Priced sides are already allowed to give; unpriced ones are hard.
                    w = block.elastic_weight
                    p_lo = _as_array(block.soft.price_lower, block.size, np.nan)[kept]
                    p_up = _as_array(block.soft.price_upper, block.size, np.nan)[kept]
                    p_lo = np.where(np.isnan(p_lo), w, 0.0)
                    p_up = np.where(np.isnan(p_up), w, 0.0)
                else:
                    p_lo = np.full(len(kept), block.elastic_weight)
                    p_up = np.full(len(kept), block.elastic_weight)
                k = len(kept)
                local = np.arange(k)
                # A slack column per row whose side is finite and priced: shortfall (+1)
                # below the lower side, excess (-1) above the upper side.
                slacks: list[np.ndarray | None] = []
                for side, bound, price, sign in (
                    ("below", lo, p_lo, 1.0),
                    ("above", up, p_up, -1.0),
                ):
                    need = np.isfinite(bound) & ~np.isnan(price)
                    if not need.any():
                        slacks.append(None)
                        continue
                    idx = np.flatnonzero(need)
                    slack = np.full(k, -1, dtype=np.int64)
                    slack[idx] = self.num_col + n_extra + np.arange(len(idx))
                    rows = np.concatenate([rows, local[idx] + n_rows])
                    cols = np.concatenate([cols, slack[idx]])
                    vals = np.concatenate([vals, np.full(len(idx), sign)])
                    extra_cost.append(price[idx])
                    slack_blocks.append(
                        ColumnBlock(f"{block.name}.{side}", self.num_col + n_extra, len(idx))
                    )
                    n_extra += len(idx)
                    slacks.append(slack)
                cb.slack_lower, cb.slack_upper = slacks
            r_rows.append(rows)
            r_cols.append(cols)
            r_vals.append(vals)
            r_lo.append(lo)
            r_up.append(up)
            slices.append((block.name, n_rows, n_rows + len(kept)))
            n_rows += len(kept)
        if n_extra:
            cost = np.concatenate([cost, *extra_cost])
            cost2 = np.concatenate([cost2, np.zeros(n_extra)])
            lb = np.concatenate([lb, np.zeros(n_extra)])
            ub = np.concatenate([ub, np.full(n_extra, INF)])
            integer = np.concatenate([integer, np.zeros(n_extra, dtype=bool)])
        # Bounds crossing by less than the feasibility tolerance are equal bounds.
        touching = (lb > ub) & (lb <= ub + 1e-8)
        lb[touching] = ub[touching]
        # Costs below 1e-12 per unit are noise (and subnormal ones upset MIP solvers).
        cost = np.where(np.abs(cost) < 1e-12, 0.0, cost)
        rows = np.concatenate(r_rows) if r_rows else np.zeros(0, dtype=np.int64)
        cols = np.concatenate(r_cols) if r_cols else np.zeros(0, dtype=np.int64)
        vals = np.concatenate(r_vals) if r_vals else np.zeros(0)
        order = np.lexsort((cols, rows))
        rows, cols, vals = rows[order], cols[order], vals[order]
        a_start = np.zeros(n_rows + 1, dtype=np.int32)
        np.cumsum(np.bincount(rows, minlength=n_rows), out=a_start[1:])
        return CompiledLP(
            c=cost,
            lb=lb,
            ub=ub,
            integer=integer,
            a_start=a_start,
            a_index=cols.astype(np.int32),
            a_value=vals,
            row_lower=np.concatenate(r_lo) if r_lo else np.zeros(0),
            row_upper=np.concatenate(r_up) if r_up else np.zeros(0),
            columns=[*self.columns, *slack_blocks],
            blocks=compiled,
            row_block_slices=slices,
            elastic=elastic,
            c2=np.where(np.abs(cost2) < 1e-12, 0.0, cost2),
        )


def add_either_or(
    lp: LinearProgram,
    name: str,
    first: np.ndarray,
    second: np.ndarray,
    big_first: np.ndarray,
    big_second: np.ndarray,
    steps: np.ndarray,
    *,
    constraint: str,
    device: str | None = None,
) -> ColumnBlock:
    """At most one of two non-negative columns per step is positive: one binary per step.

    ``first[i]`` and ``second[i]`` are the global column indices of pair ``i``
    (at step ``steps[i]``), ``big_*`` bounds on their values. With ``y[i]`` the
    binary: ``first - big_first y <= 0`` and ``second + big_second y <= big_second``.
    Returns the binaries' block.
    """
    m = len(steps)
    r = np.arange(m)
    y = lp.add_columns(f"{name}.binary", m, 0.0, 1.0, integer=True)
    lp.add_rows(
        f"{name}.either-or",
        np.repeat(np.arange(2 * m), 2),
        np.stack([np.concatenate([first, second]), np.concatenate([y.start + r] * 2)], 1).ravel(),
        np.stack([np.ones(2 * m), np.concatenate([-big_first, big_second])], 1).ravel(),
        None,
        np.concatenate([np.zeros(m), big_second]),
        size=2 * m,
        constraint=constraint,
        device=device,
        steps=np.concatenate([steps, steps]),
        unit="kW",
        elastic=False,
    )
    return y
