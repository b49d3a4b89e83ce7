"""``amlemu job create|show|list|stream|cancel|download``: the parsers; the backend's verbs do the work."""

from __future__ import annotations

from emulator.cli.common import verbs


def register(groups, common) -> None:
    verb = verbs(groups, "job", "run and inspect jobs", common)

    p = verb("create", "submit a job from a YAML file")
    p.add_argument("-f", "--file", required=True, help="the job's YAML file")
    p.add_argument("-n", "--name", help="job name (default: generated)")
    p.add_argument("--set", action="append", metavar="PATH=VALUE", help="override a field, e.g. inputs.C=0.8")
    p.add_argument("-s", "--stream", action="store_true", help="follow the job's log until it ends")
    p.add_argument("--web", action="store_true", help="accepted for az ml compatibility")
    p.add_argument("--skip-validation", action="store_true", help="accepted for az ml compatibility")
    for name, help_ in (
        ("show", "show a job, with its metrics, params and artifacts"),
        ("stream", "follow a job's log until it ends"),
        ("cancel", "cancel a job and stop its processes"),
    ):
        verb(name, help_).add_argument("-n", "--name", required=True)
    p = verb("list", "list jobs, newest first")
    p.add_argument("-p", "--parent-job-name", help="list the child jobs of this job")
    p.add_argument("-r", "--max-results", type=int, default=50)
    p.add_argument("--all-results", action="store_true")
    p.add_argument("--include-archived", action="store_true")
    p = verb("download", "download a job's outputs")
    p.add_argument("-n", "--name", required=True)
    p.add_argument("-p", "--download-path", default=".")
    p.add_argument("--output-name", help="a named output (default: the job's artifacts)")
    p.add_argument("--all", action="store_true", help="the artifacts and every named output")
