import { readFileSync } from 'node:fs';
import type { Server as HttpServer } from 'node:http';
import { MeshEnv } from '../../../lib/contract';
import { startFrontDoor } from '../api/front-door';
import { managementMethods } from '../api/management-methods';
import { operatorMethods } from '../api/operator-methods';
import { startPrestopServer, startProbeServer } from '../api/probe-server';
import { TlsFiles, clientCredentials, clientOptions, serverOptions } from '../api/tls';
import { LocalCopies } from '../cache/local-copies';
import { LruCache } from '../cache/lru-cache';
import { Cluster, INSTANCES_PREFIX } from '../cluster/cluster';
import { ConfigError, MeshConfig } from '../config';
import { KvMirror, KvStore, LeaderElection, openStore } from '../kv';
import { LoadQueue, RuntimeInfo, SpiClient, describeEndpoint } from '../loader';
import { Logger } from '../log';
import { CatalogReconciler } from './catalog';
import { FailFast } from './fail-fast';
import { LeaderDuties } from './leader';
import { leaveMesh } from './leave';
import { RuntimeWatch } from './runtime-watch';
import { Management } from '../mesh/management';
import { Peers } from '../mesh/peers';
import { Placer } from '../mesh/placer';
import { RateTracker } from '../mesh/rates';
import { Scaler } from '../mesh/scaler';
import { MeshMetrics } from '../metrics/mesh-metrics';
import { startMetricsServer } from '../metrics/server';
import { NO_CONSTRAINTS, parseTypeConstraints } from '../placement';
import { createPuller } from '../puller';
import { loadedCopies, modelCounts } from '../registry/model-state';
import { InstanceRecord, ModelRecord } from '../registry/records';
import { MODELS_PREFIX, Registry, VMODELS_PREFIX } from '../registry/registry';
import { startRestServer } from '../rest';
import { DEFAULT_DATAPLANE_CONFIG, parseDataplaneConfig } from '../router/dataplane-config';
import { Router } from '../router/router';
import { SessionPool } from '../router/sessions';

/**
 * Start-up and shutdown of one mesh instance: wait for the runtime to be READY (it purges leftovers), open the
 * store, mirror the registry and membership, serve the management API, join under a lease, campaign for leader.
 */

/** How long start-up waits for the model server's first READY (upstream: 180 s). */
const RUNTIME_STARTUP_TIMEOUT_MS = 180_000;
const RECONCILE_INTERVAL_MS = 30_000;

/** Reads and parses an optional JSON settings file named by `variable`; errors name the variable and the file. */
function readSettingsFile<T>(variable: string, path: string | undefined, parse: (text: string) => T, fallback: T): T {
  if (!path) return fallback;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(variable, `names a file that cannot be read: ${(err as Error).message}`);
  }
  try {
    return parse(text);
  } catch (err) {
    throw new ConfigError(variable, `file ${path}: ${(err as Error).message}`);
  }
}

/** Time kept back from SHUTDOWN_TIMEOUT_MS for unloading and deregistering after the moves. */
const LEAVE_MARGIN_MS = 2_000;

/** Copies tried per data-plane call before it fails with the last cause. */
const MAX_ATTEMPTS = 4;

export class MeshProcess {
  /** Starts an instance; on any failure everything already started is stopped again before the error is thrown. */
  static async start(config: MeshConfig, log: Logger): Promise<MeshProcess> {
    const mesh = new MeshProcess(config, log);
    try {
      await mesh.run();
    } catch (err) {
      await mesh.close();
      throw err;
    }
    return mesh;
  }

  private ready = false;
  private shuttingDown = false;
  private stopping: Promise<void> | undefined;
  private leaving: Promise<void> | undefined;
  private readonly closers: Array<() => Promise<unknown> | unknown> = [];
  /** Set once running: leaves the mesh (copies deregistered and unloaded). */
  private onLeave: (() => Promise<void>) | undefined;
  /** Set once running, unless the check is off. */
  private failFast: FailFast | undefined;

  private constructor(readonly config: MeshConfig, private readonly log: Logger) {}

  get isReady(): boolean {
    return this.notReadyReason() === undefined;
  }

  /** Why the instance is not ready, or undefined when it is. */
  private notReadyReason(): string | undefined {
    if (!this.ready) return 'starting';
    if (this.shuttingDown) return 'leaving the mesh';
    if (!this.runtimeHealthy()) return 'the model server is not answering';
    const tripped = this.failFast?.tripped;
    return tripped === undefined ? undefined : `start-up fail-fast: ${tripped}`;
  }

  private runtimeHealthy: () => boolean = () => true;

  private async run(): Promise<void> {
    const { config, log } = this;
    const constraints = readSettingsFile(MeshEnv.TYPE_CONSTRAINTS_PATH, config.typeConstraintsPath, parseTypeConstraints, NO_CONSTRAINTS);
    const dataplane = readSettingsFile(MeshEnv.DATAPLANE_CONFIG_PATH, config.dataplaneConfigPath, parseDataplaneConfig, DEFAULT_DATAPLANE_CONFIG);
    const startTime = Date.now();

    const spi = new SpiClient(config.runtimeSpi);
    this.closers.push(() => spi.close());
    log.info('waiting for the model server', { endpoint: describeEndpoint(config.runtimeSpi) });
    const runtime: RuntimeInfo = await spi.waitForReady(RUNTIME_STARTUP_TIMEOUT_MS, (why) => log.debug('model server not ready yet', { why }));
    log.info('model server ready', { capacity: runtime.capacity, maxLoadingConcurrency: runtime.maxLoadingConcurrency, version: runtime.version });

    const store: KvStore = await openStore(config.kvStore, { serviceName: config.serviceName, kvPrefix: config.kvPrefix });
    this.closers.push(() => store.close());
    log.info('store open', { store: store.description });

    const onMalformed = (err: Error) => log.warn('skipping malformed record', { err });
    const registry = new Registry(store, onMalformed);
    const cache = new LruCache(runtime.capacity);
    const queue = new LoadQueue(runtime.maxLoadingConcurrency);
    const tlsFiles = config.tls ? new TlsFiles(config.tls, log) : undefined;
    const tlsConfig = config.tls;
    if (tlsFiles) {
      tlsFiles.start();
      this.closers.push(() => tlsFiles.stop());
    }
    const peers = new Peers(tlsFiles ? () => clientCredentials(tlsFiles.current) : undefined);
    this.closers.push(() => peers.close());
    let leader: LeaderDuties | undefined;
    let router: Router | undefined;
    const rates = new RateTracker();

    const snapshotSelf = (): InstanceRecord => ({
      address: `${config.advertiseAddress}:${config.grpcPort}`,
      capacity: runtime.capacity,
      used: cache.used,
      lruTime: cache.lruTime(),
      copies: cache.size,
      loadsInFlight: queue.inFlight + queue.queued,
      maxLoadingConcurrency: runtime.maxLoadingConcurrency,
      defaultModelSize: runtime.defaultModelSize,
      rpm: rates.total(),
      requestsInFlight: router?.requestsInFlight ?? 0,
      labels: config.labels,
      ...(config.zone ? { zone: config.zone } : {}),
      version: config.version,
      startTime,
      // An instance whose model server is down, or that failed its start-up check, takes no loads or requests either:
      // to placement and routing it is as good as leaving.
      shuttingDown: this.shuttingDown || !this.runtimeHealthy() || this.failFast?.tripped !== undefined,
      updated: Date.now(),
    });
    const cluster = new Cluster(store, config.instanceId, config.leaseTtlSeconds, snapshotSelf, {
      onInstanceGone: (id) => {
        log.info('instance left the mesh', { instanceId: id });
        void leader?.instanceGone(id);
      },
      onPublishError: (err) => log.warn('could not publish instance record', { err }),
      // Copies may have been reaped while the record was gone: put this instance's copies back in the registry.
      onRejoined: () => {
        log.info('instance record restored after the store was unreachable; re-registering local copies');
        void localCopies?.reconcile(2 * config.leaseTtlSeconds * 1000).catch((err: Error) => log.warn('reconcile after rejoin failed', { err }));
      },
      onMalformed,
    });

    if (config.failFastClearanceMs > 0) this.failFast = new FailFast({ clearancePeriodMs: config.failFastClearanceMs, startTime });
    const puller = config.puller ? createPuller({ ...config.puller, log }) : undefined;
    if (puller) {
      log.info('built-in puller on', { ...config.puller });
      await puller.removeAll().catch((err: Error) => {
        throw new ConfigError(MeshEnv.ROOT_MODEL_DIR, `names a folder the puller cannot clear: ${err.message}`);
      });
    }

    let isLeader = false;
    const metrics = config.metrics.enabled ? MeshMetrics.create({
      perModel: config.metrics.perModelMetrics,
      instance: () => ({ capacityBytes: cache.capacity, usedBytes: cache.used, models: cache.size, lruTime: cache.lruTime() }),
      mesh: () => {
        if (!isLeader) return undefined;
        const counts = modelCounts(registry.models.values(), Date.now(), config.loadFailureExpiryMs);
        return { modelsLoaded: counts.loaded, modelsWithFailure: counts.withFailure, modelsManaged: counts.managed };
      },
    }) : MeshMetrics.disabled();

    const placer = new Placer({
      selfId: config.instanceId, cluster, registry, peers, log, constraints: () => constraints, failureExpiryMs: config.loadFailureExpiryMs,
    });
    const localCopies = new LocalCopies({
      selfId: config.instanceId,
      cache,
      spi,
      queue,
      registry,
      runtime,
      log,
      failureExpiryMs: config.loadFailureExpiryMs,
      claimDelayMs: config.loadClaimDelayMs,
      puller,
      metrics,
      onLoadOutcome: (modelId, outcome) => {
        const tripped = this.failFast?.record(outcome, Date.now());
        if (tripped === undefined) return;
        log.error('start-up fail-fast: this instance fails loads that succeed elsewhere and stays not ready; check its version and configuration',
          { reason: tripped, lastModelId: modelId });
        cluster.requestPublish();
      },
      onChanged: () => cluster.requestPublish(),
      chooseRetryTarget: (modelId, record) => placer.chooseRetryTarget(modelId, record),
      dispatch: (instanceId, modelId, priority) => placer.dispatch(instanceId, modelId, priority),
    });
    placer.attach(localCopies);
    const management = new Management({
      registry,
      placer,
      log,
      failureExpiryMs: config.loadFailureExpiryMs,
      defaultVModelOwner: config.defaultVModelOwner,
      syncLoadTimeoutMs: 5 * runtime.loadTimeoutMs,
      syncTransitionTimeoutMs: 4 * 60_000,
    });
    leader = new LeaderDuties({
      registry,
      cluster,
      placer,
      management,
      log,
      failureExpiryMs: config.loadFailureExpiryMs,
      transitionScaleTimeoutMs: 2 * runtime.loadTimeoutMs,
      orphanGraceMs: 2 * config.leaseTtlSeconds * 1000,
      sweepIntervalMs: 30_000,
    });

    // A model unregistered anywhere leaves this instance too.
    registry.models.onChange((modelId, record) => {
      if (!record && cache.has(modelId)) void localCopies.forget(modelId);
    });

    const mirrorError = (err: Error) => log.warn('store watch interrupted; resynchronising', { err });
    // The registry keeps its own decoded records: its mirrors need only each key's revision, not the raw values too.
    const mirrors = [MODELS_PREFIX, VMODELS_PREFIX, INSTANCES_PREFIX]
      .map((prefix) => new KvMirror(store, prefix, { onError: mirrorError, keepEntries: prefix === INSTANCES_PREFIX }));
    this.closers.unshift(() => Promise.all(mirrors.map((m) => m.close())));
    for (const mirror of mirrors) {
      mirror.onChange((key, entry) => {
        registry.models.apply(key, entry, mirror.revision);
        registry.vmodels.apply(key, entry, mirror.revision);
        if (key !== INSTANCES_PREFIX + config.instanceId) cluster.apply(key, entry);
      });
    }
    await Promise.all(mirrors.map((m) => m.ready));
    log.info('registry loaded', { models: registry.models.size, vmodels: registry.vmodels.size, instances: cluster.live().size - 1 });

    const sessions = new SessionPool(tlsFiles ? () => clientOptions(tlsFiles.current) : undefined);
    this.closers.push(() => sessions.close());
    router = new Router({
      selfId: config.instanceId,
      registry,
      cluster,
      localCopies,
      placer,
      sessions,
      runtimeData: config.runtimeData.kind === 'port' ? { kind: 'tcp', host: '127.0.0.1', port: config.runtimeData.port } : { kind: 'socket', path: config.runtimeData.path },
      runtime,
      peerTls: tlsFiles !== undefined,
      dataplane,
      maxMessageSize: config.maxMessageSize,
      defaultTimeoutMs: config.defaultRequestTimeoutMs,
      maxAttempts: MAX_ATTEMPTS,
      failureExpiryMs: config.loadFailureExpiryMs,
      rates,
      maxQueuedPerCopy: config.maxQueuedPerCopy,
      metrics,
      logEachCall: config.logEachInvoke,
      log,
    });
    const election = new LeaderElection(store, config.instanceId, { ttlSeconds: config.leaseTtlSeconds, onError: (err) => log.warn('leader election error', { err }) });
    const frontDoor = await startFrontDoor({
      methods: new Map([
        ...managementMethods({ management, localCopies, isServing: () => this.isReady }),
        ...operatorMethods({
          serviceName: config.serviceName,
          selfId: config.instanceId,
          registry,
          cluster,
          self: snapshotSelf,
          leaderId: () => election.leaderId,
          failureExpiryMs: config.loadFailureExpiryMs,
        }),
      ]),
      dataPlane: router.handle,
      maxMessageSize: config.maxMessageSize,
      idleTimeoutMs: config.idleConnectionTimeoutMs,
      tls: tlsFiles && tlsConfig ? serverOptions(tlsConfig, tlsFiles.current) : undefined,
      log,
    }, '0.0.0.0', config.grpcPort);
    this.closers.unshift(() => frontDoor.close());
    if (tlsFiles && tlsConfig) {
      tlsFiles.onChange((material) => {
        frontDoor.setSecureContext(serverOptions(tlsConfig, material));
        // Calls to peers pick up the new client certificate on their next connection.
        peers.close();
      });
    }
    log.info('front door listening', { port: frontDoor.port });

    if (config.restPort !== 0) {
      // REST calls go through the front door like any client, so they get the same routing, loading and retries.
      const rest = await startRestServer({
        port: config.restPort,
        host: '0.0.0.0',
        grpcTarget: `127.0.0.1:${frontDoor.port}`,
        tls: tlsFiles && tlsConfig ? serverOptions(tlsConfig, tlsFiles.current) : undefined,
        grpcCredentials: tlsFiles ? clientCredentials(tlsFiles.current) : undefined,
        maxBodyBytes: config.maxMessageSize,
        requestTimeoutMs: config.defaultRequestTimeoutMs,
        log,
        isReady: () => this.isReady,
        serverMetadata: { name: 'modelmesh', version: config.version, extensions: [] },
      });
      this.closers.unshift(() => rest.close());
      if (tlsFiles && tlsConfig) tlsFiles.onChange((material) => rest.setSecureContext(serverOptions(tlsConfig, material)));
      log.info('REST listening', { port: rest.port });
    }

    await cluster.join();
    this.closers.unshift(() => cluster.leave());

    const catalog = config.catalogPath
      ? new CatalogReconciler({ path: config.catalogPath, store, management, log, defaultOwner: config.defaultVModelOwner })
      : undefined;
    election.onGained(() => {
      isLeader = true;
      leader?.start();
      catalog?.start();
    });
    election.onLost(() => {
      isLeader = false;
      leader?.stop();
      catalog?.stop();
    });
    this.closers.unshift(() => catalog?.stop());
    this.closers.unshift(async () => {
      leader?.stop();
      await election.resign();
    });
    await election.start();

    const runtimeWatch = new RuntimeWatch({
      spi,
      log,
      onDown: () => localCopies.forgetAll(),
      onUp: () => cluster.requestPublish(),
    });
    this.runtimeHealthy = () => runtimeWatch.healthy;
    runtimeWatch.start();
    this.closers.unshift(() => runtimeWatch.stop());

    const scaler = new Scaler({
      selfId: config.instanceId, registry, cluster, placer, rates, thresholdRpm: config.scaleUpRpmThreshold, log,
    });
    scaler.start();
    this.closers.unshift(() => scaler.stop());

    const reconcile = setInterval(() => {
      localCopies.reconcile(2 * config.leaseTtlSeconds * 1000).catch((err: Error) => log.warn('reconcile failed', { err }));
    }, RECONCILE_INTERVAL_MS);
    reconcile.unref();
    this.closers.unshift(() => clearInterval(reconcile));

    if (config.metrics.enabled) {
      const metricsServer = await startMetricsServer({
        metrics,
        port: config.metrics.port,
        host: '0.0.0.0',
        tls: config.metrics.scheme === 'https' && tlsFiles ? { key: tlsFiles.current.key, cert: tlsFiles.current.cert } : undefined,
        log,
      });
      tlsFiles?.onChange((material) => {
        if ('setSecureContext' in metricsServer) metricsServer.setSecureContext({ key: material.key, cert: material.cert });
      });
      this.closers.unshift(() => closeHttp(metricsServer));
      log.info('metrics listening', { port: config.metrics.port, scheme: config.metrics.scheme });
    }

    const probes = await startProbeServer(config.probePort, '0.0.0.0', () => this.notReadyReason());
    this.closers.unshift(() => closeHttp(probes));
    const prestop = await startPrestopServer(config.prestopPort, '0.0.0.0', () => this.leave('preStop hook'));
    this.closers.unshift(() => closeHttp(prestop));

    this.onLeave = async () => {
      const deadline = Date.now() + Math.max(0, config.shutdownTimeoutMs - LEAVE_MARGIN_MS);
      this.shuttingDown = true;
      localCopies.close();
      queue.close('this instance is leaving the mesh');
      // Others stop placing here as soon as they see the flag; this instance keeps serving its copies meanwhile.
      await cluster.publishNow().catch((err: Error) => log.warn('could not publish leaving state', { err }));
      const self = config.instanceId;
      const elsewhere = (r: ModelRecord | undefined) => r !== undefined && loadedCopies(r).some((i) => i !== self && !cluster.get(i)?.shuttingDown);
      await leaveMesh({
        now: Date.now,
        localCopies: () => cache.list().filter((c) => c.state === 'loaded'),
        loadedElsewhere: (modelId) => elsewhere(registry.models.get(modelId)),
        copyElsewhere: async (modelId) => (await placer.ensureCopy(modelId, { priority: 'background', preferLocal: false, excluded: new Set([self]) })).kind !== 'none',
        waitLoadedElsewhere: async (modelId, until) => {
          const record = await registry.models.waitFor(modelId, (r) => !r || elsewhere(r) || !Object.keys(r.copies).some((i) => i !== self), until,
            `model ${modelId} to load elsewhere`).catch(() => undefined);
          return elsewhere(record);
        },
        unloadLocal: (modelId) => localCopies.drop(modelId, 'this instance is leaving the mesh'),
        log,
      }, { deadline });
      await cluster.leave();
    };
    this.ready = true;
    log.info('instance joined the mesh', { instanceId: config.instanceId, address: snapshotSelf().address });
  }

  /**
   * Leaves the mesh make-before-break: recently used models are loaded elsewhere first, then the local copies are
   * unloaded and the instance record removed. Keeps serving meanwhile. Safe to call more than once.
   */
  leave(reason: string): Promise<void> {
    this.leaving ??= (async () => {
      this.log.info('leaving the mesh', { reason });
      try {
        await this.onLeave?.();
      } catch (err) {
        this.log.warn('error while leaving', { err: err as Error });
      }
      this.log.info('left the mesh');
    })();
    return this.leaving;
  }

  /** Leaves the mesh (if not done yet) and stops everything. Safe to call more than once. */
  stop(reason: string): Promise<void> {
    this.stopping ??= (async () => {
      await this.leave(reason);
      await this.close();
      this.log.info('stopped');
    })();
    return this.stopping;
  }

  private async close(): Promise<void> {
    this.ready = false;
    for (const close of this.closers.splice(0)) {
      try {
        await close();
      } catch (err) {
        this.log.warn('error during shutdown', { err: err as Error });
      }
    }
  }
}

function closeHttp(server: HttpServer): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
