"""The call sequence of Azure's "working with data" notebook: a local file as a job input, a job
writing to the default datastore, a registered data asset and a job reading it by its id, then
a job reading back what the second one wrote. Prints a JSON summary."""

import json

from azure.ai.ml import Input, Output, command
from azure.ai.ml.constants import AssetTypes
from azure.ai.ml.entities import Data

import amlemu

ml_client = amlemu.connect()
subscription_id = ml_client.subscription_id
resource_group = ml_client.resource_group_name
workspace = ml_client.workspace_name
summary = {"datastores": sorted(d.name for d in ml_client.datastores.list())}

# reading data in a job
job = command(
    code="./src",
    command="python read_data.py --input_data ${{inputs.input_data}}",
    inputs={"input_data": Input(type=AssetTypes.URI_FILE, path="./sample_data/titanic.csv")},
    environment="AzureML-sklearn-1.5@latest",
    compute="cpu-cluster",
)
returned_job = ml_client.jobs.create_or_update(job)
ml_client.jobs.stream(returned_job.name)
summary["read"] = ml_client.jobs.get(returned_job.name).status

# reading and writing data in a job: the output is a folder on the default datastore
job = command(
    code="./src",
    command="python read_write_data.py --input_data ${{inputs.input_data}} --output_folder ${{outputs.output_folder}}",
    inputs={"input_data": Input(type=AssetTypes.URI_FILE, path="./sample_data/titanic.csv")},
    outputs={
        "output_folder": Output(
            type=AssetTypes.URI_FOLDER,
            path=f"azureml://subscriptions/{subscription_id}/resourcegroups/{resource_group}/workspaces/{workspace}/datastores/workspaceblobstore/paths/",
        )
    },
    environment="AzureML-sklearn-1.5@latest",
    compute="cpu-cluster",
)
returned_job = ml_client.create_or_update(job)
ml_client.jobs.stream(returned_job.name)
summary["read_write"] = ml_client.jobs.get(returned_job.name).status

# a data asset
try:
    registered_data_asset = ml_client.data.get(name="titanic", version="1")
    summary["asset_existed"] = True
except Exception:
    my_data = Data(
        path="./sample_data/titanic.csv",
        type=AssetTypes.URI_FILE,
        description="Titanic Data",
        name="titanic",
        version="1",
    )
    ml_client.data.create_or_update(my_data)
    registered_data_asset = ml_client.data.get(name="titanic", version="1")
    summary["asset_existed"] = False
summary["asset"] = {
    "name": registered_data_asset.name,
    "version": registered_data_asset.version,
    "type": registered_data_asset.type,
    "id": registered_data_asset.id,
    "path": registered_data_asset.path,
}

# consuming the data asset in a job, by its id
job = command(
    code="./src",
    command="python read_data.py --input_data ${{inputs.input_data}}",
    inputs={"input_data": Input(type=AssetTypes.URI_FILE, path=registered_data_asset.id)},
    environment="AzureML-sklearn-1.5@latest",
    compute="cpu-cluster",
)
returned_job = ml_client.create_or_update(job)
ml_client.jobs.stream(returned_job.name)
summary["read_asset"] = ml_client.jobs.get(returned_job.name).status

# what the second job wrote to the datastore, read back as an input
job = command(
    code="./src",
    command="python read_data.py --input_data ${{inputs.input_data}}",
    inputs={
        "input_data": Input(
            type=AssetTypes.URI_FILE, path="azureml://datastores/workspaceblobstore/paths/my_output.csv"
        )
    },
    environment="AzureML-sklearn-1.5@latest",
    compute="cpu-cluster",
)
returned_job = ml_client.create_or_update(job)
ml_client.jobs.stream(returned_job.name)
summary["read_back"] = ml_client.jobs.get(returned_job.name).status
print(json.dumps(summary))
