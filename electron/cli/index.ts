import { Command, InvalidArgumentError, Option } from 'commander';
import type { PushProgress, RestoreProgress } from '../../shared/types';
import { PRODUCT, VERSION } from '../engine/version';

// The AWS SDK warns about the Node version on stderr once per process; a CLI keeps stderr for
// its own messages.
process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
// File I/O runs on libuv's thread pool (4 threads by default): a push keeps dozens of object
// writes in flight. Set before the first file operation, which creates the pool.
process.env['UV_THREADPOOL_SIZE'] ??= '16';

interface GlobalOptions {
  repo?: string;
  redis?: string;
  /** Seconds (see duration). */
  retryFor?: number;
}

function portNumber(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InvalidArgumentError('a port is a whole number from 0 to 65535');
  }
  return port;
}

const program = new Command('tv')
  .description(`${PRODUCT}: model versioning with chunk-level deduplication`)
  .version(VERSION, '-V, --version')
  .option(
    '--repo <location>',
    'repository: a folder, file:// URL or s3://bucket/prefix (env TV_REPO; default: your data folder)',
  )
  .option(
    '--redis <url>',
    'Redis existence cache, redis://host:port (env TV_REDIS_URL; default: none)',
  )
  .option(
    '--retry-for <duration>',
    'how long a request S3 throttles (503 SlowDown) keeps being retried, e.g. 30m (default: 10m)',
    (value: string) => {
      const seconds = duration(value);
      if (seconds < 1) throw new InvalidArgumentError('the retry time must be at least 1s');
      return seconds;
    },
  )
  .showHelpAfterError('(run tv --help for usage)');

/** Runs a command against the service; prints errors as one line (or one JSON object). */
async function withService<T>(
  json: boolean | undefined,
  action: (service: import('../engine/service').Service) => Promise<T>,
): Promise<T | undefined> {
  const [{ Service }, { resolveConfig }, { createCliLogger }] = await Promise.all([
    import('../engine/service'),
    import('../engine/config'),
    import('../engine/log'),
  ]);
  const flags = program.opts<GlobalOptions>();
  let service: import('../engine/service').Service | undefined;
  try {
    service = new Service({
      ...resolveConfig(flags),
      ...(flags.retryFor !== undefined ? { s3: { retryForMs: flags.retryFor * 1000 } } : {}),
      mode: 'cli',
      logger: createCliLogger(),
    });
    return await action(service);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (json) process.stdout.write(JSON.stringify({ error: message }) + '\n');
    process.stderr.write(`tv: ${message}\n`);
    process.exitCode = err instanceof Error && err.name === 'PushCancelledError' ? 130 : 1;
    return undefined;
  } finally {
    await service?.close();
  }
}

function emit(json: boolean | undefined, value: unknown, human: () => string): void {
  process.stdout.write(json ? JSON.stringify(value) + '\n' : human() + '\n');
}

/** A progress bar on stderr, only at a terminal. */
async function progressBar(label: string) {
  if (!process.stderr.isTTY) return undefined;
  // cli-progress is CommonJS: bundled, its module has only a default export.
  const { default: cliProgress } = await import('cli-progress');
  const { formatBytes } = await import('./format');
  const bar = new cliProgress.SingleBar({
    stream: process.stderr,
    format: `${label} |{bar}| {percentage}% | {done} of {total_h} | {rate} MB/s | ETA {eta_h}{extra}`,
    hideCursor: true,
    clearOnComplete: true,
    barsize: 24,
  });
  let started = false;
  return {
    update(done: number, total: number, rate: number, eta: number | null, extra = '') {
      const payload = {
        done: formatBytes(done),
        total_h: formatBytes(total),
        rate,
        eta_h: eta === null ? '-' : `${eta}s`,
        extra,
      };
      if (!started) {
        bar.start(Math.max(total, 1), done, payload);
        started = true;
      } else bar.update(done, payload);
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

program
  .command('init')
  .description('create a repository at --repo (or the default location)')
  .option(
    '--chunk-size <size>',
    'average chunk size, a power of two (min = size/4, max = size*4)',
    '64KiB',
  )
  .addOption(
    new Option('--hash <algorithm>', 'content hash')
      .choices(['sha256', 'blake3'])
      .default('sha256'),
  )
  .option('--json', 'print one JSON object')
  .action(async (opts: { chunkSize: string; hash: 'sha256' | 'blake3'; json?: boolean }) => {
    await withService(opts.json, async (service) => {
      const { parseSize, profileForAverage } = await import('../engine/chunking/params');
      const { formatBytes } = await import('./format');
      const info = await service.init({
        hash: opts.hash,
        chunking: profileForAverage(parseSize(opts.chunkSize)),
      });
      emit(opts.json, info, () => {
        const c = info.chunking;
        return `Created a repository at ${info.location}\n  id ${info.repositoryId}, hash ${info.hash}, chunks ${formatBytes(c.minSize)} / ${formatBytes(c.avgSize)} / ${formatBytes(c.maxSize)}`;
      });
    });
  });

program
  .command('upgrade')
  .description(
    'move a folder repository of format 1 to format 2 (pack files); older clients cannot open it afterwards',
  )
  .option('--json', 'print one JSON object')
  .action(async (opts: { json?: boolean }) => {
    await withService(opts.json, async (service) => {
      const r = await service.upgrade();
      emit(opts.json, r, () =>
        r.from === r.to
          ? `${r.location} is at format ${r.to} already: nothing to do`
          : `Upgraded ${r.location} from format ${r.from} to ${r.to}: new objects go to pack files (the existing ones stay and are read as before); TensorVault versions before format ${r.to} can no longer open it`,
      );
    });
  });

program
  .command('push')
  .description('make a new version of MODEL from files and folders')
  .argument('<model>', 'model name')
  .argument('<paths...>', "files and folders (a folder's files are stored relative to it)")
  .option('-m, --message <message>', 'what changed in this version', '')
  .option('--json', 'print one JSON object')
  .action(async (model: string, paths: string[], opts: { message: string; json?: boolean }) => {
    await withService(opts.json, async (service) => {
      const { formatBytes, formatRatio, formatSeconds } = await import('./format');
      const bar = await progressBar('pushing');
      const controller = new AbortController();
      const onSigint = () => controller.abort();
      process.once('SIGINT', onSigint);
      try {
        const result = await service.push({
          model,
          paths,
          message: opts.message,
          signal: controller.signal,
          onProgress: (p: PushProgress) => {
            const dedup =
              p.bytesHashed > 0 ? Math.round((p.bytesDeduplicated / p.bytesHashed) * 100) : 0;
            bar?.update(
              p.bytesHashed,
              p.totalBytes,
              p.mbps,
              p.etaSeconds,
              ` | ${dedup}% deduplicated${p.throttled ? ' | S3 is throttling, retrying' : ''}`,
            );
          },
        });
        bar?.stop();
        if (result.createdRepository && !opts.json)
          process.stderr.write(
            `tv: created a new repository at ${(await service.repositoryInfo()).location}\n`,
          );
        for (const s of result.skipped)
          process.stderr.write(`tv: skipped ${s.path}: ${s.reason}\n`);
        emit(opts.json, result, () =>
          [
            `${result.model} ${result.version} (${result.shortId}): ${result.files} file${result.files === 1 ? '' : 's'}, ${formatBytes(result.logicalBytes)}`,
            `  new ${formatBytes(result.newBytes)} in ${result.newChunks} of ${result.chunks} chunks, reused ${formatBytes(result.reusedBytes)} (${formatBytes(result.reusedFromParentBytes)} from the previous version)`,
            `  dedup ${formatRatio(result.dedupRatio)}, ${formatSeconds(result.seconds)}`,
          ].join('\n'),
        );
      } finally {
        bar?.stop();
        process.off('SIGINT', onSigint);
      }
    });
  });

program
  .command('log')
  .description("list a model's versions, oldest first")
  .argument('<model>', 'model name')
  .option('--json', 'print one JSON array')
  .action(async (model: string, opts: { json?: boolean }) => {
    await withService(opts.json, async (service) => {
      const { formatBytes, formatRatio, table } = await import('./format');
      const versions = await service.log(model);
      emit(opts.json, versions, () =>
        versions.length === 0
          ? `${model} has no versions`
          : table(
              ['version', 'id', 'created', 'size', 'new', 'dedup', 'files', 'message'],
              versions.map((v) => [
                v.label,
                v.shortId,
                v.createdAt.replace('T', ' ').slice(0, 19),
                formatBytes(v.stats.logicalBytes),
                formatBytes(v.stats.newBytes),
                formatRatio(v.dedupRatio),
                String(v.files),
                v.message,
              ]),
              [3, 4, 5, 6],
            ),
      );
    });
  });

program
  .command('models')
  .description('list the models in the repository')
  .option('--json', 'print one JSON array')
  .action(async (opts: { json?: boolean }) => {
    await withService(opts.json, async (service) => {
      const { formatBytes, table } = await import('./format');
      const models = await service.models();
      emit(opts.json, models, () =>
        models.length === 0
          ? 'no models yet: tv push MODEL PATH'
          : table(
              ['model', 'versions', 'latest', 'size', 'created'],
              models.map((m) => [
                m.name,
                String(m.versions),
                m.latest?.label ?? '-',
                m.latest ? formatBytes(m.latest.stats.logicalBytes) : '-',
                m.latest?.createdAt.replace('T', ' ').slice(0, 19) ?? '-',
              ]),
              [1, 3],
            ),
      );
    });
  });

program
  .command('pull')
  .description("write a version's files into DEST (an empty or new folder)")
  .argument('<selector>', 'MODEL, MODEL@vN, MODEL@latest or MODEL@<id prefix>')
  .argument('<dest>', 'destination folder')
  .option('--json', 'print one JSON object')
  .action(async (selector: string, dest: string, opts: { json?: boolean }) => {
    await withService(opts.json, async (service) => {
      const { formatBytes, formatSeconds } = await import('./format');
      const bar = await progressBar('pulling');
      try {
        const result = await service.pull(selector, dest, {
          onProgress: (p: RestoreProgress) =>
            bar?.update(p.bytesWritten, p.totalBytes, p.mbps, p.etaSeconds),
        });
        bar?.stop();
        emit(
          opts.json,
          result,
          () =>
            `${result.model} ${result.version}: ${result.files} files, ${formatBytes(result.bytes)} written to ${result.destination} in ${formatSeconds(result.seconds)}`,
        );
      } finally {
        bar?.stop();
      }
    });
  });

program
  .command('report')
  .description(
    'where the bytes of a version came from: new, from the previous version, from elsewhere',
  )
  .argument('<selector>', 'MODEL, MODEL@vN or MODEL@<id prefix>')
  .option('--json', 'print one JSON object')
  .action(async (selector: string, opts: { json?: boolean }) => {
    await withService(opts.json, async (service) => {
      const { formatBytes, formatRatio, formatSeconds, table } = await import('./format');
      const r = await service.report(selector);
      emit(opts.json, r, () => {
        const v = r.version;
        const lines = [
          `${v.model} ${v.label} (${v.shortId}): ${formatBytes(r.logicalBytes)} in ${r.files.length} files, dedup ${formatRatio(r.dedupRatio)}`,
          `  new ${formatBytes(r.newBytes)} (${r.newChunks} of ${r.chunks} chunks), from the previous version ${formatBytes(r.reusedFromParentBytes)}, from elsewhere ${formatBytes(r.reusedElsewhereBytes)}`,
          `  pushed in ${formatSeconds(r.seconds)} (${r.mbps} MB/s)`,
          '',
          table(
            ['file', 'size', 'new', 'previous', 'elsewhere', 'tensors changed'],
            [...r.files]
              .sort((a, b) => b.newBytes - a.newBytes || b.size - a.size)
              .map((f) => [
                f.path,
                formatBytes(f.size),
                formatBytes(f.newBytes),
                formatBytes(f.reusedFromParentBytes),
                formatBytes(f.reusedElsewhereBytes),
                f.tensors
                  ? `${f.tensors.filter((t) => t.status !== 'unchanged').length} of ${f.tensors.length}`
                  : (f.note ?? ''),
              ]),
            [1, 2, 3, 4],
          ),
        ];
        return lines.join('\n');
      });
    });
  });

program
  .command('diff')
  .description('what changed between two versions, file by file and tensor by tensor')
  .argument('<from>', 'MODEL@VERSION (the older one)')
  .argument('<to>', 'MODEL@VERSION (the newer one)')
  .option('--json', 'print one JSON object')
  .action(async (from: string, to: string, opts: { json?: boolean }) => {
    await withService(opts.json, async (service) => {
      const { formatBytes, table } = await import('./format');
      const d = await service.diff(from, to);
      emit(opts.json, d, () => {
        const lines = [
          `${d.from.model} ${d.from.label} -> ${d.to.model} ${d.to.label}: ${formatBytes(d.bytesChanged)} changed`,
          '',
          table(
            ['file', 'status', 'changed', 'size'],
            d.files.map((f) => [
              f.path,
              f.status,
              formatBytes(f.bytesChanged),
              formatBytes(f.sizeAfter ?? f.sizeBefore ?? 0),
            ]),
            [2, 3],
          ),
        ];
        for (const f of d.files) {
          if (f.note) lines.push('', `${f.path}: ${f.note}`);
          const changed = (f.tensors ?? [])
            .filter((t) => t.status !== 'unchanged')
            .sort((a, b) => b.bytes - a.bytes);
          if (!f.tensors) continue;
          lines.push('', `${f.path}: ${changed.length} of ${f.tensors.length} tensors changed`);
          if (changed.length > 0) {
            lines.push(
              table(
                ['tensor', 'status', 'dtype', 'shape', 'bytes'],
                changed.map((t) => [
                  t.name,
                  t.status,
                  t.dtype,
                  `[${t.shape.join(', ')}]`,
                  formatBytes(t.bytes),
                ]),
                [4],
              ),
            );
          }
        }
        return lines.join('\n');
      });
    });
  });

function duration(value: string): number {
  const match = /^(\d+)\s*(s|m|h|d)?$/.exec(value.trim());
  if (!match)
    throw new InvalidArgumentError('a duration is a number with s, m, h or d (e.g. 24h, 30m, 0)');
  return (
    Number(match[1]) *
    { s: 1, m: 60, h: 3600, d: 86400 }[(match[2] ?? 's') as 's' | 'm' | 'h' | 'd']
  );
}

program
  .command('verify')
  .description(
    'check that every object the versions need is in the storage backend (never trusting the cache)',
  )
  .argument('[selector]', 'MODEL or MODEL@VERSION (default: every model)')
  .option('--full', 'also download every object and check its hash')
  .option('--json', 'print one JSON object')
  .action(async (selector: string | undefined, opts: { full?: boolean; json?: boolean }) => {
    await withService(opts.json, async (service) => {
      const r = await service.verify({
        ...(selector ? { selector } : {}),
        full: opts.full ?? false,
      });
      emit(opts.json, r, () => {
        const lines = [
          r.ok
            ? `ok: ${r.versionsChecked} versions, ${r.objectsChecked} objects present${r.full ? ' and intact' : ''} (${r.method === 'list' ? 'listed' : 'checked one by one'}, ${r.seconds} s)`
            : `DAMAGED: ${r.damaged.length} of ${r.objectsChecked} objects missing or corrupt, in ${r.damagedVersions.length} versions`,
        ];
        for (const v of r.damagedVersions)
          lines.push(
            `  ${v.model} ${v.version} (${v.id.slice(0, 12)}): ${v.files.length > 0 ? v.files.join(', ') : 'version record'}`,
          );
        for (const d of r.damaged.slice(0, 50))
          lines.push(
            `  ${d.problem} ${d.kind} ${d.hash}${d.neededBy[0]?.file ? ` (${d.neededBy[0].file})` : ''}`,
          );
        if (r.damaged.length > 50)
          lines.push(`  ... and ${r.damaged.length - 50} more (--json lists all)`);
        if (r.staleCacheKeysRemoved > 0)
          lines.push(
            `  removed ${r.staleCacheKeysRemoved} cache keys that claimed missing objects`,
          );
        return lines.join('\n');
      });
      if (!r.ok) process.exitCode = 1;
    });
  });

program
  .command('rm')
  .description('remove a version (MODEL@VERSION) or a whole model (MODEL); the data stays until gc')
  .argument('<selector>', 'MODEL@VERSION or MODEL')
  .option('--json', 'print one JSON object')
  .action(async (selector: string, opts: { json?: boolean }) => {
    await withService(opts.json, async (service) => {
      const r = await service.remove(selector);
      emit(
        opts.json,
        r,
        () =>
          `removed ${r.model} ${r.removed.map((v) => v.version).join(', ')} (run tv gc to reclaim space)`,
      );
    });
  });

program
  .command('gc')
  .description(
    'reclaim objects no version needs (an object must stay unreachable for the grace period)',
  )
  .option('--dry-run', 'report what would be reclaimed, delete nothing')
  .option(
    '--grace <duration>',
    'how long an object must be unreachable and unwritten first',
    duration,
    86400,
  )
  .option('--json', 'print one JSON object')
  .action(async (opts: { dryRun?: boolean; grace: number; json?: boolean }) => {
    await withService(opts.json, async (service) => {
      const { formatBytes } = await import('./format');
      const r = await service.gc({ dryRun: opts.dryRun ?? false, graceSeconds: opts.grace });
      emit(opts.json, r, () =>
        [
          `${r.dryRun ? 'would reclaim' : 'reclaimed'} ${r.sweptObjects} objects, ${formatBytes(r.sweptBytes)}; ${r.liveVersions} live versions need ${r.reachableObjects} objects`,
          ...(r.deferredObjects > 0
            ? [
                `  ${r.deferredObjects} unreachable objects (${formatBytes(r.deferredBytes)}) wait out the ${r.graceSeconds} s grace period: run gc again after it`,
              ]
            : []),
          ...(r.abandonedBytes > 0
            ? [
                `  ${r.dryRun ? 'would remove' : 'removed'} ${formatBytes(r.abandonedBytes)} of packs that unfinished pushes left`,
              ]
            : []),
        ].join('\n'),
      );
    });
  });

const cache = program.command('cache').description('the Redis existence cache');
cache
  .command('status')
  .description(
    "PING Redis and show the cache's state, this repository's keys, Redis memory and the hit figures every client keeps in Redis (exits 1 when Redis is down)",
  )
  .option('--json', 'print one JSON object')
  .action(async (opts: { json?: boolean }) => {
    await withService(opts.json, async (service) => {
      const { formatCacheStatus } = await import('./cache-status');
      const status = await service.cacheStatus();
      emit(opts.json, status, () => formatCacheStatus(status));
      if (status.state === 'down') process.exitCode = 1;
    });
  });

program
  .command('serve')
  .description('browser mode: serve the app and its API on 127.0.0.1 with a one-time token')
  .option('-p, --port <port>', 'port to listen on (0 picks a free one)', portNumber, 0)
  .action(async (opts: { port: number }) => {
    const [
      { join },
      { startServer },
      { Service },
      { resolveConfig },
      { createCliLogger },
      { packageRoot },
    ] = await Promise.all([
      import('node:path'),
      import('../server/index'),
      import('../engine/service'),
      import('../engine/config'),
      import('../engine/log'),
      import('./paths'),
    ]);
    const service = new Service({
      ...resolveConfig(program.opts<GlobalOptions>()),
      mode: 'browser',
      logger: createCliLogger(),
    });
    const server = await startServer({
      service,
      staticDir: join(packageRoot(), 'out', 'renderer'),
      port: opts.port,
    });
    process.stdout.write(`${PRODUCT} is serving on ${server.url}\n`);
    const stop = () =>
      void Promise.all([server.close(), service.close()]).then(() => process.exit(0));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`tv: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
