"""The step graph of a pipeline job: which step feeds which, in what order they can run.

Pure logic, no I/O: the orchestrator asks it which steps are ready and which ones a
failed step stops; validation asks it for a cycle before anything is recorded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from emulator.errors import ValidationError


class StepGraph:
    """Steps and the upstream steps whose outputs each one consumes.

    Args:
        needs: for each step (in declaration order), the steps it takes an output from.
    """

    def __init__(self, needs: Mapping[str, Iterable[str]]):
        self.steps = list(needs)
        self.needs = {step: set(upstream) for step, upstream in needs.items()}
        unknown = {u for upstream in self.needs.values() for u in upstream} - set(self.steps)
        if unknown:
            raise ValueError(f"unknown upstream step(s): {', '.join(sorted(unknown))}")
        self.feeds: dict[str, list[str]] = {step: [] for step in self.steps}
        for step in self.steps:  # declaration order, so walks are deterministic
            for upstream in sorted(self.needs[step], key=self.steps.index):
                self.feeds[upstream].append(step)

    def find_cycle(self) -> list[str] | None:
        """A cycle as the steps along it, first repeated at the end (``a b c a``), or None."""
        state: dict[str, int] = {}  # 1: on the current path, 2: done
        path: list[str] = []

        def visit(step: str) -> list[str] | None:
            state[step] = 1
            path.append(step)
            for nxt in self.feeds[step]:
                if state.get(nxt) == 1:
                    return path[path.index(nxt) :] + [nxt]
                if nxt not in state:
                    found = visit(nxt)
                    if found:
                        return found
            path.pop()
            state[step] = 2
            return None

        for step in self.steps:
            if step not in state:
                found = visit(step)
                if found:
                    return found
        return None

    def check_acyclic(self) -> None:
        """Raise a ValidationError naming the cycle, if there is one."""
        cycle = self.find_cycle()
        if cycle:
            raise ValidationError(
                f"The pipeline's steps form a cycle: {' -> '.join(cycle)} (each step consumes an output "
                "of the one before it). A step can only take outputs of steps that do not depend on it; "
                "break the cycle by removing one of these ${{parent.jobs.<step>.outputs.<output>}} bindings."
            )

    def levels(self) -> list[list[str]]:
        """Steps grouped into waves: each wave needs only earlier waves, so its steps can run at once."""
        self.check_acyclic()
        placed: set[str] = set()
        waves: list[list[str]] = []
        while len(placed) < len(self.steps):
            wave = [s for s in self.steps if s not in placed and self.needs[s] <= placed]
            waves.append(wave)
            placed.update(wave)
        return waves

    def order(self) -> list[str]:
        """A topological order: every step after all the steps it consumes outputs of."""
        return [step for wave in self.levels() for step in wave]

    def downstream(self, step: str) -> list[str]:
        """Every step that depends on ``step``, directly or not, in declaration order."""
        found: set[str] = set()
        stack = list(self.feeds[step])
        while stack:
            nxt = stack.pop()
            if nxt not in found:
                found.add(nxt)
                stack.extend(self.feeds[nxt])
        return [s for s in self.steps if s in found]

    def ready(self, completed: set[str], excluded: set[str]) -> list[str]:
        """Steps not in ``excluded`` (started, or stopped) whose upstream steps have all completed."""
        return [s for s in self.steps if s not in excluded and s not in completed and self.needs[s] <= completed]
