# Deploys the regression model behind a managed online endpoint, tests it and deletes it, with
# the az ml calls (and their global arguments) of Azure's deployment script.
set -e

# offline, `az ml` is amlemu
az() { if [ "$1" = ml ]; then shift; fi; amlemu "$@"; }

export ENDPOINT_NAME=endpt-$RANDOM
# the workspace the calls name with -g/-w (offline: amlemu's own resource group and workspace)
export RESOURCE_GROUP=amlemu
export WORKSPACE=default

az ml online-endpoint create --name $ENDPOINT_NAME -f endpoint.yml -g $RESOURCE_GROUP -w $WORKSPACE --only-show-errors
az ml online-deployment create --name blue --endpoint $ENDPOINT_NAME -f blue-deployment.yml --all-traffic \
  --resource-group $RESOURCE_GROUP --workspace-name $WORKSPACE

az ml online-endpoint show -n $ENDPOINT_NAME

endpoint_status=$(az ml online-endpoint show --name $ENDPOINT_NAME --query "provisioning_state" -o tsv)
echo $endpoint_status
if [[ $endpoint_status == "Succeeded" ]]; then
  echo "Endpoint created successfully"
else
  echo "Endpoint creation failed"
  exit 1
fi

deploy_status=$(az ml online-deployment show --name blue --endpoint $ENDPOINT_NAME --query "provisioning_state" -o tsv)
echo $deploy_status
if [[ $deploy_status == "Succeeded" ]]; then
  echo "Deployment completed successfully"
else
  echo "Deployment failed"
  exit 1
fi

az ml online-endpoint invoke --name $ENDPOINT_NAME --request-file ../_shared/model-1/sample-request.json

az ml online-deployment list --endpoint-name $ENDPOINT_NAME -o table > deployments-table.txt

ENDPOINT_KEY=$(az ml online-endpoint get-credentials -n $ENDPOINT_NAME -o tsv --query primaryKey)
SCORING_URI=$(az ml online-endpoint show -n $ENDPOINT_NAME -o tsv --query scoring_uri)
echo "scoring uri: $SCORING_URI"

echo "curl answer: $(curl --silent --show-error --fail --request POST "$SCORING_URI" \
  --header "Authorization: Bearer $ENDPOINT_KEY" --header 'Content-Type: application/json' \
  --data @../_shared/model-1/sample-request.json)"

echo "without the key: $(curl --silent --output /dev/null --write-out '%{http_code}' --request POST "$SCORING_URI" \
  --header 'Content-Type: application/json' --data @../_shared/model-1/sample-request.json)"

az ml online-deployment get-logs --name blue --endpoint $ENDPOINT_NAME > deployment-log.txt

az ml online-endpoint delete --name $ENDPOINT_NAME --yes --no-wait
echo "deleted $ENDPOINT_NAME"
