/** Memory quantities: parsing Kubernetes quantity strings to bytes and printing bytes back in binary units. */

const SUFFIXES: Record<string, number> = {
  '': 1,
  'k': 1e3,
  'M': 1e6,
  'G': 1e9,
  'T': 1e12,
  'P': 1e15,
  'E': 1e18,
  'Ki': 2 ** 10,
  'Mi': 2 ** 20,
  'Gi': 2 ** 30,
  'Ti': 2 ** 40,
  'Pi': 2 ** 50,
  'Ei': 2 ** 60,
};

/** Bytes in a memory quantity such as `448Mi`, `1Gi`, `1.5G` or `1073741824`; undefined when it is not one. */
export function parseBytes(quantity: string): number | undefined {
  const match = /^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/.exec(quantity.trim());
  if (!match) return undefined;
  return Math.round(Number(match[1]) * SUFFIXES[match[2] ?? '']);
}

/** The largest binary unit that represents `bytes` exactly: 1610612736 → `1536Mi`. */
export function formatBytes(bytes: number): string {
  const whole = Math.round(bytes);
  for (const unit of ['Ei', 'Pi', 'Ti', 'Gi', 'Mi', 'Ki']) {
    if (whole >= SUFFIXES[unit] && whole % SUFFIXES[unit] === 0) return `${whole / SUFFIXES[unit]}${unit}`;
  }
  return `${whole}`;
}
