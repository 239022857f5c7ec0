// A real EventSource (the npm `eventsource` package, WHATWG semantics) reading a run's SSE stream.
//
//   node eventsource.mjs <stream url, with ?token=>
//
// Prints {"open": true} per (re)connection, {"id", "frame"} per message and {"error": ...} when the
// connection fails (EventSource then reconnects by itself, sending Last-Event-ID). Closes once a
// terminal status frame arrives. EVENTSOURCE_TIMEOUT_MS bounds the whole run (exit code 3).
import { EventSource } from 'eventsource';

const [url] = process.argv.slice(2);
const TERMINAL = new Set(['completed', 'failed', 'stopped', 'cancelled']);
const print = (value) => process.stdout.write(JSON.stringify(value) + '\n');

const timer = setTimeout(() => {
  print({ error: 'timeout' });
  process.exit(3);
}, Number(process.env.EVENTSOURCE_TIMEOUT_MS || 30000));

const source = new EventSource(url);
source.onopen = () => print({ open: true });
source.onerror = (event) => {
  print({ error: String(event?.message || 'connection error'), code: event?.code ?? null, readyState: source.readyState });
  if (source.readyState === EventSource.CLOSED) {
    clearTimeout(timer);
    process.exitCode = 2;
  }
};
source.onmessage = (event) => {
  const frame = JSON.parse(event.data);
  print({ id: event.lastEventId, frame });
  if (frame.type === 'status' && TERMINAL.has(frame.status)) {
    source.close();
    clearTimeout(timer);
    print({ closed: true });
  }
};
