// Load client of bench/bench_soak.py: N graphql-transport-ws subscribers of one run's runEvents, each checking
// that sequences arrive in order, without gaps or repeats. One Node process holds thousands of sockets cheaply.
//
//   node bench/soak_client.mjs <ws url> <token> <run id> <subscribers> [concurrent connects]
//
// stdout, one JSON object a line: {"ready": n} once every subscriber got its first event, {"progress": ...} every
// 5 s, and {"summary": ...} when every subscriber has ended (the run finished) or on SIGTERM.
import WebSocket from "ws";

const [url, token, runId, countArg, connectsArg] = process.argv.slice(2);
const count = Number(countArg);
const concurrentConnects = Number(connectsArg || 100);
const QUERY = "subscription($id: ID!, $after: Int!) { runEvents(runId: $id, after: $after) { sequence type payload } }";

const subs = [];
let deliveries = 0, repeated = 0, gaps = 0, disconnects = 0, errors = 0, ended = 0, readyCount = 0;
const latencies = []; // ms, a sample: every subscriber's delivery of every 10th event
const emit = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

function subscribe(index) {
  return new Promise((resolve) => {
    const state = { last: 0, received: 0, done: false, ready: false, closedByServer: false };
    subs[index] = state;
    const ws = new WebSocket(url, "graphql-transport-ws", { perMessageDeflate: false });
    state.ws = ws;
    ws.on("open", () => ws.send(JSON.stringify({ type: "connection_init", payload: { Authorization: `Bearer ${token}` } })));
    ws.on("message", (raw) => {
      const message = JSON.parse(raw);
      if (message.type === "connection_ack") {
        ws.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query: QUERY, variables: { id: runId, after: 0 } } }));
        resolve();
      } else if (message.type === "next") {
        const event = message.payload.data && message.payload.data.runEvents;
        if (!event) { errors++; return; }
        const seq = event.sequence;
        if (seq <= state.last) repeated++;
        else { if (seq !== state.last + 1) gaps += seq - state.last - 1; state.last = seq; }
        state.received++;
        deliveries++;
        const sent = event.payload && event.payload.t;
        if (sent !== undefined && seq % 10 === 0) latencies.push(Date.now() - sent * 1000);
        if (!state.ready) { state.ready = true; readyCount++; if (readyCount === count) emit({ ready: readyCount }); }
      } else if (message.type === "ping") {
        ws.send(JSON.stringify({ type: "pong" }));
      } else if (message.type === "complete") {
        finish(state, ws);
      } else if (message.type === "error") {
        errors++;
        finish(state, ws);
      }
    });
    ws.on("close", () => {
      if (!state.done) { disconnects++; state.done = true; ended++; checkEnd(); }
      resolve();
    });
    ws.on("error", () => { errors++; });
  });
}

function finish(state, ws) {
  if (state.done) return;
  state.done = true;
  ended++;
  ws.close(1000);
  checkEnd();
}

const round1 = (x) => (x === null ? null : Math.round(x * 10) / 10);

function percentile(values, q) {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function summary() {
  const lasts = {}; // last sequence received -> how many subscribers
  for (const s of subs) lasts[s ? s.last : 0] = (lasts[s ? s.last : 0] || 0) + 1;
  return {
    subscribers: count, deliveries, repeated, gaps, disconnects, errors, ended, last_sequences: lasts,
    latency_ms: { samples: latencies.length, p50: round1(percentile(latencies, 0.5)), p99: round1(percentile(latencies, 0.99)), max: round1(percentile(latencies, 1)) },
  };
}

let summarized = false;
function checkEnd() {
  if (ended === count && !summarized) { summarized = true; emit({ summary: summary() }); setTimeout(() => process.exit(0), 100); }
}

process.on("SIGTERM", () => { if (!summarized) { summarized = true; emit({ summary: summary(), cut: true }); } process.exit(0); });
setInterval(() => emit({ progress: { deliveries, ready: readyCount, disconnects, errors, gaps, repeated } }), 5000).unref();

// Connect in waves: thousands of simultaneous handshakes would only measure the accept backlog.
let next = 0;
async function worker() {
  while (next < count) await subscribe(next++);
}
await Promise.all(Array.from({ length: concurrentConnects }, worker));
emit({ connected: count });
