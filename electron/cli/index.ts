import { Command, InvalidArgumentError } from 'commander';
import { PRODUCT, VERSION } from '../engine/version';
import * as cache from './commands/cache';
import * as diff from './commands/diff';
import * as gc from './commands/gc';
import * as init from './commands/init';
import * as log from './commands/log';
import * as models from './commands/models';
import * as pull from './commands/pull';
import * as push from './commands/push';
import * as repair from './commands/repair';
import * as report from './commands/report';
import * as rm from './commands/rm';
import * as serve from './commands/serve';
import * as status from './commands/status';
import * as tag from './commands/tag';
import * as upgrade from './commands/upgrade';
import * as verify from './commands/verify';
import { duration } from './run';

// `tv`: one file per command in commands/ (its arguments, help and action); run.ts holds what
// they share (the service, output, errors, the progress bar).

// The AWS SDK warns about the Node version on stderr once per process; a CLI keeps stderr for
// its own messages.
process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
// File I/O runs on libuv's thread pool (4 threads by default): a push keeps dozens of object
// writes in flight. Set before the first file operation, which creates the pool.
process.env['UV_THREADPOOL_SIZE'] ??= '16';

const program = new Command('tv')
  .description(`${PRODUCT}: model versioning with chunk-level deduplication`)
  .version(VERSION, '-V, --version')
  .option(
    '--repo <location>',
    'repository: a folder, file:// URL or s3://bucket/prefix (env TV_REPO; default: your data folder)',
  )
  .option(
    '--redis <url>',
    'Redis existence cache, redis://host:port, or a Redis Cluster, redis+cluster://host:port,host:port (rediss:// and rediss+cluster:// for TLS; env TV_REDIS_URL; default: none)',
  )
  .option(
    '--retry-for <duration>',
    'how long a request S3 throttles (503 SlowDown) keeps being retried, e.g. 30m (default: 10m); no other retry starts after it either',
    (value: string) => {
      const d = duration(value);
      if (d.seconds < 1) throw new InvalidArgumentError('the retry time must be at least 1s');
      return d;
    },
  )
  .showHelpAfterError('(run tv --help for usage)');

// In the order `tv --help` lists them.
for (const command of [
  init,
  upgrade,
  push,
  status,
  log,
  tag,
  models,
  pull,
  report,
  diff,
  verify,
  rm,
  gc,
  repair,
  cache,
  serve,
])
  command.register(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`tv: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
