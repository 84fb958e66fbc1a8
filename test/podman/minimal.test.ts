import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServiceError, credentials, status } from '@grpc/grpc-js';
import { stringify } from 'yaml';
import { PodmanPlan, planKubePlay } from './kube-play';
import { ensureEtcdImage, ensureRuntimeImage, podman, podmanUnavailable } from './podman';
import { ContainerNames, ObjectNames } from '../../lib/contract';
import { Images } from '../../lib/images';
import { GRPCInferenceServiceClient } from '../../proto/gen/grpc_predict_v2';
import { sampleReference } from '../../scripts/make-sample-onnx';
import type { Container, Secret } from '../e2e/k8s-types';
import { INPUT, SAMPLE, declaredModel, modelInfer, synthesizeMinimal } from '../e2e/minimal-example';
import { S3Emulator, startS3rver } from '../harness/storage-servers';
import { StopWaiting, waitFor, waitForHttp, waitForTcpPort } from '../harness/wait';

/**
 * The podman tier: `podman kube play` of the synthesized `minimal` example with the images built here
 * (`scripts/build-image.sh`, and Debian's etcd under the etcd image's name), on a podman network with static
 * addresses, then a real ONNX inference through the mesh container at the address the `modelmesh-serving` Service's
 * grpc port would give. kube-play.ts lists the adaptations to Podman 4.3 (no StatefulSets, no Services, part of the
 * downward API, no `$(VAR)` expansion, no Secret volumes). The example's MinIO (`http://minio:9000`) is s3rver on
 * the host (reached through the network's gateway), holding the sample model at the declared bucket and path.
 *
 * Runs where podman can (root, podman and runc installed: `.ci/run` installs them); `MM_PODMAN=skip` skips it. The
 * first run builds the image (minutes); later runs rebuild it only when its build context changed.
 */

const NETWORK = 'cdk8s-modelmesh-tier';
const SUBNET = '10.89.77';
const unavailable = podmanUnavailable();
if (unavailable) console.warn(`test/podman skipped: ${unavailable}`);
const tier = unavailable ? describe.skip : describe;

/** Podman 4.3 publishes every declared container port on the host: they must be free. */
async function hostPortTaken(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => done(true));
    server.listen(port, '0.0.0.0', () => server.close(() => done(false)));
  });
}

function probeAddress(container: Container, ip: string): { url?: string; tcp?: number } | undefined {
  const probe = container.readinessProbe;
  if (!probe) return undefined;
  const portOf = (port: number | string) => (typeof port === 'number' ? port : container.ports?.find((p) => p.name === port)?.containerPort);
  if (probe.httpGet) {
    const port = portOf(probe.httpGet.port);
    return { url: `http://${ip}:${port}${probe.httpGet.path ?? '/'}` };
  }
  if (probe.tcpSocket) return { tcp: portOf(probe.tcpSocket.port) };
  throw new Error(`${container.name}: the podman tier polls httpGet and tcpSocket readiness probes only`);
}

tier('podman tier: podman kube play of the synthesized minimal example', () => {
  const objects = synthesizeMinimal();
  const { model, entry } = declaredModel(objects);
  const storage = new URL(entry.endpoint_url);
  const plan: PodmanPlan = planKubePlay(objects, {
    subnet: SUBNET,
    externalHosts: [{ name: storage.hostname, ip: `${SUBNET}.1` }],
  });
  const workDir = mkdtempSync(join(tmpdir(), 'mm-podman-tier-'));
  const playFile = join(workDir, 'minimal.podman.yaml');
  writeFileSync(playFile, plan.objects.map((o) => stringify(o)).join('---\n'));
  const secrets = objects.filter((o): o is Secret => o.kind === 'Secret').map((s) => s.metadata.name);
  const claims = plan.objects.filter((o) => o.kind === 'PersistentVolumeClaim').map((o) => (o.metadata as { name: string }).name);
  let s3: S3Emulator | undefined;

  /** Removes what a run (this one or an interrupted earlier one) left: pods, claims' volumes, secrets, network. */
  async function removeAll(): Promise<void> {
    await podman(['kube', 'down', playFile]).catch(() => undefined);
    for (const pod of plan.pods) await podman(['pod', 'rm', '-f', '-t', '5', pod.name]).catch(() => undefined);
    for (const claim of claims) await podman(['volume', 'rm', '-f', claim]).catch(() => undefined);
    for (const secret of secrets) await podman(['secret', 'rm', secret]).catch(() => undefined);
    await podman(['network', 'rm', '-f', NETWORK]).catch(() => undefined);
  }

  async function containerLogs(): Promise<string> {
    const lines: string[] = [];
    for (const pod of plan.pods) {
      for (const container of pod.containers) {
        const name = `${pod.name}-${container.name}`;
        const log = await podman(['logs', '--tail', '40', name]).catch((err: Error) => err.message);
        lines.push(`--- ${name} ---\n${log}`);
      }
    }
    return lines.join('\n');
  }

  beforeAll(async () => {
    const build = await ensureRuntimeImage(25 * 60_000);
    console.log(build.trim().split('\n').filter((l) => /current|done:|--version/.test(l)).join('\n'));
    await ensureEtcdImage(Images.ETCD);
    for (const pod of plan.pods) {
      for (const container of pod.containers) {
        await podman(['image', 'exists', container.image]).catch(() => {
          throw new Error(`${pod.name}/${container.name}: image ${container.image} is not in podman's storage`);
        });
      }
    }
    await removeAll();
    await podman(['network', 'create', '--subnet', `${SUBNET}.0/24`, '--gateway', plan.gateway, NETWORK]);
    const storagePort = Number(storage.port || 80);
    const ports = plan.pods.flatMap((p) => p.containers.flatMap((c) => (c.ports ?? []).map((port) => port.containerPort)));
    const taken: number[] = [];
    for (const port of [...ports, storagePort]) if (await hostPortTaken(port)) taken.push(port);
    if (taken.length) {
      throw new Error(`the podman tier needs these host ports, in use here: ${taken.join(', ')} (podman kube play 4.3 `
        + `publishes each declared container port; ${storagePort} is the stand-in for ${storage.host})`);
    }
    // On every address: the gateway address exists only once the first pod joins the network.
    s3 = await startS3rver({ address: '0.0.0.0', port: storagePort });
    await s3.createBucket(entry.bucket);
    await s3.put(entry.bucket, model.path, SAMPLE);
  }, 30 * 60_000);

  afterAll(async () => {
    await removeAll();
    await s3?.stop();
    rmSync(workDir, { recursive: true, force: true });
  }, 120_000);

  test('serves the declared model through the mesh container at the Service grpc port', async () => {
    const played = Date.now();
    const ips = plan.pods.flatMap((p) => ['--ip', p.ip]);
    let client: GRPCInferenceServiceClient | undefined;
    try {
      await podman(['kube', 'play', '--network', NETWORK, ...ips, playFile], { timeoutMs: 300_000 });
      const playMs = Date.now() - played;
      for (const pod of plan.pods) {
        for (const container of pod.containers) {
          const probe = probeAddress(container, pod.ip);
          if (!probe) continue;
          const wait = { timeoutMs: 180_000, intervalMs: 500 };
          if (probe.url) await waitForHttp(probe.url, 200, wait);
          else await waitForTcpPort(probe.tcp!, pod.ip, wait);
        }
      }
      const readyMs = Date.now() - played;
      const service = plan.serviceAddress(ObjectNames.SERVICE, 'grpc');
      client = new GRPCInferenceServiceClient(`${service.host}:${service.port}`, credentials.createInsecure());
      const answer = await waitFor(`an inference of ${model.name} through ${service.host}:${service.port}`, async () => {
        try {
          return await modelInfer(client!, model.name, 20_000);
        } catch (err) {
          // The leader applies the catalog a few seconds after it starts; until then the model is unknown.
          if ((err as ServiceError).code === status.NOT_FOUND) throw err;
          throw new StopWaiting(`inference failed: ${(err as Error).message}`);
        }
      }, { timeoutMs: 120_000, intervalMs: 500 });
      const firstInferenceMs = Date.now() - played;
      console.log(`podman tier: kube play returned after ${playMs} ms, every readiness probe passed after ${readyMs} ms, `
        + `first inference through the mesh container after ${firstInferenceMs} ms (all from the start of kube play)`);

      const expected = sampleReference(INPUT);
      const output = answer.outputs[0].contents!.fp32Contents;
      expect(output).toHaveLength(expected.length);
      output.forEach((v, i) => expect(v).toBeCloseTo(expected[i], 5));
      expect(plan.pods.some((p) => p.containers.some((c) => c.name === ContainerNames.MESH))).toBe(true);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n\nadaptations:\n${plan.adaptations.join('\n')}\n\n${await containerLogs()}`);
    } finally {
      client?.close();
    }
  }, 600_000);
});
