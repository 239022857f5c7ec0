// Lean load client for the fan-out benchmarks: N subscribers (graphql-transport-ws over `ws`, or SSE
// over plain http) on one run, in ONE Node process so the client does not starve the Python server.
//
//   node bench/js/fanout_load.mjs --transport ws|sse --base http://127.0.0.1:PORT --token T --run RUN_ID
//        [--subscribers 1000] [--batch 100] [--query "subscription(...)"]
//
// Talks to the Python bench over stdio, one JSON object per line:
//   stdout {"ready": n}                      every subscriber got its first event (the warm-up)
//   stdin  {"expect": last_seq}              the bench finished publishing; last_seq ends every stream
//   stdout {"done": true, ...summary}        every subscriber ended: last receive time (epoch s),
//                                            lost/repeated against 1..last_seq, latency percentiles
import http from 'node:http';
import readline from 'node:readline';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, value, index, all) => (index % 2 ? pairs : [...pairs, [all[index].replace(/^--/, ''), all[index + 1]]]), []),
);
const transport = args.transport ?? 'ws';
const subscribers = Number(args.subscribers ?? 1000);
const batch = Number(args.batch ?? 100);
const base = args.base;
const QUERY = args.query ?? 'subscription($id: ID!, $after: Int!) { runEvents(runId: $id, after: $after) { sequence type payload } }';

const now = () => (performance.timeOrigin + performance.now()) / 1000;
const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

class Receiver {
  constructor() { this.sequences = []; this.latencies = []; this.ready = false; this.done = false; this.error = null; }
  record(sequence, payload) {
    this.sequences.push(sequence);
    lastReceive = now();
    if (payload && payload.t !== undefined) this.latencies.push((lastReceive - Number(payload.t)) * 1000);
    if (!this.ready) { this.ready = true; readyCount += 1; if (readyCount === subscribers) emit({ ready: readyCount }); }
  }
  finish(error) { if (this.done) return; this.done = true; this.error = error ?? null; doneCount += 1; maybeFinish(); }
}

let readyCount = 0, doneCount = 0, lastReceive = 0, expect = null;
const receivers = Array.from({ length: subscribers }, () => new Receiver());

function wsSubscriber(receiver) {
  const ws = new WebSocket(base.replace(/^http/, 'ws') + '/graphql', 'graphql-transport-ws', { perMessageDeflate: false });
  ws.on('open', () => ws.send(JSON.stringify({ type: 'connection_init', payload: { Authorization: `Bearer ${args.token}` } })));
  ws.on('message', (raw) => {
    const message = JSON.parse(raw);
    if (message.type === 'next') {
      const event = message.payload.data.runEvents;
      receiver.record(event.sequence, event.payload);
    } else if (message.type === 'connection_ack') {
      ws.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: QUERY, variables: { id: args.run, after: 0 } } }));
    } else if (message.type === 'complete' || message.type === 'error') {
      receiver.finish(message.type === 'error' ? JSON.stringify(message.payload) : null);
      ws.close();
    }
  });
  ws.on('close', (code) => receiver.finish(`closed ${code}`));
  ws.on('error', (error) => receiver.finish(String(error)));
}

function sseSubscriber(receiver) {
  const request = http.get(`${base}/api/agent-run/${args.run}/stream?token=${args.token}`, { headers: { Accept: 'text/event-stream' }, agent: false }, (response) => {
    let pending = '';
    response.setEncoding('utf8');
    response.on('data', (chunk) => {
      pending += chunk;
      let cut;
      while ((cut = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, cut);
        pending = pending.slice(cut + 1);
        if (!line.startsWith('data: ')) continue;
        const event = JSON.parse(line.slice(6));
        receiver.record(event.sequence, event);
        if (event.type === 'status' && ['completed', 'failed', 'stopped'].includes(event.status)) { receiver.finish(); request.destroy(); return; }
      }
    });
    response.on('end', () => receiver.finish('ended'));
  });
  request.on('error', (error) => receiver.finish(String(error)));
}

function percentile(values, q) {
  if (!values.length) return null;
  return values[Math.min(values.length - 1, Math.floor(q * values.length))];
}

function maybeFinish() {
  if (doneCount < subscribers || expect === null) return;
  let lost = 0, repeated = 0;
  const errors = {};
  for (const receiver of receivers) {
    const unique = new Set(receiver.sequences);
    repeated += receiver.sequences.length - unique.size;
    for (let seq = 1; seq <= expect; seq += 1) if (!unique.has(seq)) lost += 1;
    if (receiver.error && !receiver.error.startsWith('closed 1000')) errors[receiver.error] = (errors[receiver.error] ?? 0) + 1;
  }
  const latencies = receivers.flatMap((r) => r.latencies).sort((a, b) => a - b);
  emit({
    done: true, last_receive: lastReceive, lost, repeated, errors,
    deliveries: receivers.reduce((sum, r) => sum + r.sequences.length, 0),
    latency_samples: latencies.length, p50_ms: percentile(latencies, 0.5), p99_ms: percentile(latencies, 0.99), max_ms: latencies.at(-1) ?? null,
  });
  process.exit(0);
}

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const message = JSON.parse(line);
  if (message.expect !== undefined) { expect = Number(message.expect); maybeFinish(); }
});

const subscribe = transport === 'sse' ? sseSubscriber : wsSubscriber;
for (let start = 0; start < subscribers; start += batch) {
  receivers.slice(start, start + batch).forEach(subscribe);
  await new Promise((resolve) => setTimeout(resolve, 50));
}
