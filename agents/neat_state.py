"""NEAT's genomes and whole evolutionary state as JSON, rebuilt into neat-python objects (docs/formats.md).

Two documents, both ``{"format": ..., "version": 1, ...}``:

- ``champion.json`` (``retrodojo-neat-genome``): one genome, what a saved NEAT agent plays.
- ``population.json.gz`` (``retrodojo-neat-population``): everything a resume needs, so that a resumed run
  evolves exactly as an uninterrupted one: the population, the species (representatives, members, fitness
  history), the innovation tracker, the genome, node and species counters, the ancestors, the best genome,
  the champion, frames and the goal flag. ``extra`` is a mapping kept for later run state (a curriculum).

A genome is ``{"key", "fitness", "nodes": [[key, <node fields>]], "connections": [[in, out, innovation,
<connection fields>]]}``, the field names listed once per document (``node_fields``, ``connection_fields``)
and checked against neat-python's gene classes. Rows keep neat-python's dict order and floats are written
with all their digits: both matter for an exact resume. Each genome object is written once; the population,
the species and the best genome refer to it by its index in ``genomes``, as the objects share it in memory.
"""

from __future__ import annotations

import math
from itertools import count
from pathlib import Path
from typing import Any

import neat
from neat.attributes import BoolAttribute, FloatAttribute, StringAttribute
from neat.species import Species

from agents.errors import AgentError
from agents.safe_io import FORMAT_VERSION, Fields, check_version, is_int

GENOME_FORMAT = "retrodojo-neat-genome"
POPULATION_FORMAT = "retrodojo-neat-population"
CHAMPION_FILE = "champion.json"
POPULATION_FILE = "population.json.gz"


class GenomeCodec:
    """Genomes of one neat-python config to JSON rows and back, checking every value on the way in."""

    def __init__(self, config: neat.Config):
        self.config = config
        self.gc = config.genome_config
        self.node_attrs = list(self.gc.node_gene_type._gene_attributes)
        self.conn_attrs = list(self.gc.connection_gene_type._gene_attributes)

    def fields(self) -> dict:
        """The column names, written once per document."""
        return {"node_fields": ["key", *(a.name for a in self.node_attrs)],
                "connection_fields": ["in", "out", "innovation", *(a.name for a in self.conn_attrs)]}

    def check_fields(self, top: Fields) -> None:
        """The document's columns are this neat-python's."""
        for name, want in self.fields().items():
            if top.get(name, lambda v: True, "") != want:
                top.fail(name, f"does not match this neat-python's gene fields ({', '.join(want)})")

    def encode(self, genome) -> dict:
        """One genome as JSON data."""
        return {"key": genome.key, "fitness": genome.fitness,
                "nodes": [[k, *(getattr(n, a.name) for a in self.node_attrs)] for k, n in genome.nodes.items()],
                "connections": [[k[0], k[1], c.innovation, *(getattr(c, a.name) for a in self.conn_attrs)]
                                for k, c in genome.connections.items()]}

    def _value(self, attr, value, f: Fields, where: str):
        if isinstance(attr, BoolAttribute):
            ok = isinstance(value, bool)
        elif isinstance(attr, FloatAttribute):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            value = float(value) if ok else value
        elif isinstance(attr, StringAttribute):
            defs = {"activation": self.gc.activation_defs, "aggregation": self.gc.aggregation_function_defs}
            ok = isinstance(value, str) and (attr.name not in defs or defs[attr.name].is_valid(value))
        else:
            ok = True
        if not ok:
            f.fail(where, f"has an invalid {attr.name} ({str(value)[:40]!r})")
        return value

    def decode(self, data: Any, path: Path, where: str):
        """A genome from :meth:`encode`'s data; anything malformed is an AgentError naming where it is."""
        f = Fields(data, path, where)
        genome = self.config.genome_type(f.int("key"))
        genome.fitness = f.float("fitness", finite=False, optional=True)
        width = 1 + len(self.node_attrs)
        for i, row in enumerate(f.list("nodes")):
            if not (isinstance(row, list) and len(row) == width and is_int(row[0])) or row[0] in genome.nodes:
                f.fail(f"nodes[{i}]", f"is not a new node's [key, {len(self.node_attrs)} fields]")
            node = self.gc.node_gene_type(row[0])
            for attr, value in zip(self.node_attrs, row[1:]):
                setattr(node, attr.name, self._value(attr, value, f, f"nodes[{i}]"))
            genome.nodes[row[0]] = node
        missing = [k for k in self.gc.output_keys if k not in genome.nodes]
        if missing:
            f.fail("nodes", f"lack the output nodes {missing[:5]} (the config has {self.gc.num_outputs} outputs)")
        inputs = set(self.gc.input_keys)
        width = 3 + len(self.conn_attrs)
        for i, row in enumerate(f.list("connections")):
            if not (isinstance(row, list) and len(row) == width and all(is_int(v) for v in row[:3])):
                f.fail(f"connections[{i}]", f"is not [in, out, innovation, {len(self.conn_attrs)} fields]")
            key = (row[0], row[1])
            if key in genome.connections or not (row[0] in inputs or row[0] in genome.nodes) \
                    or row[1] not in genome.nodes:
                f.fail(f"connections[{i}]", "links nodes the genome does not have, or repeats a link")
            conn = self.gc.connection_gene_type(key, innovation=row[2])
            for attr, value in zip(self.conn_attrs, row[3:]):
                setattr(conn, attr.name, self._value(attr, value, f, f"connections[{i}]"))
            genome.connections[key] = conn
        return genome


# --------------------------------------------------------------------------- one genome


def champion_document(genome, config: neat.Config) -> dict:
    """``champion.json``'s data."""
    codec = GenomeCodec(config)
    return {"format": GENOME_FORMAT, "version": FORMAT_VERSION, **codec.fields(), "genome": codec.encode(genome)}


def champion_from_document(data: Any, config: neat.Config, path: Path):
    """The genome of a ``champion.json``."""
    check_version(data, path, GENOME_FORMAT)
    codec = GenomeCodec(config)
    top = Fields(data, path)
    codec.check_fields(top)
    return codec.decode(data.get("genome"), path, "genome")


# --------------------------------------------------------------------------- the whole evolutionary state


def population_document(population: neat.Population, champion, config: neat.Config, *, next_genome_key: int,
                        next_node_key: int | None, next_species_key: int, frames: int, solved: bool,
                        extra: dict | None = None) -> dict:
    """``population.json.gz``'s data; the counters are passed in because reading them advances them."""
    codec = GenomeCodec(config)
    genomes: list[dict] = []
    index: dict[int, int] = {}

    def ref(genome) -> int | None:
        if genome is None:
            return None
        if id(genome) not in index:
            index[id(genome)] = len(genomes)
            genomes.append(codec.encode(genome))
        return index[id(genome)]

    p, ss = population, population.species
    tracker = p.reproduction.innovation_tracker
    doc = {
        "format": POPULATION_FORMAT, "version": FORMAT_VERSION, **codec.fields(),
        "generation": p.generation, "frames": frames, "solved": solved,
        "population": [ref(g) for g in p.population.values()],
        "species": [{"key": s.key, "created": s.created, "last_improved": s.last_improved,
                     "representative": ref(s.representative), "members": [ref(g) for g in s.members.values()],
                     "fitness": s.fitness, "adjusted_fitness": s.adjusted_fitness,
                     "fitness_history": list(s.fitness_history)} for s in ss.species.values()],
        "genome_to_species": [[g, s] for g, s in ss.genome_to_species.items()],
        "ancestors": [[g, list(parents)] for g, parents in p.reproduction.ancestors.items()],
        "innovation": {"global_counter": tracker.global_counter,
                       "generation_innovations": [[*k, v] for k, v in tracker.generation_innovations.items()]},
        "next_genome_key": next_genome_key, "next_node_key": next_node_key, "next_species_key": next_species_key,
        "best_genome": ref(p.best_genome), "champion": ref(champion),
        "compatibility_threshold": config.species_set_config.compatibility_threshold,
        "extra": extra or {},
    }
    doc["genomes"] = genomes
    return doc


def restore_population(data: Any, config: neat.Config, path: Path) -> dict:
    """Rebuild neat-python's objects from :func:`population_document`'s data.

    Returns:
        ``population`` (a ``neat.Population`` whose reporters and counters are set), ``champion``,
        ``frames``, ``solved`` and ``extra``.
    """
    check_version(data, path, POPULATION_FORMAT)
    codec = GenomeCodec(config)
    top = Fields(data, path)
    codec.check_fields(top)
    genomes = [codec.decode(g, path, f"genomes[{i}]") for i, g in enumerate(top.list("genomes"))]

    def genome(value, where: str):
        if not (is_int(value) and 0 <= value < len(genomes)):
            top.fail(where, "does not refer to a genome of 'genomes'")
        return genomes[value]

    pop = {}
    for i, ref in enumerate(top.list("population")):
        g = genome(ref, f"population[{i}]")
        if g.key in pop:
            top.fail(f"population[{i}]", f"repeats genome {g.key}")
        pop[g.key] = g
    if not pop:
        top.fail("population", "is empty")
    generation = top.int("generation", lo=0)
    species_set = config.species_set_type(config.species_set_config, None)
    for i, raw in enumerate(top.list("species")):
        f = Fields(raw, path, f"species[{i}]")
        s = Species(f.int("key"), f.int("created", lo=0))
        s.last_improved = f.int("last_improved", lo=0)
        s.representative = genome(f.get("representative", lambda v: True, ""), f"species[{i}].representative")
        s.members = {}
        for j, ref in enumerate(f.list("members")):
            m = genome(ref, f"species[{i}].members[{j}]")
            s.members[m.key] = m
        s.fitness = f.float("fitness", finite=False, optional=True)
        s.adjusted_fitness = f.float("adjusted_fitness", finite=False, optional=True)
        history = f.list("fitness_history")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in history):
            f.fail("fitness_history", "holds something other than numbers")
        s.fitness_history = [float(v) for v in history]
        species_set.species[s.key] = s
    species_set.genome_to_species = {g: s for g, s in pairs_of(
        top, "genome_to_species", lambda r: len(r) == 2 and all(is_int(v) for v in r))}
    inn = top.sub("innovation")
    tracker = neat.InnovationTracker(inn.int("global_counter", lo=0))
    for row in pairs_of(inn, "generation_innovations",
                        lambda r: len(r) == 4 and is_int(r[0]) and is_int(r[1]) and isinstance(r[2], str)
                        and is_int(r[3])):
        tracker.generation_innovations[(row[0], row[1], row[2])] = row[3]
    ancestors = {row[0]: tuple(row[1]) for row in pairs_of(
        top, "ancestors", lambda r: len(r) == 2 and is_int(r[0]) and isinstance(r[1], list) and len(r[1]) <= 2
        and all(is_int(v) for v in r[1]))}
    threshold = top.float("compatibility_threshold")
    if threshold <= 0:
        top.fail("compatibility_threshold", "is not positive")
    next_node = top.int("next_node_key", lo=0, optional=True)
    best = top.get("best_genome", lambda v: True, "", optional=True)
    champion = top.get("champion", lambda v: True, "", optional=True)
    extra = top.get("extra", lambda v: isinstance(v, dict), "a mapping", optional=True) or {}

    config.species_set_config.compatibility_threshold = threshold  # steered during the run (target_species)
    gc = config.genome_config
    gc.innovation_tracker = tracker
    gc.node_indexer = None if next_node is None else count(next_node)
    try:
        population = neat.Population(config, initial_state=(pop, species_set, generation))
    except Exception as e:  # neat-python's own checks of the config against the state
        raise AgentError(f"{path} does not fit its neat.cfg ({type(e).__name__}: {e}).") from None
    population.reproduction.innovation_tracker = tracker
    population.reproduction.genome_indexer = count(top.int("next_genome_key", lo=0))
    population.reproduction.ancestors = ancestors
    species_set.indexer = count(top.int("next_species_key", lo=0))
    species_set.reporters = population.reporters
    population.best_genome = None if best is None else genome(best, "best_genome")
    return {"population": population, "champion": None if champion is None else genome(champion, "champion"),
            "frames": top.int("frames", lo=0), "solved": top.bool("solved"), "extra": extra}


def pairs_of(f: Fields, key: str, check) -> list:
    """The list ``f[key]`` whose every row is a list that ``check`` accepts."""
    rows = f.list(key)
    for i, row in enumerate(rows):
        if not (isinstance(row, list) and check(row)):
            f.fail(f"{key}[{i}]", "is malformed")
    return rows
