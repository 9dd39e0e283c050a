import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports';

/** A certificate and its key (PEM files) that a TLS Redis serves; the certificate is its own CA. */
export interface TlsFiles {
  cert: string;
  key: string;
}

/**
 * A real redis-server on a free loopback port, without persistence, owned by one test suite.
 * It can be stopped, killed (SIGKILL, as a crash) and restarted on the same port mid-test. With
 * `tls`, the port speaks TLS only.
 */
export class RedisServer {
  private process: ChildProcess | undefined;
  private constructor(
    readonly port: number,
    private readonly dir: string,
    private readonly extraArgs: readonly string[],
    readonly tls: TlsFiles | undefined,
  ) {}

  /** `extraArgs`: more redis-server options (a cluster node's). */
  static async start(
    extraArgs: readonly string[] = [],
    options: { tls?: TlsFiles } = {},
  ): Promise<RedisServer> {
    const server = new RedisServer(
      await freePort(),
      await mkdtemp(join(tmpdir(), 'tv-redis-')),
      extraArgs,
      options.tls,
    );
    await server.restart();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.process !== undefined;
  }

  /** Starts the server (again) on the same port and waits until it answers PING. */
  async restart(): Promise<void> {
    if (this.process) return;
    const child = spawn(
      'redis-server',
      [
        ...(this.tls
          ? [
              '--port',
              '0',
              '--tls-port',
              String(this.port),
              '--tls-cert-file',
              this.tls.cert,
              '--tls-key-file',
              this.tls.key,
              '--tls-ca-cert-file',
              this.tls.cert,
              '--tls-auth-clients',
              'no',
              '--tls-cluster',
              'yes',
            ]
          : ['--port', String(this.port)]),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        this.dir,
        ...this.extraArgs,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    this.process = child;
    child.once('exit', () => {
      if (this.process === child) this.process = undefined;
    });
    const deadline = Date.now() + 10_000;
    while (!(await ping(this.port, this.tls))) {
      if (!this.process)
        throw new Error(`redis-server exited on port ${this.port}: ${stderr.trim()}`);
      if (Date.now() > deadline)
        throw new Error(`redis-server did not answer on port ${this.port} within 10 s`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Ends the server the way a crash would (SIGKILL) and waits for the process to be gone. */
  kill(): Promise<void> {
    return this.signal('SIGKILL');
  }

  stop(): Promise<void> {
    return this.signal('SIGTERM');
  }

  /** Freezes the server (SIGSTOP): connections stay open and nothing answers, as a hung Redis. */
  pause(): void {
    this.process?.kill('SIGSTOP');
  }

  resume(): void {
    this.process?.kill('SIGCONT');
  }

  async dispose(): Promise<void> {
    this.resume();
    await this.kill();
    await rm(this.dir, { recursive: true, force: true });
  }

  private async signal(signal: NodeJS.Signals): Promise<void> {
    const child = this.process;
    if (!child) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    await exited;
  }
}

function ping(port: number, tls: TlsFiles | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tls
      ? connectTls({ port, host: '127.0.0.1', ca: readFileSync(tls.cert) })
      : connect(port, '127.0.0.1');
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once(tls ? 'secureConnect' : 'connect', () => socket.write('PING\r\n'));
    socket.once('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}

/**
 * A port that accepts TCP connections and never answers: what a hung or overloaded Redis looks
 * like to a client. Every accepted socket stays open, silent, until close().
 */
export class BlackholeServer {
  private readonly sockets = new Set<Socket>();
  /** Connections accepted since it started, closed ones included. */
  accepted = 0;
  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {
    server.on('connection', (socket) => {
      this.accepted++;
      this.sockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  static async start(): Promise<BlackholeServer> {
    const server = createServer();
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
    });
    return new BlackholeServer(server, port);
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** The same port as an HTTP endpoint (an S3 endpoint that never answers). */
  get httpUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get connections(): number {
    return this.sockets.size;
  }

  close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * A Redis Cluster of real redis-servers on loopback: `masters` masters (three by default) with no
 * replicas, created with `redis-cli --cluster create`, owned by one test suite. A master can be
 * killed (SIGKILL) and restarted on its port with its node id and slots (its nodes.conf stays).
 *
 * `cluster-require-full-coverage no`: with a master down the others keep answering for their own
 * slots, as a cache cluster is meant to be set up. `cluster-node-timeout` is short (1 s) so that a
 * killed master is marked failed within a test.
 */
export class RedisCluster {
  readonly replicas: RedisServer[] = [];
  private constructor(
    readonly nodes: RedisServer[],
    readonly tls: TlsFiles | undefined,
  ) {}

  /** With `tls`, every node speaks TLS only, its cluster bus too. */
  static async start(masters = 3, options: { tls?: TlsFiles } = {}): Promise<RedisCluster> {
    const nodes = await Promise.all(
      Array.from({ length: masters }, () => RedisServer.start(CLUSTER_NODE_ARGS, options)),
    );
    const cluster = new RedisCluster(nodes, options.tls);
    try {
      await run('redis-cli', [
        ...tlsArgs(options.tls),
        '--cluster',
        'create',
        ...nodes.map((n) => `127.0.0.1:${n.port}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ]);
      await cluster.waitOk();
    } catch (err) {
      await cluster.dispose();
      throw err;
    }
    return cluster;
  }

  /** `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,...` (rediss+cluster:// with TLS): the form a user gives. */
  get url(): string {
    const scheme = this.tls ? 'rediss+cluster' : 'redis+cluster';
    return `${scheme}://${this.nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`;
  }

  /** Waits until every node reports cluster_state:ok (up to 20 s). */
  async waitOk(ms = 20_000): Promise<void> {
    const deadline = Date.now() + ms;
    for (;;) {
      const states = await Promise.all(
        this.nodes.map((n) =>
          n.running
            ? run('redis-cli', [
                ...tlsArgs(this.tls),
                '-p',
                String(n.port),
                'cluster',
                'info',
              ]).catch(() => '')
            : '',
        ),
      );
      if (states.every((s, i) => !this.nodes[i]!.running || /cluster_state:ok/.test(s))) return;
      if (Date.now() > deadline)
        throw new Error(`the Redis Cluster did not reach cluster_state:ok`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /**
   * Starts one more server and makes it a replica of the master `of` (an index into `nodes`); it
   * is in `replicas` and is disposed of with the cluster. Resolves once it has synced.
   */
  async addReplica(of: number): Promise<RedisServer> {
    const master = this.nodes[of]!;
    const replica = await RedisServer.start(CLUSTER_NODE_ARGS);
    this.replicas.push(replica);
    const masterId = (await cli(master.port, 'cluster', 'myid')).trim();
    await run('redis-cli', [
      '--cluster',
      'add-node',
      `127.0.0.1:${replica.port}`,
      `127.0.0.1:${master.port}`,
      '--cluster-slave',
      '--cluster-master-id',
      masterId,
    ]);
    const deadline = Date.now() + 20_000;
    while (!/master_link_status:up/.test(await cli(replica.port, 'info', 'replication'))) {
      if (Date.now() > deadline) throw new Error('the replica did not sync within 20 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    return replica;
  }

  /** Removes every key from every master. */
  async flushAll(): Promise<void> {
    await Promise.all(this.nodes.map((n) => run('redis-cli', ['-p', String(n.port), 'flushall'])));
  }

  async dispose(): Promise<void> {
    await Promise.all([...this.nodes, ...this.replicas].map((n) => n.dispose()));
  }
}

const CLUSTER_NODE_ARGS = [
  '--cluster-enabled',
  'yes',
  '--cluster-config-file',
  'nodes.conf',
  '--cluster-node-timeout',
  '1000',
  '--cluster-require-full-coverage',
  'no',
];

const cli = (port: number, ...args: string[]) => run('redis-cli', ['-p', String(port), ...args]);

/** redis-cli's options for a TLS Redis whose certificate is its own CA. */
const tlsArgs = (tls: TlsFiles | undefined) => (tls ? ['--tls', '--cacert', tls.cert] : []);

/**
 * Whether this machine's redis-server was built with TLS (Debian's is, against OpenSSL); the
 * reason to skip when it was not, or when openssl is missing.
 */
export async function redisTlsUnsupported(): Promise<string | undefined> {
  try {
    await run('openssl', ['version']);
  } catch {
    return 'openssl is not installed here: the test makes its certificate with it';
  }
  // A build without TLS refuses the tls-port line; one with TLS reads it and stops at the next,
  // unknown line (so nothing starts).
  const refused = await run('redis-server', ['--tls-port', '1', '--tv-probe', 'x']).catch(
    (err: Error) => err.message,
  );
  return />>> 'tls-port/.test(refused)
    ? 'this redis-server was built without TLS (BUILD_TLS=no): it refuses --tls-port'
    : undefined;
}

/** A self-signed certificate for 127.0.0.1, made with openssl in `dir`. */
export async function selfSignedCertificate(dir: string): Promise<TlsFiles> {
  const files = { cert: join(dir, 'redis.crt'), key: join(dir, 'redis.key') };
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    files.key,
    '-out',
    files.cert,
    '-days',
    '1',
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
  ]);
  return files;
}

function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${command} ${args.join(' ')}: ${out.trim()}`)),
    );
  });
}
