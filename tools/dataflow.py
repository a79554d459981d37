"""Inspect a Dataflow job built offline (``--template_location``): what it staged, and its graph.

Any align job becomes a Dataflow classic template when given ``--runner DataflowRunner
--template_location FILE`` (plus ``--project --region --temp_location gs://...``): Beam
builds the graph, packages this project (``--setup_file``) and stages it with the pickled
graph, then writes the job request to FILE instead of submitting it. This module reads
that back, so a person (or a test) can check a job before paying for workers:

    python -m tools.dataflow TEMPLATE.json [--load]

prints the staged files, what a worker pip-installs with the staged package (its core
dependencies: no extras, so no training stack) and the graph's steps; ``--load`` also
rebuilds the pipeline from its staged proto, unpickling every DoFn and CombineFn as a
worker would.
"""

from __future__ import annotations

import argparse
import io
import json
import tarfile
import tomllib
from collections.abc import Sequence

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.portability.api import beam_runner_api_pb2

GCS_HOST = "storage.googleapis.com/"
PIPELINE_PROTO = "pipeline.pb"
SDIST = "workflow.tar.gz"  # the name Beam stages the --setup_file sdist under


def read_template(path: str) -> dict:
    """The job request a ``--template_location`` run wrote (local or gs://)."""
    with FileSystems.open(path) as handle:
        return json.loads(handle.read())


def as_gs_url(location: str) -> str:
    """Dataflow writes staged locations as ``storage.googleapis.com/bucket/...``."""
    if location.startswith(GCS_HOST):
        return "gs://" + location[len(GCS_HOST) :]
    return location


def staging_dir(template: dict) -> str:
    """The folder the job's files were staged to (under ``--temp_location`` by default)."""
    return as_gs_url(template["environment"]["tempStoragePrefix"])


def staged_packages(template: dict) -> dict[str, str]:
    """name -> gs:// url of what workers install: the package sdist, pickled session, ..."""
    packages = {}
    for pool in template["environment"].get("workerPools", []):
        for package in pool.get("packages", []):
            packages[package["name"]] = as_gs_url(package["location"])
    return packages


def read_bytes(path: str) -> bytes:
    """A file's bytes as stored (FileSystems would otherwise gunzip a .gz on the fly)."""
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        return handle.read()


def worker_requirements(sdist: bytes) -> list[str]:
    """What ``pip install`` of the staged sdist installs besides it: the dependencies its
    pyproject.toml declares, without any extra (pip builds the metadata from it)."""
    with tarfile.open(fileobj=io.BytesIO(sdist), mode="r:gz") as archive:
        top = archive.getnames()[0].split("/")[0]
        pyproject = archive.extractfile(f"{top}/pyproject.toml").read().decode()
    return list(tomllib.loads(pyproject)["project"].get("dependencies", []))


def pipeline_proto(template: dict):
    """The portable pipeline (Runner API proto) the job staged beside its packages."""
    data = read_bytes(FileSystems.join(staging_dir(template), PIPELINE_PROTO))
    return beam_runner_api_pb2.Pipeline.FromString(data)


def step_names(proto) -> list[str]:
    """Names of the leaf transforms (the steps a worker runs), sorted."""
    transforms = proto.components.transforms
    return sorted(t.unique_name for t in transforms.values() if not t.subtransforms)


def load_pipeline(proto):
    """Rebuilds a Pipeline from the proto: every pickled DoFn/CombineFn/source is loaded."""
    return beam.Pipeline.from_runner_api(proto, runner=None, options=PipelineOptions([]))


def run(argv: Sequence[str] | None = None) -> list[str]:
    """Prints what a template staged and its steps; returns the step names."""
    parser = argparse.ArgumentParser(prog="python -m tools.dataflow", description=__doc__)
    parser.add_argument("template", help="the file a --template_location run wrote")
    parser.add_argument("--load", action="store_true", help="unpickle every step as a worker")
    args = parser.parse_args(argv)
    template = read_template(args.template)
    print(f"staged in {staging_dir(template)}")
    for name, url in sorted(staged_packages(template).items()):
        print(f"  package {name}: {url}")
    if SDIST in staged_packages(template):
        requirements = worker_requirements(read_bytes(staged_packages(template)[SDIST]))
        print(f"a worker installs the package with: {', '.join(requirements) or 'nothing'}")
    proto = pipeline_proto(template)
    steps = step_names(proto)
    print(f"{len(steps)} steps")
    for name in steps:
        print(f"  {name}")
    if args.load:
        load_pipeline(proto)
        print("every step unpickled")
    return steps


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m tools.dataflow``: runs it; returns None, so success exits 0."""
    run(argv)


if __name__ == "__main__":
    main()
