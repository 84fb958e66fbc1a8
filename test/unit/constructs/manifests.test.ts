import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Chart, Testing } from 'cdk8s';
import { k8s } from 'cdk8s-plus-28';
import { parseAllDocuments } from 'yaml';
import { allProblems, manifestProblems } from './manifests';
import { ArgoApplicationChart } from '../../../constructs-examples/gitops';
import { synthExamples } from '../../../constructs-examples/main';
import { MinimalChart } from '../../../constructs-examples/minimal';
import { ProductionChart } from '../../../constructs-examples/production';
import { EtcdConnection, ModelMesh, Runtimes, Storage } from '../../../lib';

function everyRuntimeChart(): Chart {
  const chart = Testing.chart();
  const mesh = new ModelMesh(chart, 'mesh', {
    etcd: EtcdConnection.external({ endpoints: ['https://etcd.infra:2379'], tls: { clientSecretName: 'etcd-client' } }),
    storage: { models: Storage.pvc({ claimName: 'model-store' }), gcs: Storage.gcs({ bucket: 'b' }), blob: Storage.azure({ accountName: 'a', container: 'c' }) },
    tls: { secretName: 'mesh-tls', clientAuth: 'require' },
    rest: false,
    metrics: false,
  });
  for (const runtime of [Runtimes.triton(), Runtimes.mlserver(), Runtimes.ovms(), Runtimes.torchserve(), Runtimes.onnx(),
    Runtimes.example({ storageHelper: false })]) {
    mesh.addRuntime(runtime);
  }
  mesh.addRuntime(Runtimes.custom({
    name: 'unix-runtime',
    containers: [{
      name: 'server',
      image: 'example/server:1',
      resources: { requests: { cpu: k8s.Quantity.fromString('100m'), memory: k8s.Quantity.fromString('256Mi') }, limits: { memory: k8s.Quantity.fromString('256Mi') } },
    }],
    supportedModelFormats: [{ name: 'custom', autoSelect: true }],
    grpcEndpoint: 'unix:/var/run/runtime/spi.sock',
  }));
  return chart;
}

const EXAMPLES: Array<[string, () => Chart]> = [
  ['minimal example', () => new MinimalChart(Testing.app(), 'platform')],
  ['production example', () => new ProductionChart(Testing.app(), 'platform')],
  ['gitops Argo CD application', () => new ArgoApplicationChart(Testing.app(), 'argocd', { repoUrl: 'https://git.example.com/x.git', path: 'dist/gitops/platform' })],
  ['mesh with every runtime, external etcd, TLS and PVC storage', everyRuntimeChart],
];

describe('offline validation of synthesized objects', () => {
  test.each(EXAMPLES)('%s: Kubernetes 1.28 / CRD schemas and the restricted Pod Security Standard', (_name, build) => {
    const objects = Testing.synth(build());
    expect(objects.length).toBeGreaterThan(0);
    expect(allProblems(objects)).toEqual([]);
  });

  test('the validators reject what they must', () => {
    const [deployment] = Testing.synth(new MinimalChart(Testing.app(), 'p')).filter((o) => o.kind === 'Deployment');
    const mm = deployment.spec.template.spec.containers.find((c: any) => c.name === 'mm');
    mm.bogusField = true;
    mm.securityContext.allowPrivilegeEscalation = true;
    deployment.spec.template.spec.hostNetwork = true;
    deployment.spec.template.spec.volumes.push({ name: 'host', hostPath: { path: '/' } });
    deployment.spec.replicas = 'two';
    const problems = manifestProblems(deployment).join('\n');
    expect(problems).toMatch(/containers\/\d+ must NOT have additional properties: bogusField/);
    expect(problems).toMatch(/replicas must be number/);
    expect(problems).toMatch(/container mm: allowPrivilegeEscalation must be false/);
    expect(problems).toMatch(/pod: hostNetwork must not be true/);
    expect(problems).toMatch(/volume host: type hostPath is not allowed/);

    const [runtime] = Testing.synth(new MinimalChart(Testing.app(), 'p')).filter((o) => o.kind === 'ServingRuntime');
    runtime.spec.multiModel = 'yes';
    runtime.spec.unknownThing = 1;
    const crdProblems = manifestProblems(runtime).join('\n');
    expect(crdProblems).toMatch(/multiModel must be boolean/);
    expect(crdProblems).toMatch(/must NOT have additional properties: unknownThing/);

    const [certificate] = Testing.synth(new ProductionChart(Testing.app(), 'p')).filter((o) => o.kind === 'Certificate');
    certificate.spec.usages.push('server-auth');
    certificate.spec.issuerRef.namespace = 'cert-manager';
    certificate.spec.keySize = 2048;
    delete certificate.spec.secretName;
    const certificateProblems = manifestProblems(certificate).join('\n');
    expect(certificateProblems).toMatch(/\/spec must have required property 'secretName'/);
    expect(certificateProblems).toMatch(/\/spec must NOT have additional properties: keySize/);
    expect(certificateProblems).toMatch(/\/spec\/issuerRef must NOT have additional properties: namespace/);
    expect(certificateProblems).toMatch(/\/spec\/usages\/\d+ must be equal to one of the allowed values/);

    expect(manifestProblems({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } })).toEqual(['Widget/w: example.com/v1/Widget: no schema to validate against']);
    expect(manifestProblems({ apiVersion: 'monitoring.coreos.com/v1', kind: 'ServiceMonitor', metadata: { name: 's' }, spec: { selector: {}, endpoints: [{ port: 5 }], extra: 1 } }).join('\n'))
      .toMatch(/port must be string[\s\S]*unknown field extra/);
  });
});

describe('deterministic synthesis', () => {
  function synthTo(): Map<string, string> {
    const dir = mkdtempSync(join(tmpdir(), 'mm-synth-'));
    try {
      synthExamples(dir);
      const files = new Map<string, string>();
      const walk = (folder: string) => {
        for (const entry of readdirSync(folder, { withFileTypes: true })) {
          const path = join(folder, entry.name);
          if (entry.isDirectory()) walk(path);
          else files.set(path.slice(dir.length), readFileSync(path, 'utf8'));
        }
      };
      walk(dir);
      return files;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  test('two runs of the examples write byte-identical files', () => {
    const first = synthTo();
    const second = synthTo();
    expect([...first.keys()].sort()).toEqual(['/gitops/argocd/argocd-application.k8s.yaml', '/gitops/platform/platform.k8s.yaml',
      '/minimal/platform.k8s.yaml', '/production/platform.k8s.yaml']);
    for (const [file, text] of first) expect(second.get(file)).toBe(text);
    for (const text of first.values()) {
      for (const doc of parseAllDocuments(text)) expect(doc.errors).toEqual([]);
    }
  });
});
