"""One interpreter for all the python blocks of a guide page, as a reader pasting them into one session.

Started by ``sessions.PythonSession``: reads one JSON request per line on stdin, runs the block in a shared
namespace with fds 1 and 2 sent to the block's output file (so the output of child processes is kept too), and
answers ``{"exit": code}`` on the fd named by argv[1]. Before each block it takes the environment and folder the
page's last bash block left (``eval "$(amlemu env)"`` in a bash block reaches the python blocks after it).
"""

import json
import os
import sys
import traceback


def _adopt_shell_state(env_file: str | None, cwd: str) -> None:
    if env_file and os.path.exists(env_file):
        with open(env_file, "rb") as f:
            pairs = [item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item]
        os.environ.clear()
        os.environ.update({k.decode(): v.decode() for k, v in pairs})
    os.chdir(cwd)


def _run(source: str, name: str, namespace: dict) -> int:
    try:
        exec(compile(source, name, "exec"), namespace)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


def main() -> None:
    replies = os.fdopen(int(sys.argv[1]), "w", buffering=1)
    namespace: dict = {"__name__": "__main__"}
    for line in sys.stdin:
        request = json.loads(line)
        _adopt_shell_state(request.get("env_file"), request["cwd"])
        with open(request["source"]) as f:
            source = f.read()
        out = os.open(request["output"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        saved = os.dup(1), os.dup(2)
        os.dup2(out, 1)
        os.dup2(out, 2)
        try:
            code = _run(source, request["name"], namespace)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in (out, *saved):
                os.close(fd)
        replies.write(json.dumps({"exit": code}) + "\n")


if __name__ == "__main__":
    main()
