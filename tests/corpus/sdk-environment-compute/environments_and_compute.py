"""The call sequences of Azure's environment and compute notebooks: custom environments from an
image, a Docker build context and an image plus a conda file; compute instances created, stopped,
started, restarted and deleted; compute clusters created and deleted. Prints a JSON summary."""

import datetime
import json

from azure.ai.ml.entities import AmlCompute, BuildContext, ComputeInstance, Environment

import amlemu

ml_client = amlemu.connect()
summary = {}

# --- environments
env_docker_image = Environment(
    image="pytorch/pytorch:latest",
    name="docker-image-example",
    description="Environment created from a Docker image.",
)
created = ml_client.environments.create_or_update(env_docker_image)
summary["docker_image"] = {"version": created.version, "image": created.image}

env_docker_context = Environment(
    build=BuildContext(path="docker-contexts/python-and-pip"),
    name="docker-context-example",
    description="Environment created from a Docker context.",
)
created = ml_client.environments.create_or_update(env_docker_context)
summary["docker_context"] = {"version": created.version, "has_build": created.build is not None}

env_docker_conda = Environment(
    image="mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04",
    conda_file="conda-yamls/pydata.yml",
    name="docker-image-plus-conda-example",
    description="Environment created from a Docker image plus Conda environment.",
)
ml_client.environments.create_or_update(env_docker_conda)
fetched = ml_client.environments.get(name="docker-image-plus-conda-example", version="1")
summary["docker_conda"] = {
    "description": fetched.description,
    "image": fetched.image,
    "conda_dependencies": fetched.conda_file["dependencies"],
}
summary["environment_names"] = sorted({e.name for e in ml_client.environments.list()})

# --- compute instances
stamp = datetime.datetime.now().strftime("%Y%m%d%H%M")
ci_minimal_name = "min-ci" + stamp
ci_minimal = ComputeInstance(name=ci_minimal_name)
ml_client.begin_create_or_update(ci_minimal).result()

ci_basic_name = "basic-ci" + stamp
ci_basic = ComputeInstance(name=ci_basic_name, size="STANDARD_DS3_v2")
ml_client.begin_create_or_update(ci_basic).result()

states = [ml_client.compute.get(ci_basic_name).state]
ml_client.compute.begin_stop(ci_basic_name).wait()
states.append(ml_client.compute.get(ci_basic_name).state)
ml_client.compute.begin_start(ci_basic_name).wait()
states.append(ml_client.compute.get(ci_basic_name).state)
ml_client.compute.begin_restart(ci_basic_name).wait()
states.append(ml_client.compute.get(ci_basic_name).state)
summary["instance_states"] = states
summary["instance_size"] = ml_client.compute.get(ci_basic_name).size

ml_client.compute.begin_delete(ci_minimal_name).wait()
ml_client.compute.begin_delete(ci_basic_name).wait()

# --- compute clusters
cluster_basic = AmlCompute(
    name="basic-example",
    type="amlcompute",
    size="STANDARD_DS3_v2",
    location="westus",
    min_instances=0,
    max_instances=2,
    idle_time_before_scale_down=120,
)
ml_client.begin_create_or_update(cluster_basic).result()
cluster_low_pri = AmlCompute(
    name="low-pri-example",
    size="STANDARD_DS3_v2",
    min_instances=0,
    max_instances=2,
    idle_time_before_scale_down=120,
    tier="low_priority",
)
ml_client.begin_create_or_update(cluster_low_pri).result()
basic = ml_client.compute.get("basic-example")
low = ml_client.compute.get("low-pri-example")
summary["clusters"] = {
    c.name: {
        "type": c.type,
        "size": c.size,
        "location": c.location,
        "tier": c.tier,
        "min_instances": c.min_instances,
        "max_instances": c.max_instances,
        "idle_time_before_scale_down": c.idle_time_before_scale_down,
    }
    for c in (basic, low)
}
ml_client.compute.begin_delete(cluster_basic.name).wait()
ml_client.compute.begin_delete(cluster_low_pri.name).wait()
summary["computes_left"] = [c.name for c in ml_client.compute.list()]
print(json.dumps(summary))
