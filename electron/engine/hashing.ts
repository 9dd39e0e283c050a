import { createHash } from 'node:crypto';

/**
 * Content addresses. sha256 runs on node:crypto (hardware SHA extensions where the CPU has them;
 * it doubles as S3's ChecksumSHA256); blake3 on hash-wasm, the better choice where SHA
 * extensions are absent. Chosen per repository at init and recorded in its config.
 */
export const HASH_ALGORITHMS = ['sha256', 'blake3'] as const;
export type HashAlgorithm = (typeof HASH_ALGORITHMS)[number];

/**
 * Hashes bytes to lowercase hex: one buffer, or pieces hashed as if they were one (a chunk that
 * spans two read blocks is hashed where it lies, without a copy). Synchronous: call it off the
 * main thread for big work.
 */
export type HashFn = (data: Uint8Array | readonly Uint8Array[]) => string;

export async function createHasher(algorithm: HashAlgorithm): Promise<HashFn> {
  switch (algorithm) {
    case 'sha256':
      return (data) => {
        const hash = createHash('sha256');
        if (data instanceof Uint8Array) return hash.update(data).digest('hex');
        for (const piece of data) hash.update(piece);
        return hash.digest('hex');
      };
    case 'blake3': {
      // Loaded only when asked for: most repositories hash with sha256.
      const { createBLAKE3 } = await import('hash-wasm');
      const blake3 = await createBLAKE3();
      return (data) => {
        const hash = blake3.init();
        if (data instanceof Uint8Array) return hash.update(data).digest('hex');
        for (const piece of data) hash.update(piece);
        return hash.digest('hex');
      };
    }
  }
}

const HEX64 = /^[0-9a-f]{64}$/;

/** Both algorithms give 256-bit digests: 64 lowercase hex characters. */
export function isHashHex(value: unknown): value is string {
  return typeof value === 'string' && HEX64.test(value);
}
