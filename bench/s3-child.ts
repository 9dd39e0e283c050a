// The S3-protocol server in a process of its own: its work runs beside the push
// being measured (on the same cores), never on its event loop. Commands on stdin: "counts" (by
// method), "kinds" (by method and what was named), "bytes" (request body bytes by method),
// "record" then "requests" (each request since the last reset), "reset", "latency N", "uplink
// BYTES_PER_SECOND" (0: none); end of input stops the server and removes its folder.
import { createInterface } from 'node:readline';
import { S3Server } from '../test/harness/s3';

const s3 = await S3Server.start({ bucket: 'bench' });
process.stdout.write(
  JSON.stringify({ endpoint: s3.endpoint, bucket: s3.bucket, dir: s3.dir }) + '\n',
);
for await (const line of createInterface({ input: process.stdin })) {
  const [command, arg] = line.trim().split(' ');
  if (command === 'counts')
    process.stdout.write(JSON.stringify(Object.fromEntries(s3.counts)) + '\n');
  else if (command === 'bytes')
    process.stdout.write(JSON.stringify(Object.fromEntries(s3.bytesIn)) + '\n');
  else if (command === 'kinds')
    process.stdout.write(JSON.stringify(Object.fromEntries(s3.kinds)) + '\n');
  else if (command === 'record') {
    // From now on each request is kept; "requests" gives those since the last reset.
    s3.recorded = [];
    process.stdout.write('{}\n');
  } else if (command === 'requests')
    process.stdout.write(JSON.stringify({ requests: s3.recorded ?? [] }) + '\n');
  else if (command === 'reset') {
    s3.resetCounts();
    process.stdout.write('{}\n');
  } else if (command === 'latency') {
    s3.faults.latencyMs = Number(arg);
    process.stdout.write('{}\n');
  } else if (command === 'uplink') {
    // Bytes a second the request bodies share ("uplink 0": as fast as loopback).
    s3.faults.uplinkBytesPerSecond = Number(arg) || undefined;
    process.stdout.write('{}\n');
  }
}
await s3.stop();
