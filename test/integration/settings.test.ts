import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MiB } from '../../electron/engine/chunking/params';
import { Service } from '../../electron/engine/service';
import {
  DEFAULT_SETTINGS,
  engineOptions,
  type SettingsStore,
  type StoredSettings,
} from '../../electron/engine/settings';
import { freePort } from '../harness/ports';
import { RedisServer } from '../harness/redis';
import { S3Server, TEST_CREDENTIALS, TEST_REGION } from '../harness/s3';
import { randomFile } from '../../bench/data';
import { startServers, type TestServers } from './stores';

/** An editable settings store in memory (the desktop app's keeps them encrypted on disk). */
function memorySettings(initial: StoredSettings): SettingsStore & { saved: StoredSettings } {
  const store = {
    editable: true,
    saved: initial,
    load: async () => store.saved,
    save: async (s: StoredSettings) => void (store.saved = s),
  };
  return store;
}

let servers: TestServers;
let redis: RedisServer;
let s3: S3Server;
let work: TestServers['work'];
beforeAll(async () => {
  servers = await startServers('tv-settings-');
  ({ redis, s3, work } = servers);
});
afterAll(() => servers?.stop());

describe('settings', () => {
  const input = {
    repository: '',
    s3Endpoint: '',
    s3Region: TEST_REGION,
    s3AccessKeyId: TEST_CREDENTIALS.accessKeyId,
    redisUrl: '',
    uploadConcurrency: 32,
  };

  it('never hand a secret to the page; saving keeps an omitted secret and reopens the repository', async () => {
    const settings = memorySettings({ ...DEFAULT_SETTINGS });
    const service = new Service({
      repository: join(work.path, 'a'),
      redisUrl: undefined,
      mode: 'desktop',
      settings,
    });
    try {
      const saved = await service.saveSettings({
        ...input,
        repository: join(work.path, 'b'),
        s3SecretAccessKey: 'top-secret',
        redisPassword: 'pw',
      });
      expect(saved).toMatchObject({
        s3SecretAccessKeySet: true,
        redisPasswordSet: true,
        editable: true,
      });
      expect(JSON.stringify(await service.getSettings())).not.toContain('top-secret');
      await service.saveSettings({ ...input, repository: join(work.path, 'b') });
      expect(settings.saved.s3SecretAccessKey).toBe('top-secret');
      // The retry time for throttled S3 requests: 10 minutes unless set, kept when left out.
      expect((await service.getSettings()).retryForSeconds).toBe(600);
      const b = { ...input, repository: join(work.path, 'b') };
      await service.saveSettings({ ...b, retryForSeconds: 1800 });
      await service.saveSettings(b);
      expect(await service.getSettings()).toMatchObject({ retryForSeconds: 1800 });
      expect(engineOptions(settings.saved).s3.retryForMs).toBe(1_800_000);
      expect((await service.appInfo()).repository).toBe(join(work.path, 'b'));
      await expect(service.saveSettings({ ...input, repository: 'ftp://nowhere' })).rejects.toThrow(
        /unsupported repository location/,
      );
    } finally {
      await service.close();
    }
  });

  it('read-only settings (browser mode, the command line) say where they come from', async () => {
    const service = new Service({
      repository: join(work.path, 'c'),
      redisUrl: redis.url,
      mode: 'browser',
    });
    try {
      expect(await service.getSettings()).toMatchObject({ editable: false, redisUrl: redis.url });
      await expect(service.saveSettings(input)).rejects.toThrow(
        /settings come from the environment here/,
      );
    } finally {
      await service.close();
    }
  });

  it('test connection says exactly what answered or what failed', async () => {
    const service = new Service({
      repository: join(work.path, 'd'),
      redisUrl: undefined,
      mode: 'browser',
    });
    const closed = await freePort();
    try {
      const s3Input = {
        ...input,
        repository: `s3://${s3.bucket}/x`,
        s3Endpoint: s3.endpoint,
        s3SecretAccessKey: TEST_CREDENTIALS.secretAccessKey,
      };
      expect(await service.testConnection('s3', s3Input)).toMatchObject({
        ok: true,
        message: `reached s3://${s3.bucket}/x at ${s3.endpoint}`,
      });
      expect(
        await service.testConnection('s3', { ...s3Input, s3AccessKeyId: 'NOPE' }),
      ).toMatchObject({ ok: false, message: expect.stringMatching(/S3 refused the credentials/) });
      expect(
        await service.testConnection('s3', { ...s3Input, repository: 's3://no-such-bucket' }),
      ).toMatchObject({
        ok: false,
        message: expect.stringMatching(/bucket "no-such-bucket" does not exist/),
      });
      expect(await service.testConnection('s3', input)).toMatchObject({
        ok: false,
        message: expect.stringMatching(/not an s3:\/\/bucket\/prefix location/),
      });
      expect(
        await service.testConnection('redis', { ...input, redisUrl: redis.url }),
      ).toMatchObject({ ok: true });
      expect(
        await service.testConnection('redis', {
          ...input,
          redisUrl: `redis://127.0.0.1:${closed}`,
        }),
      ).toMatchObject({
        ok: false,
        message: `Redis at 127.0.0.1:${closed} refused the connection`,
      });
      expect(
        await service.testConnection('redis', { ...input, redisUrl: 'localhost:6379' }),
      ).toMatchObject({
        ok: false,
        message: expect.stringMatching(
          /^the Redis URL in Settings is not a Redis URL \("localhost:6379"\): expected redis:\/\//,
        ),
      });
    } finally {
      await service.close();
    }
  });
});

describe('the service thread during a 1 GiB push', () => {
  it('keeps its event loop responsive: chunking and hashing run in workers', async () => {
    const src = join(work.path, 'big');
    await mkdir(src);
    await randomFile(join(src, 'weights.bin'), 1024 * MiB);
    await writeFile(join(src, 'config.json'), '{}');
    const service = new Service({
      repository: join(work.path, 'repo-big'),
      redisUrl: undefined,
      mode: 'desktop',
    });
    try {
      // The share of the push's time the event loop was busy (not waiting for events): the
      // longest wait between turns would also count the time a loaded machine leaves this
      // process unscheduled, which is no fault of the engine.
      const before = performance.eventLoopUtilization();
      const result = await service.push({ model: 'big', paths: [src] });
      const busy = performance.eventLoopUtilization(before).utilization;
      expect(result.logicalBytes).toBe(1024 * MiB + 2);
      // Chunking and hashing in the workers leave the loop free for a UI a good part of the
      // time (0.39 busy at load 9 here, for writing packs and their index); on this thread
      // they would keep it busy throughout (1.0).
      expect(busy).toBeLessThan(0.8);
    } finally {
      await service.close();
    }
  });
});
