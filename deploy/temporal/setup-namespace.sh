#!/bin/sh
# One-shot (temporalio/admin-tools), once the server is up: creates the
# namespace and registers the custom search attributes the API sets on runs.
# Safe to re-run: what exists is left alone.
set -eu
: "${TEMPORAL_ADDRESS:?}" # read by the temporal CLI
ns="${TEMPORAL_NAMESPACE:-default}"

# retry <what failed> <command...>: 60 tries, 2 s apart.
retry() {
  what=$1
  shift
  n=0
  until "$@"; do
    n=$((n + 1))
    if [ "$n" -ge 60 ]; then
      echo "setup-namespace: giving up: $what" >&2
      exit 1
    fi
    sleep 2
  done
}

ensure_namespace() {
  temporal operator namespace describe --namespace "$ns" >/dev/null 2>&1 ||
    temporal operator namespace create --namespace "$ns" --retention "${TEMPORAL_RETENTION:-72h}"
}

ensure_attribute() { # <name> <type>
  temporal operator search-attribute list --namespace "$ns" | grep -qw "$1" ||
    temporal operator search-attribute create --namespace "$ns" --name "$1" --type "$2"
}

retry "the Temporal server at $TEMPORAL_ADDRESS is not healthy" temporal operator cluster health
retry "cannot create namespace '$ns'" ensure_namespace
# The same names and types as common/search-attributes.ts (the API also adds any that are missing).
for attribute in AgentModel:Keyword AgentApiKeyId:Keyword AgentTools:KeywordList AgentTotalTokens:Int AgentAwaitingApproval:Bool; do
  retry "cannot register search attribute $attribute" ensure_attribute "${attribute%%:*}" "${attribute#*:}"
done

# Registered is not yet usable: the frontend maps the attributes through its
# namespace cache, refreshed every few seconds, and a run started in between
# fails with "no mapping defined for search attribute". Done means usable.
attributes_usable() {
  temporal workflow count --namespace "$ns" \
    --query "AgentModel = 'x' AND AgentApiKeyId = 'x' AND AgentTools = 'x' AND AgentTotalTokens = 0 AND AgentAwaitingApproval = true" >/dev/null 2>&1
}
retry "the search attributes of namespace '$ns' are registered but not usable" attributes_usable
echo "setup-namespace: namespace '$ns' is ready, with its search attributes"
