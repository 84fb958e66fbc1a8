/**
 * The key namespace of one mesh: `<root_prefix>/<MM_KVSTORE_PREFIX>/<service>/`, with runs of slashes collapsed so
 * `root_prefix` may or may not end in `/` and an empty part does not leave `//` behind.
 */
export function storeNamespace(rootPrefix: string, kvPrefix: string, serviceName: string): string {
  return `${rootPrefix}/${kvPrefix}/${serviceName}/`.replace(/\/{2,}/g, '/');
}

/** The first key after every key that starts with `prefix` (etcd's range end for a prefix). */
export function prefixRangeEnd(prefix: Buffer): Buffer {
  for (let i = prefix.length - 1; i >= 0; i--) {
    if (prefix[i] < 0xff) {
      const end = Buffer.from(prefix.subarray(0, i + 1));
      end[i]++;
      return end;
    }
  }
  // An empty (or all-0xff) prefix covers every key: etcd spells "to the end" as a single zero byte.
  return Buffer.from([0]);
}
