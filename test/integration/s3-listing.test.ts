import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mapLimit } from '../../electron/engine/concurrency';
import { encodeVersion, refKey } from '../../electron/engine/repository/format';
import { Service } from '../../electron/engine/service';
import { objectKey } from '../../electron/engine/storage/store';
import { S3Server } from '../harness/s3';
import { seededBytes } from '../unit/prng';
import { s3Options, s3Store, startServers, type TestServers } from './stores';

let servers: TestServers;
let s3: S3Server;
let work: TestServers['work'];
beforeAll(async () => {
  servers = await startServers('tv-s3-listing-');
  ({ s3, work } = servers);
});
afterAll(() => servers?.stop());

const MANY = 1_100;

/**
 * S3 lists at most 1,000 keys a page: past that, ListObjectsV2 takes a continuation token. (The
 * S3-protocol server in the harness encrypts the token with DES: it runs under Node's
 * --openssl-legacy-provider, which vitest.config.ts gives the test processes.)
 */
describe(`S3 listings of more than 1,000 keys (${MANY} versions and objects)`, () => {
  it('log, models, verify and gc see every ref and every object', async () => {
    const src = join(work.path, 'model');
    await mkdir(src, { recursive: true });
    await writeFile(join(src, 'weights.bin'), seededBytes(5, 300_000));
    const service = new Service({
      repository: `s3://${s3.bucket}/many`,
      redisUrl: undefined,
      s3: s3Options(s3),
      mode: 'cli',
      workers: 2,
    });
    const bucket = s3Store(s3, 'many');
    try {
      const first = await service.push({ model: 'm', paths: [src] });
      // 1,100 more versions of the same files, written as a push writes them: record, then ref.
      const repo = await service.repository();
      const record = (await repo.resolve('m@v1')).record;
      const started = Date.parse(record.createdAt);
      await mapLimit(
        Array.from({ length: MANY }, (_, i) => i),
        64,
        async (i) => {
          const bytes = encodeVersion({ ...record, message: `copy ${i}`, parent: first.id });
          const id = repo.hash(bytes);
          await bucket.put(objectKey(id), bytes);
          await bucket.put(refKey('m', started + 1 + i, id), Buffer.from(id));
        },
      );
      // And 1,100 objects no version needs.
      await mapLimit(
        Array.from({ length: MANY }, (_, i) => i),
        64,
        async () => {
          const bytes = randomBytes(64);
          await bucket.put(objectKey(repo.hash(bytes)), bytes);
        },
      );

      const log = await service.log('m');
      expect(log).toHaveLength(MANY + 1);
      expect(log.at(-1)?.label).toBe(`v${MANY + 1}`);
      expect(await service.models()).toMatchObject([{ name: 'm', versions: MANY + 1 }]);
      const verified = await service.verify();
      expect(verified).toMatchObject({ ok: true, method: 'index', versionsChecked: MANY + 1 });
      expect(verified.objectsChecked).toBe(MANY + 1 + 1 + first.chunks);
      const swept = await service.gc({ graceSeconds: 0 });
      // In a repository of packs, objects no index names are what unfinished pushes left.
      expect(swept).toMatchObject({ abandonedBytes: MANY * 64, liveVersions: MANY + 1 });
      expect((await service.verify({ full: true })).ok).toBe(true);
    } finally {
      await bucket.close();
      await service.close();
    }
  }, 600_000);
});
