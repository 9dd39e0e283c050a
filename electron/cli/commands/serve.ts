import { InvalidArgumentError, type Command } from 'commander';
import { PRODUCT } from '../../engine/version';
import type { CommandOptions } from '../run';

function portNumber(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InvalidArgumentError('a port is a whole number from 0 to 65535');
  }
  return port;
}

/** Why the server could not listen on `port`, and what to do: Node says only the error code. */
function listenError(err: unknown, port: number): unknown {
  if ((err as { code?: string }).code === 'EADDRINUSE')
    return new Error(
      `port ${port} on 127.0.0.1 is in use by another program: choose another with --port N, or --port 0 for a free one`,
      { cause: err },
    );
  return err;
}

export function register(program: Command): void {
  program
    .command('serve')
    .description('browser mode: serve the app and its API on 127.0.0.1 with a one-time token')
    .option('-p, --port <port>', 'port to listen on (0 picks a free one)', portNumber, 0)
    .action(async (opts: { port: number }, command: Command) => {
      const [
        { join },
        { startServer },
        { Service },
        { resolveConfig },
        { createCliLogger },
        { packageRoot },
      ] = await Promise.all([
        import('node:path'),
        import('../../server/index'),
        import('../../engine/service'),
        import('../../engine/config'),
        import('../../engine/log'),
        import('../paths'),
      ]);
      const service = new Service({
        ...resolveConfig(command.optsWithGlobals<CommandOptions>()),
        mode: 'browser',
        logger: createCliLogger(),
      });
      const server = await startServer({
        service,
        staticDir: join(packageRoot(), 'out', 'renderer'),
        port: opts.port,
      }).catch(async (err: unknown) => {
        await service.close();
        throw listenError(err, opts.port);
      });
      process.stdout.write(`${PRODUCT} is serving on ${server.url}\n`);
      const stop = () =>
        void Promise.all([server.close(), service.close()]).then(() => process.exit(0));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
