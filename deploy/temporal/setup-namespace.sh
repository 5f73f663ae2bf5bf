#!/bin/sh
# One-shot job of the compose file's `temporal-namespace` service (image temporalio/admin-tools),
# run once the Temporal server answers: creates the controller's namespace, sets its retention of
# closed workflows, and registers e2epool's search attributes. The controller starts only once this
# exited 0, and checks the attributes again at start.
#
# Safe on every start: an existing namespace keeps its data and gets the retention set again; an
# attribute that exists with the same type is left alone; one that exists with another type fails
# the job (the controller would refuse to start anyway).
set -eu

: "${TEMPORAL_ADDRESS:?TEMPORAL_ADDRESS (host:port of the frontend) is required}"
NAMESPACE="${E2EPOOL_TEMPORAL_NAMESPACE:-default}"
# Closed workflows are kept as long as the controller keeps checkpoint records
# (E2EPOOL_RETENTION_DAYS, 90 by default), so every record's workflow link still opens.
RETENTION="${TEMPORAL_RETENTION:-90d}"
ATTEMPTS="${SETUP_ATTEMPTS:-60}"
PAUSE="${SETUP_PAUSE_SECONDS:-2}"

# name:type of every search attribute in temporal/search-attributes.ts (a test keeps them equal).
SEARCH_ATTRIBUTES="RunnerId:Keyword JobId:Keyword CheckpointState:Keyword Backend:Keyword NeedsAttention:Bool"

# Runs "$@" until it succeeds, ATTEMPTS times at most: the frontend answers before the namespace
# registry and the search attribute cache have caught up.
retry() {
  n=1
  until "$@"; do
    if [ "$n" -ge "$ATTEMPTS" ]; then
      echo "setup-namespace: gave up after $ATTEMPTS attempts: $*" >&2
      return 1
    fi
    n=$((n + 1))
    sleep "$PAUSE"
  done
}

namespace_exists() {
  temporal operator namespace describe --address "$TEMPORAL_ADDRESS" --namespace "$NAMESPACE" >/dev/null 2>&1
}

create_namespace() {
  namespace_exists || temporal operator namespace create --address "$TEMPORAL_ADDRESS" --namespace "$NAMESPACE" --retention "$RETENTION"
}

set_retention() {
  temporal operator namespace update --address "$TEMPORAL_ADDRESS" --namespace "$NAMESPACE" --retention "$RETENTION"
}

# Fails at once (no retry) when the attribute exists with another type.
create_attribute() {
  if out=$(temporal operator search-attribute create --address "$TEMPORAL_ADDRESS" --namespace "$NAMESPACE" --name "$1" --type "$2" 2>&1); then
    return 0
  fi
  echo "$out" >&2
  case "$out" in
    *"different type"*) echo "setup-namespace: search attribute $1 exists with another type than $2; fix it by hand" >&2; exit 1 ;;
  esac
  return 1
}

echo "setup-namespace: waiting for $TEMPORAL_ADDRESS"
retry temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null
echo "setup-namespace: namespace $NAMESPACE, retention $RETENTION"
retry create_namespace
retry set_retention
for attribute in $SEARCH_ATTRIBUTES; do
  echo "setup-namespace: search attribute ${attribute%%:*} (${attribute#*:})"
  retry create_attribute "${attribute%%:*}" "${attribute#*:}"
done
echo "setup-namespace: done"
