import { Command, InvalidArgumentError } from 'commander';
import { PRODUCT, VERSION } from '../engine/version';
import { packageRoot } from './paths';

// The AWS SDK warns about the Node version on stderr once per process; a CLI keeps stderr for
// its own messages.
process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';

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
  .showHelpAfterError('(run tv --help for usage)');

program
  .command('serve')
  .description('browser mode: serve the app and its API on 127.0.0.1 with a one-time token')
  .option('-p, --port <port>', 'port to listen on (0 picks a free one)', portNumber, 0)
  .action(async (opts: { port: number }) => {
    const { join } = await import('node:path');
    const { startServer } = await import('../server/index');
    const { Service } = await import('../engine/service');
    const service = new Service({ repository: 'default (user data directory)', mode: 'browser' });
    const server = await startServer({
      service,
      staticDir: join(packageRoot(), 'out', 'renderer'),
      port: opts.port,
    });
    process.stdout.write(`${PRODUCT} is serving on ${server.url}\n`);
    const stop = () => void server.close().then(() => process.exit(0));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`tv: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
