// A vendored, typed subset of the Kubernetes API (core/v1, apps/v1) for the fields deploy/kubernetes uses: strict
// objects, so a misspelt or misplaced field fails as the API server's strict field validation would. Offline.
import { z } from 'zod';

const quantityPort = z.union([z.number().int().min(1).max(65535), z.string().regex(/^[a-z0-9-]{1,15}$/)]);
const objectMeta = z.strictObject({ name: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/).max(253), namespace: z.string().optional(), labels: z.record(z.string(), z.string()).optional(), annotations: z.record(z.string(), z.string()).optional() });
const httpGet = z.strictObject({ path: z.string().startsWith('/'), port: quantityPort, scheme: z.enum(['HTTP', 'HTTPS']).optional() });
const execAction = z.strictObject({ command: z.array(z.string()).min(1) });
const probe = z.strictObject({ httpGet: httpGet.optional(), exec: execAction.optional(), initialDelaySeconds: z.number().int().min(0).optional(), periodSeconds: z.number().int().min(1).optional(), timeoutSeconds: z.number().int().min(1).optional(), failureThreshold: z.number().int().min(1).optional(), successThreshold: z.number().int().min(1).optional() });
const handler = z.strictObject({ httpGet: httpGet.optional(), exec: execAction.optional(), sleep: z.strictObject({ seconds: z.number().int() }).optional() });
const containerPort = z.strictObject({ name: z.string().max(15).optional(), containerPort: z.number().int().min(1).max(65535), protocol: z.enum(['TCP', 'UDP', 'SCTP']).optional() });
const securityContext = z.strictObject({
  runAsUser: z.number().int().min(0).optional(),
  runAsGroup: z.number().int().min(0).optional(),
  runAsNonRoot: z.boolean().optional(),
  readOnlyRootFilesystem: z.boolean().optional(),
  allowPrivilegeEscalation: z.boolean().optional(),
  privileged: z.boolean().optional(),
  capabilities: z.strictObject({ add: z.array(z.string()).optional(), drop: z.array(z.string()).optional() }).optional(),
});
export const container = z.strictObject({
  name: z.string(),
  image: z.string(),
  command: z.array(z.string()).optional(),
  args: z.array(z.string()).optional(),
  restartPolicy: z.literal('Always').optional(),
  ports: z.array(containerPort).optional(),
  env: z.array(z.strictObject({ name: z.string(), value: z.string() })).optional(),
  startupProbe: probe.optional(),
  readinessProbe: probe.optional(),
  livenessProbe: probe.optional(),
  lifecycle: z.strictObject({ preStop: handler.optional(), postStart: handler.optional() }).optional(),
  securityContext: securityContext.optional(),
  volumeMounts: z.array(z.strictObject({ name: z.string(), mountPath: z.string().startsWith('/'), readOnly: z.boolean().optional(), subPath: z.string().optional() })).optional(),
});
export type Container = z.infer<typeof container>;
const volume = z.strictObject({ name: z.string(), configMap: z.strictObject({ name: z.string() }).optional(), secret: z.strictObject({ secretName: z.string() }).optional(), emptyDir: z.strictObject({}).optional() });
export const podSpec = z.strictObject({ terminationGracePeriodSeconds: z.number().int().min(0).optional(), initContainers: z.array(container).optional(), containers: z.array(container).min(1), volumes: z.array(volume).optional(), serviceAccountName: z.string().optional() });
export const deployment = z.strictObject({
  apiVersion: z.literal('apps/v1'),
  kind: z.literal('Deployment'),
  metadata: objectMeta,
  spec: z.strictObject({ replicas: z.number().int().min(0).optional(), selector: z.strictObject({ matchLabels: z.record(z.string(), z.string()) }), template: z.strictObject({ metadata: objectMeta.partial(), spec: podSpec }) }),
});
export const configMap = z.strictObject({ apiVersion: z.literal('v1'), kind: z.literal('ConfigMap'), metadata: objectMeta, data: z.record(z.string(), z.string()) });
export const secret = z.strictObject({ apiVersion: z.literal('v1'), kind: z.literal('Secret'), metadata: objectMeta, type: z.string().optional(), data: z.record(z.string(), z.string()).optional(), stringData: z.record(z.string(), z.string()).optional() });
export const byKind = { Deployment: deployment, ConfigMap: configMap, Secret: secret } as const;
