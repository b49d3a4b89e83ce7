"""The dataset data plane (``/data/v1.0/...``): where the data outputs run history names are.

``ml_client.jobs.download`` reads a run's outputs from run history (``rundata``, :mod:`.history`) as asset
ids, then asks ``dataversion/batchGetResolvedUris`` for the storage URI of each and downloads the blobs under
it. An output's URI is Azure's place for it (:func:`.jobstorage.output_place`): the datastore path it was
given, else ``azureml/<job>/<output>/`` in the default datastore, which the blob service serves from the
job's folder. Only these ids are resolved here; the rest of the data plane answers NotEmulated.
"""

from __future__ import annotations

from flask import Blueprint

from emulator import errors
from emulator.frontdoor import assets, jobstorage, resources

blueprint = Blueprint("dataplane", __name__)
blueprint.url_value_preprocessor(resources.take_scope)

DATA_PLANE = f"/data/v1.0{resources.WORKSPACE}"


@blueprint.post(f"{DATA_PLANE}/dataversion/batchGetResolvedUris")
def batch_get_resolved_uris():
    """``get_batch_dataset_uris``: ``{"values": [id, ...]}`` answered ``{"values": {id: {"uri", "type"}}}``."""
    from azure.ai.ml._restclient.dataset_dataplane.models import (
        BatchDataUriResponse,
        BatchGetResolvedURIs,
        DataUriV2Response,
    )

    asked = BatchGetResolvedURIs(resources.body()).values_property
    if not isinstance(asked, list) or not all(isinstance(i, str) for i in asked):
        raise errors.ValidationError('The body of batchGetResolvedUris must be {"values": [<asset id>, ...]}.')
    store = resources.backend().store
    resolved = {}
    for asset_id in asked:
        found = jobstorage.output_of_asset_id(store, asset_id)
        if found is None:
            raise errors.ResourceNotFound(
                f"Data '{asset_id}' is not a data output of a job in workspace '{store.name}': amlemu's data plane "
                "resolves the output ids run history gives (POST .../rundata), only."
            )
        record, output = found
        place = jobstorage.output_place(store, record, output)
        kind = jobstorage.data_outputs(record)[output]
        given = record["spec"]["outputs"][output].get("path")
        folder = not (kind == "uri_file" and given)  # a uri_file output at a datastore path is that file
        resolved[asset_id] = DataUriV2Response(uri=assets.long_uri(place, folder=folder), type=kind)
    return resources.answer(BatchDataUriResponse(values_property=resolved))
