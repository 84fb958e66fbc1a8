import { RuntimeStatusResponse_Status } from '../../../proto/gen/model-runtime';
import { SpiClient, describeEndpoint } from '../loader';
import { Logger } from '../log';

/**
 * Watches the model server beside this instance. When it stops answering (crashed, restarting), the instance reports
 * not ready and gives up its copies so calls go elsewhere; when it answers READY again (a restarted runtime has
 * purged everything), the instance serves again, empty. Liveness is checked with a call that changes nothing:
 * runtimeStatus must not be used while serving, because runtimes purge their models when asked for it.
 */

export interface RuntimeWatchOptions {
  readonly spi: SpiClient;
  readonly log: Logger;
  /** The runtime is gone: drop every local copy (registry included) without asking the runtime. */
  readonly onDown: () => Promise<void>;
  readonly onUp: () => void;
  /** @default 2000 */
  readonly intervalMs?: number;
  /** Consecutive failed checks before the runtime counts as down. @default 2 */
  readonly failuresBeforeDown?: number;
}

export class RuntimeWatch {
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private down = false;
  private checking = false;

  constructor(private readonly o: RuntimeWatchOptions) {}

  /** Whether the runtime answered its last checks. */
  get healthy(): boolean {
    return !this.down;
  }

  start(): void {
    this.timer = setInterval(() => void this.check(), this.o.intervalMs ?? 2_000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  async check(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      if (this.down) {
        // Back from the dead: runtimeStatus makes it purge whatever it holds, which matches the mesh's empty view.
        const status = await this.o.spi.runtimeStatus();
        if (status.status !== RuntimeStatusResponse_Status.READY) throw new Error(`runtime reports ${RuntimeStatusResponse_Status[status.status]}`);
      } else if (!await this.o.spi.answers()) {
        throw new Error('no answer');
      }
      this.failures = 0;
      if (this.down) {
        this.down = false;
        this.o.log.info('model server is back; serving again', { endpoint: describeEndpoint(this.o.spi.endpoint) });
        this.o.onUp();
      }
    } catch (err) {
      this.failures++;
      if (!this.down && this.failures >= (this.o.failuresBeforeDown ?? 2)) {
        this.down = true;
        this.o.log.error('model server is not answering; giving up local copies', { endpoint: describeEndpoint(this.o.spi.endpoint), err: err as Error });
        await this.o.onDown().catch((e: Error) => this.o.log.warn('could not give up local copies', { err: e }));
      }
    } finally {
      this.checking = false;
    }
  }
}
