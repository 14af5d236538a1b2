"""Splitting a labelled dataset across clients: ``iid``, ``shards:K``, ``dirichlet:ALPHA``.

Kept apart from learning code: every function maps labels to lists of example indices.
All are seeded; each index goes to exactly one client.
"""

from __future__ import annotations

import numpy as np

from .errors import PrismError

SPLIT_HELP = "iid | shards:K (K label-sorted shards per client) | dirichlet:ALPHA"


def parse_split(spec: str) -> tuple[str, float]:
    """``iid`` -> ('iid', 0); ``shards:4`` -> ('shards', 4); ``dirichlet:0.5`` -> ('dirichlet', 0.5)."""
    kind, _, arg = spec.partition(":")
    try:
        if kind == "iid" and not arg:
            return "iid", 0.0
        if kind == "shards" and int(arg) >= 1:
            return "shards", int(arg)
        if kind == "dirichlet" and float(arg) > 0:
            return "dirichlet", float(arg)
    except ValueError:
        pass
    raise PrismError(f"split {spec!r} is not understood; use {SPLIT_HELP}")


def iid(n_examples: int, n_clients: int, seed: int) -> list[np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n_examples)
    return [np.sort(part) for part in np.array_split(perm, n_clients)]


def shards(labels: np.ndarray, n_clients: int, per_client: int, seed: int) -> list[np.ndarray]:
    """The paper's split: sort by label, cut into n_clients * K shards, give K random shards each."""
    rng = np.random.default_rng(seed)
    n_shards = n_clients * per_client
    if n_shards > len(labels):
        raise PrismError(f"{n_shards} shards requested for {len(labels)} examples; use fewer")
    order = np.lexsort((rng.permutation(len(labels)), labels))  # by label, ties shuffled
    pieces = np.array_split(order, n_shards)
    assignment = rng.permutation(n_shards).reshape(n_clients, per_client)
    return [np.sort(np.concatenate([pieces[s] for s in row])) for row in assignment]


def dirichlet(labels: np.ndarray, n_clients: int, alpha: float, seed: int, min_size: int = 10,
              max_tries: int = 1000) -> list[np.ndarray]:
    """Per class, proportions ~ Dir(alpha) over clients; redrawn until every client has
    ``min_size`` examples."""
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    if n_clients * min_size > len(labels):
        raise PrismError(f"{n_clients} clients x {min_size} minimum exceeds {len(labels)} examples")
    for _ in range(max_tries):
        parts: list[list[np.ndarray]] = [[] for _ in range(n_clients)]
        for c in classes:
            idx = rng.permutation(np.flatnonzero(labels == c))
            props = rng.dirichlet(np.full(n_clients, alpha))
            cuts = (np.cumsum(props)[:-1] * len(idx)).astype(int)
            for client, chunk in enumerate(np.split(idx, cuts)):
                parts[client].append(chunk)
        out = [np.sort(np.concatenate(p)) for p in parts]
        if min(len(p) for p in out) >= min_size:
            return out
    raise PrismError(f"dirichlet:{alpha} could not give every client {min_size} examples in "
                     f"{max_tries} draws; raise alpha or use fewer clients")


def partition(labels: np.ndarray | None, n_examples: int, n_clients: int, spec: str, seed: int
              ) -> list[np.ndarray]:
    """Indices per client for a split spec."""
    if n_clients < 1:
        raise PrismError(f"need at least one client, got {n_clients}")
    kind, arg = parse_split(spec)
    if kind == "iid":
        return iid(n_examples, n_clients, seed)
    if labels is None:
        raise PrismError(f"split {spec!r} needs labels and this dataset has none; use iid")
    labels = np.asarray(labels)
    if kind == "shards":
        return shards(labels, n_clients, int(arg), seed)
    return dirichlet(labels, n_clients, arg, seed)
