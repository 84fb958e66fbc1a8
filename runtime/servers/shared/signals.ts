/**
 * `received` resolves with the name of the first of `signals`. The handlers are removed then (or on `dispose`), so
 * a second signal during a slow shutdown gets Node's default behaviour and ends the process at once.
 */
export function firstSignal(signals: readonly NodeJS.Signals[]): { received: Promise<string>; dispose: () => void } {
  let handler: (signal: NodeJS.Signals) => void = () => undefined;
  const dispose = () => { for (const s of signals) process.removeListener(s, handler); };
  const received = new Promise<string>((resolve) => {
    handler = (signal) => {
      dispose();
      resolve(signal);
    };
    for (const s of signals) process.on(s, handler);
  });
  return { received, dispose };
}
