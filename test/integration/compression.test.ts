import { mkdir, open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { push } from '../../electron/engine/ingest/push';
import { gc } from '../../electron/engine/integrity/gc';
import { repairPacks } from '../../electron/engine/integrity/repair-packs';
import { verify } from '../../electron/engine/integrity/verify';
import { CONFIG_KEY } from '../../electron/engine/repository/format';
import { Repository, type OpenOptions } from '../../electron/engine/repository/repository';
import { restore } from '../../electron/engine/restore/restore';
import { ENCODING_NONE } from '../../electron/engine/storage/packs/encodings';
import type { PackedStore } from '../../electron/engine/storage/packs/packed-store';
import { ChunkHashPool } from '../../electron/engine/workers/pool';
import { buildSafetensors, type TensorSpec } from '../fixtures/safetensors';
import { S3Server } from '../harness/s3';
import { seededBytes } from '../unit/prng';
import { s3Options, tempDir } from './stores';
import { tv } from './tv';

/** Weights as trained models hold them: normal values with a small spread, not random bytes. */
const checkpoint = (dtype: TensorSpec['dtype'], seed: number, elements = 200_000) =>
  buildSafetensors([
    { name: 'w1', dtype, shape: [elements / 2], seed, values: 'normal' },
    { name: 'w2', dtype, shape: [elements / 2], seed: seed + 1, values: 'normal' },
  ]);

let s3: S3Server;
let pool: ChunkHashPool;
let n = 0;
beforeAll(async () => {
  s3 = await S3Server.start();
  pool = new ChunkHashPool(2);
});
afterAll(async () => {
  await pool.close();
  await s3.stop();
});
const disposers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (disposers.length > 0) await disposers.pop()!();
});

const workFolder = async () => {
  const dir = await tempDir('tv-compression-');
  disposers.push(dir.remove);
  return dir.path;
};

/** Writes the files into a folder and pushes them, as files on disk (chunked in segments). */
const pushFiles = async (repo: Repository, dir: string, files: Record<string, Uint8Array>) => {
  const sources = [];
  for (const [name, data] of Object.entries(files)) {
    const file = join(dir, `${n++}-${name}`);
    await writeFile(file, data);
    sources.push({ path: name, size: data.length, file });
  }
  return push(repo, { model: 'm', files: sources, pool, segmentBytes: 256 * 1024 });
};

const restoresExactly = async (
  repo: Repository,
  dir: string,
  selector: string,
  files: Record<string, Uint8Array>,
) => {
  const dest = join(dir, `out-${n++}`);
  await restore(repo, await repo.resolve(selector), dest, { pool });
  for (const [name, data] of Object.entries(files))
    expect((await readFile(join(dest, name))).equals(Buffer.from(data)), name).toBe(true);
};

/** Every record the index holds: its encoding, stored length and length. */
const records = async (repo: Repository) => {
  const packs = repo.stack.packs as PackedStore;
  await packs.sync.sync({ full: true });
  const hashes = [...packs.catalog.records()].map((r) => packs.catalog.objects.hashHex(r));
  return (await packs.locateMany(hashes)).filter((w) => w !== undefined);
};

/** Reopens the repository with its config saying this compression (another client's setting). */
const setCompression = async (repo: Repository, options: OpenOptions, scheme: string) => {
  const config = { ...repo.config, compression: scheme };
  await repo.stack.blobs.put(CONFIG_KEY, Buffer.from(JSON.stringify(config)));
  await repo.close();
  const reopened = await Repository.open(options);
  disposers.push(() => reopened.close());
  return reopened;
};

describe('compressed chunks in packs', () => {
  for (const scheme of ['lz4', 'zstd'] as const)
    it(`${scheme}: float checkpoints take fewer bytes, random ones are stored as they are, and all restore exactly`, async () => {
      const dir = await workFolder();
      const repo = await Repository.init({ repository: join(dir, 'repo'), compression: scheme });
      disposers.push(() => repo.close());
      expect(repo.info().compression).toBe(scheme);
      const files = {
        'bf16.safetensors': checkpoint('BF16', 1),
        'f16.safetensors': checkpoint('F16', 3),
        'f32.safetensors': checkpoint('F32', 5),
      };
      const result = await pushFiles(repo, dir, files);
      expect(result.storedBytes).toBeLessThan(result.newBytes * 0.95);
      const random = { 'random.bin': seededBytes(9, 700_000) };
      const second = await pushFiles(repo, dir, random);
      expect(second.storedBytes).toBe(second.newBytes);
      const stored = await records(repo);
      expect(stored.some((w) => w.encoding !== ENCODING_NONE)).toBe(true);
      for (const w of stored)
        if (w.encoding !== ENCODING_NONE) expect(w.storedLength).toBeLessThan(w.length);
      await restoresExactly(repo, dir, 'm@v1', files);
      await restoresExactly(repo, dir, 'm@v2', random);
      expect((await verify(repo, { full: true })).ok).toBe(true);
    });

  for (const where of ['folder', 'S3'] as const)
    it(`a repository with mixed encodings (none, lz4, zstd) restores every version exactly (${where}); gc copies compressed chunks as they are`, async () => {
      const dir = await workFolder();
      const options: OpenOptions =
        where === 'folder'
          ? { repository: join(dir, 'repo') }
          : {
              repository: `s3://${s3.bucket}/mixed-${n++}`,
              s3: s3Options(s3),
              cacheDir: join(dir, 'cache'),
            };
      let repo = await Repository.init({ ...options, packSize: 256 * 1024 });
      disposers.push(() => repo.close());
      const v1 = { 'a.safetensors': checkpoint('BF16', 11) };
      await pushFiles(repo, dir, v1);
      repo = await setCompression(repo, options, 'lz4');
      const v2 = { ...v1, 'b.safetensors': checkpoint('F32', 13) };
      await pushFiles(repo, dir, v2);
      repo = await setCompression(repo, options, 'zstd');
      const v3 = { ...v2, 'c.safetensors': checkpoint('F16', 15) };
      await pushFiles(repo, dir, v3);
      const encodings = new Set((await records(repo)).map((w) => w.encoding));
      expect(encodings.has(0)).toBe(true);
      expect([1, 2, 3].some((e) => encodings.has(e))).toBe(true);
      expect([4, 5, 6].some((e) => encodings.has(e))).toBe(true);
      // A client that knows nothing of the setting (a fresh one, with no local copy) reads all.
      const fresh = await Repository.open({ ...options, cacheDir: join(dir, 'cache-fresh') });
      disposers.push(() => fresh.close());
      await restoresExactly(fresh, dir, 'm@v1', v1);
      await restoresExactly(fresh, dir, 'm@v2', v2);
      await restoresExactly(fresh, dir, 'm@v3', v3);
      // v2 removed and v1's chunks dropped from packs: gc rewrites them, keeping encodings.
      const before = (await records(repo)).filter((w) => w.encoding !== ENCODING_NONE).length;
      await repo.remove('m@v1');
      await repo.remove('m@v2');
      await gc(repo, { graceSeconds: 0 });
      await gc(repo, { graceSeconds: 0, repackBelowPercent: 100 });
      const after = await records(repo);
      expect(after.filter((w) => w.encoding !== ENCODING_NONE).length).toBeGreaterThan(0);
      expect(after.filter((w) => w.encoding !== ENCODING_NONE).length).toBeLessThanOrEqual(before);
      await restoresExactly(repo, dir, 'm@v3', v3);
      expect((await verify(repo, { full: true })).ok).toBe(true);
    });

  it('a corrupt compressed chunk fails the hash check after decoding, naming its pack and offset', async () => {
    const dir = await workFolder();
    const repo = await Repository.init({ repository: join(dir, 'repo'), compression: 'lz4' });
    disposers.push(() => repo.close());
    const files = { 'w.safetensors': checkpoint('BF16', 21) };
    await pushFiles(repo, dir, files);
    const encoded = (await records(repo)).filter((w) => w.encoding !== ENCODING_NONE);
    expect(encoded.length).toBeGreaterThan(1);
    const damage = async (at: number, file: string) => {
      const handle = await open(file, 'r+');
      const byte = Buffer.alloc(1);
      await handle.read(byte, 0, 1, at);
      byte[0] = byte[0]! ^ 0x5a;
      await handle.write(byte, 0, 1, at);
      await handle.close();
    };
    // The last stored byte is a literal of the LZ4 block: the chunk still decodes, to other bytes.
    const first = encoded[0]!;
    await damage(first.offset + first.storedLength - 1, first.file!);
    const fails = restore(repo, await repo.resolve('m@v1'), join(dir, 'out'), { pool });
    await expect(fails).rejects.toThrow(
      new RegExp(
        `is corrupt: its content, decoded from pack ${first.key} at offset ${first.offset}, hashes to [0-9a-f]{64}`,
      ),
    );
    // Damage in the block's first token (after the 4-byte length): the bytes no longer decode
    // to the chunk, or not at all.
    await damage(first.offset + first.storedLength - 1, first.file!);
    const second = encoded[1]!;
    await damage(second.offset + 4, second.file!);
    const undecodable = restore(repo, await repo.resolve('m@v1'), join(dir, 'out2'), { pool });
    await expect(undecodable).rejects.toThrow(`pack ${second.key} at offset ${second.offset}`);
    // verify --full counts it corrupt (not missing): its stored bytes are there, damaged.
    const checked = await verify(repo, { full: true });
    expect(checked.ok).toBe(false);
    expect(checked.damaged.map((d) => d.problem)).toEqual(['corrupt']);
    // repair packs decodes each copy as its record says: it drops that one, and only that one.
    const mended = await repairPacks(repo);
    expect(mended.dropped).toMatchObject([{ hash: checked.damaged[0]!.hash, intactCopy: false }]);
  });

  it('tv: init --compression, push --json with storedBytes beside newBytes, the text says what it saved, report too; a bad scheme is refused', async () => {
    const dir = await workFolder();
    const env = { TV_REPO: join(dir, 'repo') };
    const bad = await tv(['init', '--compression', 'gzip'], env);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("argument 'gzip' is invalid. Allowed choices are none, lz4, zstd");
    const init = await tv(['init', '--compression', 'zstd', '--json'], env);
    expect(JSON.parse(init.stdout)).toMatchObject({ compression: 'zstd', format: 3 });
    const src = join(dir, 'src');
    await mkdir(src);
    await writeFile(join(src, 'w.safetensors'), checkpoint('BF16', 31));
    const pushed = await tv(['push', 'm', src, '--json'], env);
    const result = JSON.parse(pushed.stdout) as { newBytes: number; storedBytes: number };
    expect(result.storedBytes).toBeGreaterThan(0);
    expect(result.storedBytes).toBeLessThan(result.newBytes * 0.9);
    await writeFile(join(src, 'w2.safetensors'), checkpoint('BF16', 33));
    const text = await tv(['push', 'm', src], env);
    expect(text.stdout).toMatch(
      /new [\d.]+ KiB in \d+ of \d+ chunks \(stored [\d.]+ KiB compressed\)/,
    );
    const report = JSON.parse((await tv(['report', 'm@v1', '--json'], env)).stdout) as {
      storedBytes: number;
    };
    expect(report.storedBytes).toBe(result.storedBytes);
  });
});
