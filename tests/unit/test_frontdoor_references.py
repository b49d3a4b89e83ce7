"""The front door's one parser of the references a client names assets and resources by
(:func:`emulator.frontdoor.resources.parse_reference`)."""

from __future__ import annotations

import pytest

from emulator.errors import NotEmulated, ValidationError
from emulator.frontdoor.resources import ArmReference, is_arm_id, parse_reference

WORKSPACE = (
    "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/my-rg"
    "/providers/Microsoft.MachineLearningServices/workspaces/ws1"
)


def test_arm_id_of_a_version():
    found = parse_reference(f"{WORKSPACE}/models/iris/versions/3", ("models",), workspace="ws1")
    assert found == ArmReference(
        kind="models",
        name="iris",
        version="3",
        workspace="ws1",
        subscription="00000000-1111-2222-3333-444444444444",
        resource_group="my-rg",
    )
    assert found.short == "azureml:iris:3"


def test_arm_id_with_the_azureml_prefix_a_label_or_neither():
    assert parse_reference(f"azureml:{WORKSPACE}/data/d/labels/latest", ("data",)).short == "azureml:d@latest"
    compute = parse_reference(f"{WORKSPACE}/computes/cpu-cluster", ("computes",))
    assert (compute.kind, compute.name, compute.version, compute.label) == ("computes", "cpu-cluster", None, None)
    assert parse_reference(f"{WORKSPACE}/environments/env/", ("environments",)).short == "azureml:env@latest"


def test_case_blind_arm_spelling_and_kind():
    """ARM ids are case-blind (the SDK writes ``resourcegroups`` in places); the kind comes back as asked."""
    lower = WORKSPACE.replace("resourceGroups", "resourcegroups").replace("Microsoft.M", "microsoft.m")
    found = parse_reference(f"{lower}/Models/iris/versions/1", ("models",), workspace="ws1")
    assert (found.kind, found.name, found.version, found.resource_group) == ("models", "iris", "1", "my-rg")
    assert is_arm_id(f"AZUREML:{lower}/models/iris/versions/1")


def test_short_forms():
    assert parse_reference("azureml:iris:2", ("models",)) == ArmReference("models", "iris", version="2")
    label = parse_reference("azureml:AzureML-sklearn-1.5@latest", ("environments",))
    assert (label.name, label.label, label.workspace) == ("AzureML-sklearn-1.5", "latest", None)
    assert parse_reference("azureml:d:1", ("data", "models")).kind is None  # several kinds asked: not known
    assert not is_arm_id("azureml:iris:2") and not is_arm_id("./src") and not is_arm_id(None)


def test_registry_form_only_where_asked():
    ref = "azureml://registries/azureml/environments/AzureML-sklearn-1.5/versions/12"
    found = parse_reference(ref, ("environments",), registries=True)
    assert (found.registry, found.name, found.version) == ("azureml", "AzureML-sklearn-1.5", "12")
    assert found.workspace is None
    with pytest.raises(NotEmulated, match="registry 'azureml'"):
        parse_reference(ref, ("environments",))


def test_another_workspace_is_refused_naming_it():
    with pytest.raises(ValidationError) as refused:
        parse_reference(
            f"{WORKSPACE.replace('ws1', 'someone-else')}/models/iris/versions/1",
            ("models",),
            workspace="ws1",
            field="'properties.model'",
        )
    message = refused.value.message
    assert refused.value.status == 400
    assert "'properties.model'" in message and "someone-else" in message and "iris" in message and "ws1" in message
    # a workspace differing only in case is another folder here: refused too
    with pytest.raises(ValidationError, match="WS1"):
        parse_reference(f"{WORKSPACE.replace('ws1', 'WS1')}/models/iris/versions/1", ("models",), workspace="ws1")
    # short forms name the request's own workspace
    assert parse_reference("azureml:iris:1", ("models",), workspace="ws1").workspace is None


@pytest.mark.parametrize(
    "value",
    [
        f"{WORKSPACE}/models/../versions/1",
        f"{WORKSPACE}/models/..%2f..%2fetc/versions/1",
        f"{WORKSPACE}/codes/src/versions/..",
        f"{WORKSPACE}/data/d/labels/.hidden",
        "azureml:..:1",
        "azureml:iris:..",
        "azureml://registries/r/models/../versions/1",
    ],
)
def test_names_that_could_become_paths_are_refused(value):
    with pytest.raises(ValidationError, match="is invalid: Azure ML takes"):
        parse_reference(value, ("models", "codes", "data"), registries=True)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "is not a reference to a model"),
        (None, "is not a reference to a model"),
        (42, "is not a reference to a model"),
        ("iris:1", "is not a reference to a model"),
        ("azureml:iris", "is not a reference to a model"),
        ("azureml://datastores/workspaceblobstore/paths/x", "is not a reference to a model"),
        ("/subscriptions/s/resourceGroups/rg/workspaces/ws1/models/iris/versions/1", "is not a reference to a model"),
        (f"{WORKSPACE}/models/iris/versions/1/extra", "is not a reference to a model"),
        (f"{WORKSPACE}/environments/env/versions/1", "names environments, not a model"),
    ],
)
def test_garbage_is_refused_with_the_forms_to_write(value, problem):
    with pytest.raises(ValidationError) as refused:
        parse_reference(value, ("models",), field="The job's model")
    message = refused.value.message
    assert message.startswith("The job's model") and problem in message
    assert "azureml:<name>:<version>" in message and "/models/<name>/versions/<version>" in message


def test_a_long_value_is_cut_short_in_the_message():
    with pytest.raises(ValidationError) as refused:
        parse_reference("x" * 10_000, ("models",))
    assert len(refused.value.message) < 800 and "(10000 characters)" in refused.value.message


def test_compute_names_follow_one_of_the_compute_rules():
    assert parse_reference(f"{WORKSPACE}/computes/ab", ("computes",)).name == "ab"  # a cluster may be 2 long
    with pytest.raises(ValidationError, match="compute name 'gpu_1' is invalid"):
        parse_reference(f"{WORKSPACE}/computes/gpu_1", ("computes",))
