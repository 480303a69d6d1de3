"""Shared sub-expressions of a constant matrix times a vector: the greedy search that turns many rows of shifted,
signed terms into an adder graph in which every repeated two-term sum is built once.

A row is a list of terms ``(variable, shift, sign)`` meaning ``sign * variable * 2**shift``. Two terms of a row
form a *pair* whose key ``(a, b, d, g)`` does not depend on where it sits: ``x_a + g * x_b * 2**d`` (``a`` the term
with the lower (variable, shift)). The pair with the highest saving is replaced, in every row holding it, by a new
variable, and the search goes on until no pair repeats (Hartley's common-subexpression elimination for multiple
constant multiplication). What is new here is bookkeeping that makes it scale:

* pair counts live in a dictionary that each replacement updates only for the terms it touches (the pairs of the
  two removed terms and of the new one), never by a rescan;
* the next pair comes from a bucket queue indexed by saving: an entry is pushed when a count grows, and an entry
  whose count has since shrunk is moved down to its bucket when it reaches the top (lazy updates), so each step
  costs O(1) amortized; keys are single integers and a row's terms sit in a small per-row table, which keeps the
  working set small (random access to large tables, not arithmetic, is what bounds this search in Python);
* the saving of a pair weighs its count by the width of the adder it builds (``(count - 1) * width``), so wide,
  overlapping sums are shared before narrow ones: LUTs follow adder bits, not adder counts;
* an optional depth bound keeps every row buildable as a tree of at most ``max_depth`` adders (Kraft's inequality
  on the depths of its terms), and an optional pair budget splits the inputs into blocks searched separately
  (still sharing across all rows) so that very large layers finish in bounded time and memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Term", "Variable", "decompose", "naf_weight", "share"]

Term = tuple[int, int, int]  # (variable, shift, sign)



@dataclass
class Variable:
    """A value the rows can use: its integer range, adder depth and input block."""

    lo: int
    hi: int
    depth: int = 0
    block: int = 0
    sign: int = 1  # a shared sum is built as sign * (x_a * 2**max(0, -d) + g * x_b * 2**max(0, d))
    width: int = field(init=False)  # bits of the narrowest two's complement type holding [lo, hi]

    def __post_init__(self) -> None:
        def bits(v: int) -> int:
            return (v.bit_length() if v >= 0 else (-v - 1).bit_length()) + 1

        self.width = max(bits(self.lo), bits(self.hi))


def pair_key(t: Term, u: Term) -> tuple[tuple[int, int, int, int], int, int]:
    """(key, shift, sign) of the pair of terms ``t``, ``u``: key ``(a, b, d, g)``; the pair's value is
    ``sign * (x_a * 2**max(0, -d) + g * x_b * 2**max(0, d)) * 2**shift``."""
    if (u[0], u[1]) < (t[0], t[1]):
        t, u = u, t
    return (t[0], u[0], u[1] - t[1], t[2] * u[2]), min(t[1], u[1]), t[2]


def adder_width(va: Variable, vb: Variable, d: int) -> int:
    """Bits of the adder that sums ``x_a`` and ``x_b * 2**d`` (the low bits of the finer one pass through)."""
    if d < 0:
        va, vb, d = vb, va, -d
    return max(va.width - d, vb.width) + 1


def share(
    rows: list[list[Term]],
    variables: list[Variable],
    build: Callable[[tuple[int, int, int, int]], Variable],
    *,
    row_limits: list[int] | None = None,
    max_pairs: int | None = None,
    min_uses: int = 2,
) -> int:
    """Rewrite ``rows`` in place, replacing repeated pairs by new variables, and return how many were made.

    ``build(key)`` makes the adder of ``x_a * 2**max(0, -d) + g * x_b * 2**max(0, d)`` and returns its
    :class:`Variable` (``sign`` -1 when the wire holds the negated sum); it is appended to ``variables``.
    ``row_limits[r]`` caps row ``r``'s Kraft sum ``sum(2**depth)`` (a tree of depth D exists iff it
    is at most ``2**D``); a pair is replaced only in rows that stay within it. With ``max_pairs``, inputs are split
    into blocks (``Variable.block``) small enough that the rows hold about that many pairs within blocks, and only
    pairs inside one block are counted. A pair is replaced where it occurs at least ``min_uses`` times; its saving
    is ``(uses - min_uses + 1) * width`` (with 2, one adder of its width per extra use).
    """
    return _Search(rows, variables, build, row_limits, max_pairs, min_uses).run()


class _Search:
    """State of one :func:`share` run."""

    def __init__(self, rows, variables, build, row_limits, max_pairs, min_uses=2) -> None:
        self.rows, self.variables, self.build, self.limits = rows, variables, build, row_limits
        self.min_uses = min_uses
        n_vars = len(variables)
        n_terms = sum(len(r) for r in rows)
        total = sum(len(r) * (len(r) - 1) // 2 for r in rows)
        blocks = 1
        if max_pairs is not None and total > max_pairs and n_vars > 1:
            blocks = min(n_vars, -(-total // max_pairs))
        for k, v in enumerate(variables):
            v.block = k * blocks // max(n_vars, 1)
        shifts = [s for r in rows for _, s, _ in r] or [0]
        span = max(shifts) - min(shifts)
        # key (a, b, d, g) as one integer: ((a * NV + b) * DS + d + span) * 2 + (g > 0)
        self.nv, self.ds, self.span = n_vars + n_terms + 1, 2 * span + 1, span
        # row r as {variable: [(shift, sign), ...]}; rows_of[v]: bit r set when row r uses v
        self.table = []
        self.rows_of = [0] * n_vars
        for r, row in enumerate(rows):
            t: dict[int, list] = {}
            for v, sh, g in row:
                t.setdefault(v, []).append((sh, g))
                self.rows_of[v] |= 1 << r
            self.table.append(t)
        self.count: dict[int, int] = {}
        self.widths: dict[int, int] = {}
        self.buckets: dict[int, list[int]] = {}
        self.top = 0
        self.kraft = None
        if row_limits is not None:
            self.kraft = [sum(1 << variables[v].depth for v, _, _ in row) for row in rows]

    # -------------------------------------------------------------------------------------------- keys
    def encode(self, a: int, sa: int, ga: int, b: int, sb: int, gb: int) -> int:
        if (b, sb) < (a, sa):
            a, sa, ga, b, sb, gb = b, sb, gb, a, sa, ga
        return ((a * self.nv + b) * self.ds + sb - sa + self.span) * 2 + (ga == gb)

    def decode(self, key: int) -> tuple[int, int, int, int]:
        g = 1 if key & 1 else -1
        rest, d = divmod(key >> 1, self.ds)
        a, b = divmod(rest, self.nv)
        return a, b, d - self.span, g

    def score(self, key: int, c: int) -> int:
        w = self.widths.get(key)
        if w is None:
            a, b, d, _ = self.decode(key)
            w = self.widths[key] = adder_width(self.variables[a], self.variables[b], d)
        return (c - self.min_uses + 1) * w  # the adder bits the pair saves (2: one adder per extra use)

    def push(self, key: int, score: int) -> None:
        self.buckets.setdefault(score, []).append(key)
        if score > self.top:
            self.top = score

    # -------------------------------------------------------------------------------------------- counts
    def bump_with(self, r: int, v: int, sh: int, g: int, step: int, skip: int = -1) -> None:
        """Change by ``step`` the counts of the pairs of term (v, sh, g) with every term of row ``r``."""
        block, variables, count = self.variables[v].block, self.variables, self.count
        nv, ds, span = self.nv, self.ds, self.span  # encode(), inlined: this loop is most of the search's time
        for u, terms in self.table[r].items():
            if variables[u].block != block:
                continue
            for su, gu in terms:
                if skip > 0 and u == v and su == sh and gu == g:
                    skip -= 1  # the term itself (once)
                    continue
                if (u, su) < (v, sh):
                    key = ((u * nv + v) * ds + sh - su + span) * 2 + (g == gu)
                else:
                    key = ((v * nv + u) * ds + su - sh + span) * 2 + (g == gu)
                c = count.get(key, 0) + step
                if c <= 0:
                    count.pop(key, None)
                    continue
                count[key] = c
                if step > 0 and c >= self.min_uses:
                    self.push(key, self.score(key, c))

    def run(self) -> int:
        count, variables = self.count, self.variables
        for row in self.rows:
            for k, (v, sh, g) in enumerate(row):
                block = variables[v].block
                for u, su, gu in row[k + 1 :]:
                    if variables[u].block == block:
                        key = self.encode(v, sh, g, u, su, gu)
                        count[key] = count.get(key, 0) + 1
        for key, c in count.items():
            if c >= self.min_uses:
                self.push(key, self.score(key, c))
        made = 0
        while True:
            bucket = self.buckets.get(self.top)
            while not bucket:
                if self.top <= 0:
                    return self._finish(made)
                self.buckets.pop(self.top, None)
                self.top -= 1
                bucket = self.buckets.get(self.top)
            key = bucket.pop()
            c = count.get(key, 0)
            if c < self.min_uses:
                continue
            now = self.score(key, c)
            if now != self.top:
                if now < self.top:
                    self.push(key, now)  # its count shrank since it was pushed: move it down
                continue  # (now > top: a newer entry holds it higher)
            made += self.extract(key)

    def extract(self, key: int) -> int:
        """Replace the pair ``key`` wherever it occurs (and the depth bound allows); 1 if an adder was made."""
        a, b, d, g = self.decode(key)
        variables = self.variables
        va, vb = variables[a], variables[b]
        grow = (1 << (max(va.depth, vb.depth) + 1)) - (1 << va.depth) - (1 << vb.depth)
        found = []
        users = self.rows_of[a] & self.rows_of[b]
        while users:
            low = users & -users
            r = low.bit_length() - 1
            users ^= low
            hit = self.find(r, a, b, d, g)
            if hit and self.kraft is not None:
                if self.kraft[r] + grow > self.limits[r]:
                    continue
                hit = hit[:1]  # one replacement per row keeps the bound check exact
            if hit:
                found.append((r, hit))
        uses = sum(len(h) for _, h in found)
        if uses < self.min_uses:
            self.count[key] = uses  # not worth an adder now; a later change in some row may count it again
            return 0
        var = self.build((a, b, d, g))
        var.block = va.block
        variables.append(var)
        new = len(variables) - 1
        self.rows_of.append(0)
        for r, hit in found:
            self.replace(r, hit, new, a, b)
            if self.kraft is not None:
                self.kraft[r] += grow
        return 1

    def find(self, r: int, a: int, b: int, d: int, g: int) -> list[tuple[int, int, int, int]]:
        """Disjoint occurrences (shift of x_a, sign of x_a, shift of x_b, sign of x_b) of the pair in row ``r``."""
        t = self.table[r]
        ta, tb = t.get(a), t.get(b)
        if not ta or not tb:
            return []
        out, used = [], set()
        for sa, ga in ta:
            if (a, sa) in used:
                continue
            for sb, gb in tb:
                if sb == sa + d and ga * gb == g and (b, sb) not in used and (a != b or sb != sa):
                    used.update(((a, sa), (b, sb)))
                    out.append((sa, ga, sb, gb))
                    break
        return out

    def remove(self, r: int, v: int, sh: int, g: int) -> None:
        terms = self.table[r][v]
        terms.remove((sh, g))
        if not terms:
            del self.table[r][v]
            self.rows_of[v] &= ~(1 << r)

    def replace(self, r: int, hit: list, new: int, a: int, b: int) -> None:
        """Replace the terms of ``hit`` in row ``r`` by terms of ``new``, updating the pair counts."""
        for sa, ga, sb, gb in hit:
            self.bump_with(r, a, sa, ga, -1, skip=1)  # pairs of x_a's term (with x_b's among them)
            self.remove(r, a, sa, ga)
            self.bump_with(r, b, sb, gb, -1, skip=1)
            self.remove(r, b, sb, gb)
            nt = (min(sa, sb), ga * self.variables[new].sign)
            self.bump_with(r, new, *nt, +1)
            self.table[r].setdefault(new, []).append(nt)
            self.rows_of[new] |= 1 << r

    def _finish(self, made: int) -> int:
        for r, t in enumerate(self.table):
            self.rows[r][:] = [(v, sh, g) for v, terms in t.items() for sh, g in terms]
        return made


def naf_weight(values: np.ndarray) -> np.ndarray:
    """Nonzero digits of the canonical signed digit form of each integer (``popcount(n ^ 3n)`` for ``n >= 0``)."""
    a = np.abs(values)
    return np.bitwise_count(a ^ (3 * a)).astype(np.int64)


def decompose(matrix: np.ndarray, max_chain: int | None = None) -> list[tuple[int, int]]:
    """Rows of ``matrix`` as ``row_o = g * row_p + delta_o``: the parent ``(p, g)`` of each row (``(-1, 0)`` for a
    root), chosen so that the deltas have fewer canonical signed digits than the rows themselves.

    Then ``y_o = g * y_p + delta_o @ x``: one adder of the parent's output replaces the digits the two rows have
    in common (a kernel decomposition ``W = W2 @ W1`` with ``W2`` a forest of +-1 entries, as da4ml does, found
    here by a greedy maximum-saving spanning forest). ``max_chain`` bounds how many parents an output sits below
    (each adds a level of adders to its depth). The saving of an edge is the digits it removes less the adder it
    adds; edges are taken largest saving first, as long as they make no cycle and respect the chain bound.
    """
    n = len(matrix)
    if n < 2:
        return [(-1, 0)] * n
    own = naf_weight(matrix).sum(axis=1)
    edges = []
    for g in (1, -1):
        for start in range(0, n, 64):  # blocks of rows keep the n x n x m temporaries small
            block = matrix[start : start + 64, None, :] - g * matrix[None, :, :]
            cost = naf_weight(block).sum(axis=2)
            saving = own[start : start + 64, None] - cost - 1
            for o, p in zip(*np.nonzero(saving > 0), strict=True):
                if start + o != p:
                    edges.append((-int(saving[o, p]), start + int(o), int(p), g))
    edges.sort()
    parent = [(-1, 0)] * n
    below = [0] * n  # how many parents above each row
    height = [0] * n  # the longest chain of children below each row
    children: list[list[int]] = [[] for _ in range(n)]
    limit = n if max_chain is None else max_chain
    for _, o, p, g in edges:
        if parent[o][0] >= 0 or below[p] + 1 + height[o] > limit:
            continue
        q = p
        while q >= 0 and q != o:  # o must not be an ancestor of p
            q = parent[q][0]
        if q == o:
            continue
        parent[o] = (p, g)
        children[p].append(o)
        stack = [(o, below[p] + 1)]
        while stack:  # o's subtree moves down
            r, depth = stack.pop()
            below[r] = depth
            stack += [(c, depth + 1) for c in children[r]]
        q, h = p, height[o] + 1
        while q >= 0 and height[q] < h:  # p's ancestors may grow taller
            height[q] = h
            q, h = parent[q][0], h + 1
    return parent
