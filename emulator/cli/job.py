"""``amlemu job create|show|list|stream|cancel|download``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from emulator.cli.common import verbs
from emulator.cli.sdk import validated
from emulator.cli.yamlfile import apply_sets, load_yaml_file
from emulator.jobs import lifecycle, outputs
from emulator.jobs.stream import stream
from emulator.kinds import submit, view as job_view
from emulator.store import open_store


def create(args: argparse.Namespace) -> dict:
    store = open_store()
    data, base = load_yaml_file(args.file)
    apply_sets(data, args.set)
    if args.name:
        data["name"] = args.name
    data = validated("job", data, args.file, args.set)
    job = submit(store, data, base)
    if args.stream:
        stream(store, job["name"])
        job = lifecycle.get(store, job["name"])
    return job_view(store, job, tracking=args.stream)


def show(args):
    store = open_store()
    return job_view(store, lifecycle.get(store, args.name))


def list_(args):
    store = open_store()
    limit = None if args.all_results else args.max_results
    children = args.parent_job_name is not None  # a sweep's trials: with their metrics, to compare them
    return [job_view(store, j, tracking=children) for j in lifecycle.list_jobs(store, args.parent_job_name, limit)]


def stream_(args):
    store = open_store()
    stream(store, args.name)
    return None


def cancel(args):
    store = open_store()
    return job_view(store, lifecycle.cancel(store, args.name), tracking=False)


def download(args):
    store = open_store()
    target = outputs.download(store, args.name, Path(args.download_path), args.output_name, args.all)
    print(f"Downloaded the outputs of job {args.name} to {target}", file=sys.stderr)
    return None


def register(groups, common) -> None:
    verb = verbs(groups, "job", "run and inspect jobs", common)

    p = verb("create", create, "submit a job from a YAML file")
    p.add_argument("-f", "--file", required=True, help="the job's YAML file")
    p.add_argument("-n", "--name", help="job name (default: generated)")
    p.add_argument("--set", action="append", metavar="PATH=VALUE", help="override a field, e.g. inputs.C=0.8")
    p.add_argument("-s", "--stream", action="store_true", help="follow the job's log until it ends")
    p.add_argument("--web", action="store_true", help="accepted for az ml compatibility")
    p.add_argument("--skip-validation", action="store_true", help="accepted for az ml compatibility")
    for name, handler, help_ in (("show", show, "show a job, with its metrics, params and artifacts"),
                                 ("stream", stream_, "follow a job's log until it ends"),
                                 ("cancel", cancel, "cancel a job and stop its processes")):
        verb(name, handler, help_).add_argument("-n", "--name", required=True)
    p = verb("list", list_, "list jobs, newest first")
    p.add_argument("-p", "--parent-job-name", help="list the child jobs of this job")
    p.add_argument("-r", "--max-results", type=int, default=50)
    p.add_argument("--all-results", action="store_true")
    p.add_argument("--include-archived", action="store_true")
    p = verb("download", download, "download a job's outputs")
    p.add_argument("-n", "--name", required=True)
    p.add_argument("-p", "--download-path", default=".")
    p.add_argument("--output-name", help="a named output (default: the job's artifacts)")
    p.add_argument("--all", action="store_true", help="the artifacts and every named output")
