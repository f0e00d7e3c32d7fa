#!/bin/sh
# Label and taint GPU nodes the way the training pipeline's defaults expect. Usage: label-gpu-nodes.sh NODE...
set -eu
if [ "$#" -eq 0 ]; then
  echo "usage: $0 NODE [NODE...]  (list nodes with: kubectl get nodes)" >&2
  exit 2
fi
for node in "$@"; do
  kubectl label node "$node" nvidia.com/gpu.present=true --overwrite
  kubectl taint node "$node" nvidia.com/gpu=present:NoSchedule --overwrite
done
