import { createHash } from 'node:crypto';
import { mkdir, open, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { cutPoints } from '../../electron/engine/chunking/stream';
import { Repository } from '../../electron/engine/repository/repository';
import { Service } from '../../electron/engine/service';
import { ChunkHashPool } from '../../electron/engine/workers/pool';
import { objectKey } from '../../electron/engine/storage/store';
import { PackedStore } from '../../electron/engine/storage/packs/packed-store';
import { RedisServer } from '../harness/redis';
import { S3Server } from '../harness/s3';
import { checkpointSpec, fineTune, tensorBytes, writeSafetensors } from '../fixtures/safetensors';
import { seededBytes } from '../unit/prng';
import { s3Options, startServers, type TestServers } from './stores';

let servers: TestServers;
let redis: RedisServer;
let s3: S3Server;
let work: TestServers['work'];
beforeAll(async () => {
  servers = await startServers('tv-push-');
  ({ redis, s3, work } = servers);
});
afterAll(() => servers?.stop());

let n = 0;
const fresh = (name: string) => join(work.path, `${name}-${++n}`);

type Backend = 'local' | 's3+redis';
/** A client of a new repository, or of the one at `location`. */
function service(backend: Backend, location?: string): Service {
  return backend === 'local'
    ? new Service({
        repository: location ?? fresh('repo'),
        redisUrl: undefined,
        mode: 'cli',
        workers: 2,
      })
    : new Service({
        repository: location ?? `s3://${s3.bucket}/repo-${++n}`,
        redisUrl: redis.url,
        s3: s3Options(s3),
        mode: 'cli',
        workers: 2,
      });
}

async function sameTree(a: string, b: string): Promise<void> {
  const list = async (root: string, dir = root): Promise<string[]> => {
    const out: string[] = [];
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const full = join(dir, e.name);
      if (e.isDirectory()) out.push(...(await list(root, full)));
      else out.push(full.slice(root.length + 1));
    }
    return out.sort();
  };
  const [left, right] = await Promise.all([list(a), list(b)]);
  expect(right).toEqual(left);
  for (const file of left) {
    const [x, y] = await Promise.all([readFile(join(a, file)), readFile(join(b, file))]);
    expect(y.equals(x), file).toBe(true);
  }
}

for (const backend of ['local', 's3+redis'] as Backend[]) {
  describe(`push then pull (${backend})`, () => {
    it('is byte-identical for edge sizes, unicode and spaced names, nested folders', async () => {
      const src = fresh('src');
      await mkdir(join(src, 'nested/deeper/ünï côdé'), { recursive: true });
      const files: Record<string, Uint8Array> = {
        empty: new Uint8Array(0),
        'one byte': seededBytes(1, 1),
        'min.bin': seededBytes(2, 16 * 1024),
        'avg.bin': seededBytes(3, 64 * 1024),
        'max.bin': seededBytes(4, 256 * 1024),
        'max+1.bin': seededBytes(5, 256 * 1024 + 1),
        'nested/deeper/ünï côdé/模型 weights.safetensors': seededBytes(6, 3_000_000),
        'nested/config.json': new TextEncoder().encode('{"hidden": 4096}\n'),
      };
      for (const [path, data] of Object.entries(files)) await writeFile(join(src, path), data);
      const svc = service(backend);
      try {
        const pushed = await svc.push({ model: 'edge', paths: [src], message: 'edge cases' });
        expect(pushed).toMatchObject({
          model: 'edge',
          version: 'v1',
          files: 8,
          createdRepository: true,
        });
        expect(pushed.newBytes + pushed.reusedBytes).toBe(pushed.logicalBytes);
        const dest = fresh('dest');
        const pulled = await svc.pull('edge@v1', dest);
        expect(pulled.files).toBe(8);
        await sameTree(src, dest);
        const log = await svc.log('edge');
        expect(log.map((v) => [v.label, v.message])).toEqual([['v1', 'edge cases']]);
      } finally {
        await svc.close();
      }
    });

    it('many files and a file of many batches pull byte-identical, with progress to the last byte', async () => {
      const src = fresh('many');
      await mkdir(join(src, 'shards'), { recursive: true });
      // More files than a restore writes at once, and one cut into several write tasks.
      for (let i = 0; i < 30; i++)
        await writeFile(join(src, 'shards', `part-${i}.bin`), seededBytes(100 + i, 1 + i * 7919));
      await writeFile(join(src, 'big.bin'), seededBytes(99, 13_000_000));
      // A chunk repeated within a file, and files that share chunks.
      const repeated = seededBytes(98, 300_000);
      await writeFile(join(src, 'twice.bin'), Buffer.concat([repeated, repeated, repeated]));
      await writeFile(join(src, 'twice-copy.bin'), Buffer.concat([repeated, repeated]));
      const svc = service(backend);
      try {
        await svc.push({ model: 'many', paths: [src] });
        const dest = fresh('many-out');
        const seen: number[] = [];
        const pulled = await svc.pull('many', dest, {
          onProgress: (p) => seen.push(p.bytesWritten),
        });
        expect(pulled.files).toBe(33);
        await sameTree(src, dest);
        expect(seen.at(-1)).toBe(pulled.bytes);
        expect(seen).toEqual([...seen].sort((x, y) => x - y));
      } finally {
        await svc.close();
      }
    });

    it('a fine-tuned checkpoint with a rewritten header stores little more than the changed tensors', async () => {
      const src = fresh('ckpt');
      await mkdir(src);
      const base = checkpointSpec(4, 512);
      await writeSafetensors(join(src, 'model.safetensors'), base);
      await writeFile(join(src, 'config.json'), '{"layers": 4}');
      const svc = service(backend);
      try {
        const v1 = await svc.push({ model: 'ckpt', paths: [src] });
        const changed = [
          'model.layers.1.self_attn.q_proj.weight',
          'model.layers.3.mlp.up_proj.weight',
        ];
        const tuned = fineTune(base, changed);
        await writeSafetensors(join(src, 'model.safetensors'), tuned, {
          step: '1000',
          note: 'header rewritten',
        });
        const v2 = await svc.push({ model: 'ckpt', paths: [src], message: 'fine-tune' });
        const changedBytes = tuned
          .filter((t) => changed.includes(t.name))
          .reduce((s, t) => s + tensorBytes(t), 0);
        expect(v2.newBytes + v2.reusedBytes).toBe(v2.logicalBytes);
        // Each changed region (two tensors, the header) costs at most a chunk on either side.
        expect(v2.newBytes).toBeGreaterThanOrEqual(changedBytes);
        expect(v2.newBytes).toBeLessThanOrEqual(changedBytes + 3 * 2 * 256 * 1024);
        expect(v2.reusedFromParentBytes).toBe(v2.reusedBytes);
        expect(v2.logicalBytes / v2.newBytes).toBeGreaterThan(3);
        expect(v1.version).toBe('v1');
        expect(v2.version).toBe('v2');
        const dest = fresh('ckpt-out');
        await svc.pull(`ckpt@${v1.shortId}`, dest);
        expect((await readFile(join(dest, 'model.safetensors'))).length).toBe(v1.logicalBytes - 13);
      } finally {
        await svc.close();
      }
    });
  });
}

describe('two clients of one repository', () => {
  for (const backend of ['local', 's3+redis'] as Backend[]) {
    it(`a push chunks while the model is listed, guided by the version its client listed last; the parent is the latest one (${backend})`, async () => {
      const src = fresh('hint');
      await mkdir(src);
      const file = join(src, 'weights.bin');
      const v1 = seededBytes(71, 3_000_000);
      await writeFile(file, v1);
      const alice = service(backend);
      let bob: Service | undefined;
      const run = vi.spyOn(ChunkHashPool.prototype, 'run');
      try {
        await alice.push({ model: 'hint', paths: [src] });
        bob = service(backend, (await alice.repository()).location);
        // Bob pushes v2 (a rewrite near the start); Alice last listed v1.
        const v2 = Buffer.from(v1);
        v2.set(seededBytes(72, 4096), 100_000);
        await writeFile(file, v2);
        const second = await bob.push({ model: 'hint', paths: [src] });
        // v3 keeps Bob's rewrite and adds one near the end.
        const v3 = Buffer.from(v2);
        v3.set(seededBytes(73, 4096), 2_800_000);
        await writeFile(file, v3);
        // Alice's listing answers only once her workers are chunking (or after 5 s).
        run.mockClear();
        let chunkingBeforeListing = false;
        const latestVersion = Repository.prototype.latestVersion;
        const listed = vi
          .spyOn(Repository.prototype, 'latestVersion')
          .mockImplementationOnce(async function (this: Repository, model: string) {
            const until = Date.now() + 5000;
            while (run.mock.calls.length === 0 && Date.now() < until) await setTimeout(5);
            chunkingBeforeListing = run.mock.calls.length > 0;
            return latestVersion.call(this, model);
          });
        const third = await alice.push({ model: 'hint', paths: [src] });
        listed.mockRestore();
        expect(chunkingBeforeListing).toBe(true);
        expect(third.version).toBe('v3');
        const repo = await alice.repository();
        const latest = (await repo.versions('hint')).at(-1)!;
        expect(latest.record.parent).toBe(second.id);
        // Every reused byte counts as the parent's: the parent is v2, which holds Bob's rewrite.
        expect(third.reusedFromParentBytes).toBe(third.reusedBytes);
        expect(third.newBytes).toBeLessThanOrEqual(3 * 256 * 1024);
        const manifest = await repo.readManifest(latest.record.files[0]!.manifest);
        const cuts = cutPoints(v3, repo.chunking);
        expect(manifest.chunks.map((c) => c.length)).toEqual(
          cuts.map((end, i) => end - (cuts[i - 1] ?? 0)),
        );
      } finally {
        run.mockRestore();
        await Promise.all([alice.close(), bob?.close()]);
      }
    });
  }
});

describe('version numbers across workstations', () => {
  for (const backend of ['local', 's3+redis'] as Backend[]) {
    it(`a version published while another push stores its objects: each push reports the number the log shows (${backend})`, async () => {
      const alice = service(backend);
      const src = fresh('numbers');
      await mkdir(src);
      await writeFile(join(src, 'model.bin'), seededBytes(81, 200_000));
      let bob: Service | undefined;
      try {
        const first = await alice.push({ model: 'n', paths: [src] });
        bob = service(backend, (await alice.repository()).location);
        const [aliceRepo, bobRepo] = await Promise.all([alice.repository(), bob.repository()]);
        const record = (await aliceRepo.resolve('n@v1')).record;
        // Alice's push lists the model's refs, then waits for its objects; meanwhile Bob's
        // version lands.
        let release!: () => void;
        const stored = new Promise<void>((r) => (release = r));
        const listing = vi.spyOn(aliceRepo, 'refs');
        const publishing = aliceRepo.publish({ ...record, message: 'alice' }, stored);
        await listing.mock.results[0]!.value;
        listing.mockRestore();
        const bobs = await bobRepo.publish({ ...record, message: 'bob' });
        release();
        const alices = await publishing;
        expect([first.version, `v${bobs.number}`, `v${alices.number}`]).toEqual(['v1', 'v2', 'v3']);
        const log = await bob.log('n');
        expect(log.map((v) => [v.label, v.id])).toEqual([
          ['v1', first.id],
          ['v2', bobs.id],
          ['v3', alices.id],
        ]);
      } finally {
        await Promise.all([alice.close(), bob?.close()]);
      }
    });
  }

  it('a workstation whose clock runs an hour behind: its push and tag move come after what is there, and no number changes', async () => {
    const ws = service('local');
    const src = fresh('late-clock');
    await mkdir(src);
    try {
      const ids: string[] = [];
      for (const seed of [91, 92]) {
        await writeFile(join(src, 'model.bin'), seededBytes(seed, 100_000));
        ids.push((await ws.push({ model: 'late', paths: [src] })).id);
      }
      await ws.tag('late@v1', 'prod');
      vi.useFakeTimers({ toFake: ['Date'], now: Date.now() - 3_600_000 });
      await writeFile(join(src, 'model.bin'), seededBytes(93, 100_000));
      const late = await ws.push({ model: 'late', paths: [src] });
      ids.push(late.id);
      expect(late.version).toBe('v3');
      await ws.tag('late@v3', 'prod');
      vi.useRealTimers();
      const log = await ws.log('late');
      expect(log.map((v) => [v.label, v.id])).toEqual(ids.map((id, i) => [`v${i + 1}`, id]));
      expect((await ws.tags('late')).map((t) => [t.name, t.version])).toEqual([['prod', 'v3']]);
    } finally {
      vi.useRealTimers();
      await ws.close();
    }
  });
});

describe('a model of many versions', () => {
  it('a push and a pull read only the records they need: an old record gone breaks neither', async () => {
    const client = service('local');
    const src = fresh('many');
    await mkdir(src);
    try {
      for (let v = 1; v <= 3; v++) {
        await writeFile(join(src, 'model.bin'), seededBytes(90 + v, 100_000));
        await client.push({ model: 'm', paths: [src] });
      }
      const repo = await client.repository();
      const v1 = await repo.resolve('m@v1');
      await client.close();
      // v1's record is lost (a damaged disk): its version cannot be read, the others can.
      await rm(repo.stack.blobs.localPath!(objectKey(v1.id)));

      const later = service('local', repo.location);
      try {
        await writeFile(join(src, 'model.bin'), seededBytes(99, 100_000));
        expect((await later.push({ model: 'm', paths: [src] })).version).toBe('v4');
        const dest = fresh('many-out');
        await later.pull('m@v3', dest);
        expect(
          (await readFile(join(dest, 'model.bin'))).equals(Buffer.from(seededBytes(93, 100_000))),
        ).toBe(true);
        await later.pull('m', fresh('many-latest'));
        await expect(later.pull('m@v1', fresh('many-v1'))).rejects.toThrow(/version record/);
      } finally {
        await later.close();
      }
    } finally {
      await client.close();
    }
  });
});

describe('a fresh location', () => {
  it('a push racing a listing (the page loads as a browser upload starts) creates the repository', async () => {
    const svc = service('local');
    try {
      // Asserted (so handled) at once: it opens without creating...
      const listingFails = expect(svc.models()).rejects.toThrow(/no TensorVault repository/);
      const uploading = svc.uploadPush('race-1', 'race', '', [{ path: 'a.bin', size: 5 }]);
      const body = (async function* () {
        yield new Uint8Array([1, 2, 3, 4, 5]);
      })();
      await svc.acceptUpload('race-1', 0, body);
      await listingFails;
      expect((await uploading).version).toBe('v1');
      expect((await svc.models()).map((m) => m.name)).toEqual(['race']);
    } finally {
      await svc.close();
    }
  });
});

describe('large files', () => {
  it('a file chunked in segments on two workers, then edited and chunked with its parent as the guide, is cut as one pass cuts it', async () => {
    const src = fresh('seg');
    await mkdir(src);
    const file = join(src, 'weights.bin');
    const v1 = seededBytes(61, 80 * 2 ** 20); // over 64 MiB: cut in segments
    await writeFile(file, v1);
    const svc = service('local');
    try {
      await svc.push({ model: 'seg', paths: [src] });
      const v2 = Buffer.from(v1);
      v2.set(seededBytes(62, 4096), 40 * 2 ** 20 + 17); // a rewrite near a segment's start
      const edited = Buffer.concat([v2.subarray(0, 1000), Buffer.alloc(100, 7), v2.subarray(1000)]);
      await writeFile(file, edited);
      const pushed = await svc.push({ model: 'seg', paths: [src] });
      expect(pushed.logicalBytes).toBe(edited.length);
      expect(pushed.newBytes).toBeLessThan(1.5 * 2 ** 20);
      const repo = await svc.repository();
      const [, latest] = await repo.versions('seg');
      const manifest = await repo.readManifest(latest!.record.files[0]!.manifest);
      const cuts = cutPoints(edited, repo.chunking);
      expect(manifest.chunks.map((c) => c.length)).toEqual(
        cuts.map((end, i) => end - (cuts[i - 1] ?? 0)),
      );
      const dest = fresh('seg-out');
      await svc.pull('seg', dest);
      expect((await readFile(join(dest, 'weights.bin'))).equals(edited)).toBe(true);
    } finally {
      await svc.close();
    }
  });

  // ~50 s on an idle 2-core machine (it reads, hashes and writes 5 GiB); at a load of 10 it
  // took over 240 s, hence the long timeout.
  it('a 5 GiB sparse file with data beyond 4 GiB pushes and pulls byte-identical', async () => {
    const src = fresh('big');
    await mkdir(src);
    const file = join(src, 'huge.bin');
    const handle = await open(file, 'w');
    const marks = [0, 2 ** 32 - 100_000, 2 ** 32 + 12_345, 5 * 2 ** 30 - 70_000];
    for (const [i, at] of marks.entries())
      await handle.write(seededBytes(i + 50, 65_000), 0, 65_000, at);
    await handle.truncate(5 * 2 ** 30);
    await handle.close();
    const svc = service('local');
    try {
      const pushed = await svc.push({ model: 'huge', paths: [src] });
      expect(pushed.logicalBytes).toBe(5 * 2 ** 30);
      expect(pushed.newBytes).toBeLessThan(10 * 2 ** 20); // the zeros deduplicate to a chunk
      const dest = fresh('huge-out');
      await svc.pull('huge', dest);
      const digest = async (path: string) => {
        const h = createHash('sha256');
        for await (const part of (await open(path)).createReadStream({ highWaterMark: 4 << 20 }))
          h.update(part as Buffer);
        return h.digest('hex');
      };
      expect((await stat(join(dest, 'huge.bin'))).size).toBe(5 * 2 ** 30);
      expect(await digest(join(dest, 'huge.bin'))).toBe(await digest(file));
    } finally {
      await svc.close();
    }
  }, 600_000);
});

describe('bad input: one clear error, nothing written where it should not be', () => {
  let svc: Service;
  let src: string;
  let repoPath: string;
  beforeAll(async () => {
    repoPath = fresh('repo-bad');
    svc = new Service({ repository: repoPath, redisUrl: undefined, mode: 'cli', workers: 2 });
    src = fresh('bad-src');
    await mkdir(join(src, 'd'), { recursive: true });
    await writeFile(join(src, 'd/a.bin'), seededBytes(9, 500_000));
    await writeFile(join(src, 'b.txt'), 'hello');
    await svc.push({ model: 'ok', paths: [src] });
  });
  afterAll(() => svc.close());

  it('a missing path', async () => {
    await expect(svc.push({ model: 'ok', paths: [join(src, 'nope')] })).rejects.toThrow(
      `no such file or folder: ${join(src, 'nope')}`,
    );
  });

  it('a bad model name', async () => {
    await expect(svc.push({ model: '../etc', paths: [src] })).rejects.toThrow(
      /invalid model name "..\/etc"/,
    );
  });

  it('an unknown model or version', async () => {
    await expect(svc.pull('ok@v7', fresh('x'))).rejects.toThrow(
      'model "ok" has no version v7 (it has v1; see `tv log ok`)',
    );
    await expect(svc.pull('missing', fresh('x'))).rejects.toThrow(
      /model "missing" has no versions/,
    );
    await expect(svc.pull('ok@zzz', fresh('x'))).rejects.toThrow(/has no version "zzz"/);
  });

  it('a destination that is a file or cannot be made; a folder with other files is used, and they stay', async () => {
    const full = fresh('full');
    await mkdir(full);
    await writeFile(join(full, 'keep.txt'), 'mine');
    await svc.pull('ok', full);
    expect((await readdir(full)).sort()).toEqual(['b.txt', 'd', 'keep.txt']);
    expect(await readFile(join(full, 'keep.txt'), 'utf8')).toBe('mine');
    await expect(svc.pull('ok', join(full, 'keep.txt'))).rejects.toThrow(
      `${join(full, 'keep.txt')} exists and is not a folder: choose a folder`,
    );
    const underFile = join(src, 'b.txt', 'sub');
    await expect(svc.pull('ok', underFile)).rejects.toThrow(/cannot (create|use)/);
  });

  it('a folder of the destination that is a symbolic link is not written through', async () => {
    const dest = fresh('linked');
    const elsewhere = fresh('elsewhere');
    await mkdir(dest);
    await mkdir(elsewhere);
    await symlink(elsewhere, join(dest, 'd'));
    await expect(svc.pull('ok', dest)).rejects.toThrow(
      `cannot restore into ${join(dest, 'd')}: it is a symbolic link`,
    );
    expect(await readdir(elsewhere)).toEqual([]);
  });

  it('a corrupt chunk fails naming the file and the chunk, leaves no partial file, and the pull resumes once repaired', async () => {
    const repo = await svc.repository();
    const version = await repo.resolve('ok');
    const file = version.record.files.find((f) => f.path === 'd/a.bin')!;
    const chunk = (await repo.readManifest(file.manifest)).chunks[1]!;
    // The chunk's bytes where the folder keeps them: in a pack. Another client of the folder:
    const other = await Repository.open({ repository: repoPath });
    const packs = other.stack.packs!;
    const [found] = await packs.locateMany([chunk.hash]);
    const where = { file: found!.file!, offset: found!.offset, length: found!.length };
    const original = Buffer.alloc(where.length);
    const overwrite = async (bytes: Buffer) => {
      const handle = await open(where.file, 'r+');
      await handle.write(bytes, 0, bytes.length, where.offset);
      await handle.close();
    };
    const handle = await open(where.file, 'r');
    await handle.read(original, 0, where.length, where.offset);
    await handle.close();
    await overwrite(Buffer.from(original).fill(7, 0, 10));
    const dest = fresh('corrupt-out');
    /** What the destination holds: only whole files of the version (b.txt may be done). */
    const leftovers = async () => {
      const found = await readdir(dest, { recursive: true }).catch(() => [] as string[]);
      expect(found.filter((f) => f !== 'b.txt')).toEqual([]);
      if (found.includes('b.txt'))
        expect(await readFile(join(dest, 'b.txt'), 'utf8')).toBe('hello');
    };
    try {
      await expect(svc.pull('ok', dest)).rejects.toThrow(
        new RegExp(`cannot restore d/a.bin: chunk ${chunk.hash} \\(bytes \\d+-\\d+\\) is corrupt`),
      );
      await leftovers();
    } finally {
      await overwrite(original);
    }
    // Deleted (its pack rewritten without it), then missing for the service's own store too.
    await packs.delete(objectKey(chunk.hash));
    await expect(svc.pull('ok', dest)).rejects.toThrow(
      new RegExp(`cannot restore d/a.bin: chunk ${chunk.hash} .* is missing`),
    );
    await leftovers();
    await packs.put(objectKey(chunk.hash), original);
    await packs.flush();
    await other.close();
    const resumed = await svc.pull('ok', dest);
    expect(resumed.filesWritten + resumed.filesUnchanged).toBe(2);
    expect(
      (await readFile(join(dest, 'd/a.bin'))).equals(Buffer.from(seededBytes(9, 500_000))),
    ).toBe(true);
  });

  it('a pack rewritten by another process after its chunks were located: they are read through the store', async () => {
    const locate = PackedStore.prototype.locateMany;
    let stale = 0;
    const spy = vi.spyOn(PackedStore.prototype, 'locateMany').mockImplementation(async function (
      this: PackedStore,
      hashes,
    ) {
      // As if gc had rewritten the pack since the lookup: the file named is gone.
      return (await locate.call(this, hashes)).map(
        (where) => where && (stale++, { ...where, file: `${where.file}.gone` }),
      );
    });
    try {
      const dest = fresh('moved-out');
      await svc.pull('ok', dest);
      expect(stale).toBeGreaterThan(0);
      expect(
        (await readFile(join(dest, 'd/a.bin'))).equals(Buffer.from(seededBytes(9, 500_000))),
      ).toBe(true);
    } finally {
      spy.mockRestore();
    }
  });

  it('a version whose paths would escape the destination is refused whole', async () => {
    const repo = await svc.repository();
    const good = await repo.resolve('ok');
    await repo.publish({
      ...good.record,
      model: 'evil',
      files: [...good.record.files, { ...good.record.files[0]!, path: '../escaped.txt' }],
    });
    const dest = fresh('evil-out');
    await expect(svc.pull('evil', dest)).rejects.toThrow(
      'the version holds a path that would land outside the destination ("../escaped.txt"): refusing to restore it',
    );
    await expect(stat(join(dest, '..', 'escaped.txt'))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(stat(dest)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('a cancelled push stops promptly and leaves no version', async () => {
    const big = fresh('cancel-src');
    await mkdir(big);
    await writeFile(join(big, 'w.bin'), seededBytes(10, 64 << 20));
    const controller = new AbortController();
    const pushing = svc.push({
      model: 'cancelled',
      paths: [big],
      signal: controller.signal,
      onProgress: (p) => {
        if (p.bytesHashed > 4 << 20) controller.abort();
      },
    });
    await expect(pushing).rejects.toThrow('push cancelled: no version was written');
    await expect(svc.log('cancelled')).rejects.toThrow(/model "cancelled" has no versions/);
  });
});

describe('restore destinations in the app (browser mode and desktop)', () => {
  it('expands ~ to the home folder and refuses a relative path, writing nothing', async () => {
    const home = fresh('home');
    await mkdir(home);
    const repository = fresh('repo');
    const cli = service('local', repository);
    const source = fresh('src');
    await mkdir(source);
    await writeFile(join(source, 'config.json'), '{"layers": 2}');
    await cli.push({ model: 'paths', paths: [source] });
    await cli.close();
    const app = new Service({ repository, redisUrl: undefined, mode: 'browser', workers: 1 });
    const saved = process.env['HOME'];
    process.env['HOME'] = home;
    try {
      const relative = `rel-restore-${process.pid}`;
      await expect(app.pull('paths@v1', relative)).rejects.toThrow(
        `"${relative}" is a relative path`,
      );
      await expect(stat(relative)).rejects.toThrow(/ENOENT/);
      expect(await app.restoreTarget('~/tv-restore')).toEqual({
        input: '~/tv-restore',
        path: join(home, 'tv-restore'),
        state: 'new',
        problem: null,
      });
      const result = await app.pull('paths@v1', '~/tv-restore');
      expect(result.destination).toBe(join(home, 'tv-restore'));
      expect(await readFile(join(home, 'tv-restore', 'config.json'), 'utf8')).toBe('{"layers": 2}');
      await expect(stat('~')).rejects.toThrow(/ENOENT/);
    } finally {
      process.env['HOME'] = saved;
      await app.close();
    }
  });
});
