// An EventSource that never closes by itself (npm `eventsource`, WHATWG semantics): it stops only when the
// server makes it (a 204, or any non-200 answer to a reconnect). Counts connections and frames.
//
//   node eventsource_plain.mjs <stream url, with ?token=>
import { EventSource } from 'eventsource';

const [url] = process.argv.slice(2);
const summary = { opens: 0, frames: 0, lastEventId: null, closedBy: null };
const timer = setTimeout(() => finish('timeout'), Number(process.env.STREAM_TIMEOUT_MS || 30000));
const finish = (how) => {
  summary.closedBy = how;
  clearTimeout(timer);
  process.stdout.write(JSON.stringify(summary) + '\n');
  process.exit(0);
};
const source = new EventSource(url);
source.onopen = () => (summary.opens += 1);
source.onmessage = (event) => {
  summary.frames += 1;
  summary.lastEventId = event.lastEventId;
};
source.onerror = () => {
  if (source.readyState === EventSource.CLOSED) finish('server');
};
