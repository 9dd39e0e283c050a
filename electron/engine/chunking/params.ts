/**
 * Chunking parameters. Cut points are part of the repository format: a repository records its
 * parameters at init and every client must cut identically forever after.
 */
export interface ChunkingParams {
  minSize: number;
  avgSize: number;
  maxSize: number;
}

export const KiB = 1024;
export const MiB = 1024 * KiB;

/** The default profile: per-object cost on S3 makes small chunks expensive. */
export const DEFAULT_PROFILE: ChunkingParams = {
  minSize: 16 * KiB,
  avgSize: 64 * KiB,
  maxSize: 256 * KiB,
};
/** A fine-grained profile: 4/8/64 KiB. */
export const SMALL_PROFILE: ChunkingParams = {
  minSize: 4 * KiB,
  avgSize: 8 * KiB,
  maxSize: 64 * KiB,
};

const MIN_ALLOWED = 64;
const MAX_ALLOWED = 1 << 30;

export class ChunkingParamsError extends Error {
  override name = 'ChunkingParamsError';
}

const isPowerOfTwo = (n: number) => Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;

/** Checks a parameter set up front; throws one clear error naming what is wrong. */
export function validateParams(params: ChunkingParams): ChunkingParams {
  const { minSize, avgSize, maxSize } = params;
  for (const [name, value] of Object.entries({ minSize, avgSize, maxSize })) {
    if (!isPowerOfTwo(value) || value < MIN_ALLOWED || value > MAX_ALLOWED) {
      throw new ChunkingParamsError(
        `chunking ${name} ${value} is not a power of two between ${MIN_ALLOWED} bytes and 1 GiB (try 16KiB/64KiB/256KiB)`,
      );
    }
  }
  if (!(minSize < avgSize && avgSize < maxSize)) {
    throw new ChunkingParamsError(
      `chunking sizes must grow: min ${minSize} < avg ${avgSize} < max ${maxSize} (try 16KiB/64KiB/256KiB)`,
    );
  }
  if (avgSize > 1 << 29)
    throw new ChunkingParamsError(`chunking avgSize ${avgSize} is above 512 MiB`);
  return params;
}

/** Derives the parameters for an average size: min = avg/4, max = avg*4 (the default shape). */
export function profileForAverage(avgSize: number): ChunkingParams {
  return validateParams({ minSize: avgSize / 4, avgSize, maxSize: avgSize * 4 });
}

/** The smallest and largest average sizes profileForAverage accepts (min = avg/4, max = avg*4). */
const AVG_RANGE = { min: MIN_ALLOWED * 4, max: MAX_ALLOWED / 4 };

/**
 * The profile for an average chunk size as a person typed it ("64KiB"): an error names the text
 * as typed, not the sizes derived from it.
 */
export function profileForSize(text: string): ChunkingParams {
  let avgSize: number;
  try {
    avgSize = parseSize(text);
  } catch {
    throw new ChunkingParamsError(`${text.trim()} is not a size (e.g. 16KiB, 64KiB, 1MiB)`);
  }
  if (!isPowerOfTwo(avgSize) || avgSize < AVG_RANGE.min || avgSize > AVG_RANGE.max)
    throw new ChunkingParamsError(
      `${text.trim()} is not a power of two from 256 B to 256 MiB (e.g. 16KiB, 64KiB, 1MiB)`,
    );
  return profileForAverage(avgSize);
}

/** Parses "64KiB", "8k", "1MiB", "65536" into bytes. */
export function parseSize(text: string): number {
  const match = /^\s*(\d+)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?\s*$/i.exec(text);
  if (!match)
    throw new ChunkingParamsError(`cannot read the size "${text}" (examples: 64KiB, 8KiB, 1MiB)`);
  const unit = (match[2] ?? 'b').toLowerCase()[0];
  const scale = unit === 'k' ? KiB : unit === 'm' ? MiB : unit === 'g' ? 1024 * MiB : 1;
  return Number(match[1]) * scale;
}

/**
 * Normalized chunking (level 2): before the average size a cut needs bits+2 zero high bits of the
 * gear hash, after it bits-2, where avg = 2^bits. Returned as the number of high bits.
 */
export function cutBits(params: ChunkingParams): { small: number; large: number } {
  const bits = Math.log2(params.avgSize);
  return { small: bits + 2, large: bits - 2 };
}
