import { ApiObject } from 'cdk8s';
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';

/** Props of {@link ServiceMonitor}. */
export interface ServiceMonitorProps {
  /** Object name. */
  readonly name: string;
  /** Labels of the object. */
  readonly labels: Readonly<Record<string, string>>;
  /** Labels of the Service to scrape. */
  readonly serviceLabels: Readonly<Record<string, string>>;
  /** Scrape interval. @default "30s" */
  readonly interval?: string;
}

/** A Prometheus operator `ServiceMonitor` that scrapes the mesh's `prometheus` port (2112). */
export class ServiceMonitor extends Construct {
  /** The ServiceMonitor object. */
  public readonly apiObject: ApiObject;

  public constructor(scope: Construct, id: string, props: ServiceMonitorProps) {
    super(scope, id);
    this.apiObject = new ApiObject(this, 'Resource', {
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'ServiceMonitor',
      metadata: { name: props.name, labels: { ...props.labels } },
      spec: {
        selector: { matchLabels: { ...props.serviceLabels } },
        endpoints: [{ port: 'prometheus', scheme: 'http', path: '/metrics', interval: props.interval ?? '30s' }],
      },
    });
  }
}

/**
 * The metrics the dashboard charts: upstream ModelMesh's names, which the mesh keeps, plus its retries. `SEL` selects
 * the mesh's series. An integration test checks every name here against a real mesh's `/metrics`.
 */
const PANELS: ReadonlyArray<{ title: string; expr: string; unit: string }> = [
  { title: 'Inference requests / s', expr: 'sum by (pod) (rate(modelmesh_invoke_model_milliseconds_count{SEL}[5m]))', unit: 'reqps' },
  { title: 'Inference latency p95', expr: 'histogram_quantile(0.95, sum by (le) (rate(modelmesh_invoke_model_milliseconds_bucket{SEL}[5m])))', unit: 'ms' },
  { title: 'Model loads / s', expr: 'sum by (pod) (rate(modelmesh_loadmodel_milliseconds_count{SEL}[5m]))', unit: 'ops' },
  { title: 'Model load time p95', expr: 'histogram_quantile(0.95, sum by (le) (rate(modelmesh_loadmodel_milliseconds_bucket{SEL}[5m])))', unit: 'ms' },
  { title: 'Cache-miss delay p95', expr: 'histogram_quantile(0.95, sum by (le) (rate(modelmesh_cache_miss_milliseconds_bucket{SEL}[5m])))', unit: 'ms' },
  { title: 'Models loaded per pod', expr: 'sum by (pod) (modelmesh_instance_models_total{SEL})', unit: 'short' },
  { title: 'Cache used', expr: 'sum by (pod) (modelmesh_instance_used_bytes{SEL}) / sum by (pod) (modelmesh_instance_capacity_bytes{SEL})', unit: 'percentunit' },
  { title: 'Least recently used age', expr: 'min by (pod) (modelmesh_instance_lru_age_seconds{SEL})', unit: 's' },
  { title: 'Calls / s by status', expr: 'sum by (code) (rate(modelmesh_api_request_milliseconds_count{SEL}[5m]))', unit: 'reqps' },
  { title: 'Retries / s by cause', expr: 'sum by (cause) (rate(modelmesh_request_retries_total{SEL}[5m]))', unit: 'reqps' },
  { title: 'Evictions / s', expr: 'sum by (pod) (rate(modelmesh_age_at_eviction_milliseconds_count{SEL}[5m]))', unit: 'ops' },
  { title: 'Model load failures / s', expr: 'sum by (pod) (rate(modelmesh_loadmodel_failure{SEL}[5m]))', unit: 'ops' },
];

/** The Grafana dashboard JSON for a mesh. */
export function dashboardJson(serviceName: string): string {
  const dashboard = {
    title: `ModelMesh: ${serviceName}`,
    uid: `modelmesh-${serviceName}`.slice(0, 40),
    schemaVersion: 39,
    tags: ['modelmesh'],
    time: { from: 'now-1h', to: 'now' },
    templating: { list: [{ name: 'datasource', type: 'datasource', query: 'prometheus' }] },
    panels: PANELS.map((panel, i) => ({
      id: i + 1,
      type: 'timeseries',
      title: panel.title,
      datasource: { type: 'prometheus', uid: '${datasource}' },
      gridPos: { x: (i % 2) * 12, y: Math.floor(i / 2) * 8, w: 12, h: 8 },
      fieldConfig: { defaults: { unit: panel.unit }, overrides: [] },
      targets: [{ refId: 'A', expr: panel.expr.replace(/\{SEL\}/g, `{service="${serviceName}"}`) }],
    })),
  };
  return JSON.stringify(dashboard, null, 2);
}

/** A ConfigMap with the mesh's Grafana dashboard, labelled for Grafana's dashboard sidecar (`grafana_dashboard: "1"`). */
export function dashboardConfigMap(scope: Construct, id: string, serviceName: string, labels: Readonly<Record<string, string>>): ApiObject {
  return new k8s.KubeConfigMap(scope, id, {
    metadata: { name: `${serviceName}-dashboard`, labels: { ...labels, grafana_dashboard: '1' } },
    data: { 'modelmesh.json': dashboardJson(serviceName) },
  });
}
