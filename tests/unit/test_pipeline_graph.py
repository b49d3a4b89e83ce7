"""The pipeline step graph and ``${{parent...}}`` bindings: order, waves, cycles, resolution."""

from __future__ import annotations

import pytest

from emulator.errors import ValidationError
from emulator.pipelines import bindings
from emulator.pipelines.graph import StepGraph

#: prep feeds train and profile; train feeds score; score also reads prep
DIAMOND = {"prep": [], "train": ["prep"], "profile": ["prep"], "score": ["train", "prep"]}


def test_topological_order_puts_every_step_after_its_upstream_steps():
    order = StepGraph(DIAMOND).order()
    assert sorted(order) == sorted(DIAMOND)
    for step, upstream in DIAMOND.items():
        assert all(order.index(u) < order.index(step) for u in upstream)


def test_levels_group_independent_steps_in_declaration_order():
    assert StepGraph(DIAMOND).levels() == [["prep"], ["train", "profile"], ["score"]]
    assert StepGraph({"b": [], "a": [], "c": ["a", "b"]}).levels() == [["b", "a"], ["c"]]


def test_cycle_is_found_and_named_in_data_flow_order():
    graph = StepGraph({"a": ["c"], "b": ["a"], "c": ["b"], "d": []})
    assert graph.find_cycle() == ["a", "b", "c", "a"]
    with pytest.raises(ValidationError) as info:
        graph.order()
    assert "a -> b -> c -> a" in info.value.message


def test_self_loop_is_a_cycle():
    assert StepGraph({"a": ["a"]}).find_cycle() == ["a", "a"]


def test_acyclic_graph_has_no_cycle():
    assert StepGraph(DIAMOND).find_cycle() is None
    StepGraph(DIAMOND).check_acyclic()


def test_downstream_is_transitive():
    graph = StepGraph(DIAMOND)
    assert graph.downstream("prep") == ["train", "profile", "score"]
    assert graph.downstream("train") == ["score"]
    assert graph.downstream("score") == []


def test_ready_steps_wait_for_every_upstream_step():
    graph = StepGraph(DIAMOND)
    assert graph.ready(set(), set()) == ["prep"]
    assert graph.ready({"prep"}, {"prep"}) == ["train", "profile"]
    assert graph.ready({"prep", "train"}, {"prep", "train", "profile"}) == ["score"]
    assert graph.ready({"prep"}, {"prep", "train", "profile"}) == []


def test_unknown_upstream_step_is_refused():
    with pytest.raises(ValueError):
        StepGraph({"a": ["nope"]})


# -- bindings ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, expected",
    [
        ("${{parent.inputs.C}}", bindings.Binding("input", "C")),
        ("${{ parent.inputs.iris_csv }}", bindings.Binding("input", "iris_csv")),
        ("${{parent.outputs.final}}", bindings.Binding("output", "final")),
        ("${{parent.jobs.prep-1.outputs.prepared}}", bindings.Binding("step_output", "prepared", "prep-1")),
    ],
)
def test_parse_binding_forms(text, expected):
    assert bindings.parse(text, "x") == expected
    assert bindings.parse({"path": text, "type": "uri_folder"}, "x") == expected
    assert bindings.parse(str(expected), "x") == expected


@pytest.mark.parametrize("value", [0.5, "plain text", {"type": "uri_file", "path": "./data.csv"}, None])
def test_non_bindings_parse_to_none(value):
    assert bindings.parse(value, "x") is None


@pytest.mark.parametrize("text", ["${{inputs.C}}", "prefix ${{parent.inputs.C}}", "${{parent.jobs.a.inputs.b}}"])
def test_malformed_binding_names_where_and_the_forms(text):
    with pytest.raises(ValidationError) as info:
        bindings.parse(text, "step 'train' input 'C'")
    assert "step 'train' input 'C'" in info.value.message and "${{parent.inputs.<name>}}" in info.value.message


def test_resolve_inputs_replaces_bindings_with_what_they_point_at():
    pipeline_inputs = {
        "C": {"type": "literal", "value": 0.8},
        "data": {"type": "uri_file", "path": "/d/iris.csv", "mode": "ro_mount"},
    }
    resolved = bindings.resolve_inputs(
        {
            "C": "${{parent.inputs.C}}",
            "raw": "${{parent.inputs.data}}",
            "prepared": "${{parent.jobs.prep.outputs.out}}",
            "n": 3,
            "local": {"type": "uri_folder", "path": "/x"},
        },
        pipeline_inputs,
        lambda step, output: f"/jobs/{step}-child/outputs/{output}",
    )
    assert resolved == {
        "C": 0.8,
        "raw": {"type": "uri_file", "path": "/d/iris.csv", "mode": "ro_mount"},
        "prepared": {"type": "uri_folder", "path": "/jobs/prep-child/outputs/out", "mode": "ro_mount"},
        "n": 3,
        "local": {"type": "uri_folder", "path": "/x"},
    }
    assert resolved["raw"] is not pipeline_inputs["data"]  # the pipeline's record is not aliased
