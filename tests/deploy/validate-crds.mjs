// Validates the chart's custom resources against their CRDs' OpenAPI schemas (Gateway API
// HTTPRoute and GRPCRoute, Prometheus Operator ServiceMonitor), as kubernetes-models carries
// them: kubernetes-validate knows only Kubernetes' own kinds.
//   node validate-crds.mjs rendered-custom-resources.json
import { readFileSync } from 'node:fs';
import { HTTPRoute } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute';
import { GRPCRoute } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/GRPCRoute';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';

const models = {
  'gateway.networking.k8s.io/v1 HTTPRoute': HTTPRoute,
  'gateway.networking.k8s.io/v1 GRPCRoute': GRPCRoute,
  'monitoring.coreos.com/v1 ServiceMonitor': ServiceMonitor,
};
const resources = JSON.parse(readFileSync(process.argv[2], 'utf8'));
let failed = false;
for (const { source, resource } of resources) {
  const key = `${resource.apiVersion} ${resource.kind}`;
  const Model = models[key];
  if (!Model) {
    console.error(`${source}: no schema for ${key}`);
    failed = true;
    continue;
  }
  try {
    new Model(resource).validate();
    console.log(`valid: ${source} ${key} ${resource.metadata.name}`);
  } catch (error) {
    console.error(`INVALID: ${source} ${key}: ${error.message}`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
