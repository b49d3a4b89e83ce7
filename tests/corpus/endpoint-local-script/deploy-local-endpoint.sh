# Deploys the regression model to a local endpoint (--local), tests it and deletes it, with the
# az ml calls of Azure's local-endpoint script.
set -e

# offline, `az ml` is amlemu
az() { if [ "$1" = ml ]; then shift; fi; amlemu "$@"; }

export ENDPOINT_NAME=endpt-$RANDOM

az ml online-endpoint create --local -n $ENDPOINT_NAME -f endpoint.yml
az ml online-deployment create --local -n blue --endpoint $ENDPOINT_NAME -f blue-deployment.yml

az ml online-endpoint show -n $ENDPOINT_NAME --local

endpoint_status=$(az ml online-endpoint show --local --name $ENDPOINT_NAME --query "provisioning_state" -o tsv)
echo $endpoint_status
if [[ $endpoint_status == "Succeeded" ]]; then
  echo "Endpoint created successfully"
else
  echo "Endpoint creation failed"
  exit 1
fi

deploy_status=$(az ml online-deployment show --local --name blue --endpoint $ENDPOINT_NAME --query "provisioning_state" -o tsv)
echo $deploy_status
if [[ $deploy_status == "Succeeded" ]]; then
  echo "Deployment completed successfully"
else
  echo "Deployment failed"
  exit 1
fi

echo "invoke answer: $(az ml online-endpoint invoke --local --name $ENDPOINT_NAME --request-file ../_shared/model-1/sample-request.json)"

SCORING_URI=$(az ml online-endpoint show --local -n $ENDPOINT_NAME -o tsv --query scoring_uri)
echo "curl answer: $(curl --silent --show-error --fail --request POST "$SCORING_URI" \
  --header 'Content-Type: application/json' --data @../_shared/model-1/sample-request.json)"

az ml online-deployment get-logs --local -n blue --endpoint $ENDPOINT_NAME > deployment-log.txt

az ml online-endpoint delete --local --name $ENDPOINT_NAME --yes
echo "deleted $ENDPOINT_NAME"
