// The npm graphql-ws client on runEvents, re-authenticating when the server closes the socket.
//
//   node reauth.mjs <ws url> <run id> <token> [<token> ...]
//
// Each connection attempt takes the next token of the list (the last one stays) (connectionParams as a function, as apps that
// refresh their tokens write it). Prints {"connected": n} per connection, one JSON line per event,
// {"closed": code, "reason": ...} whenever the server closes the socket, then {"complete": true} (exit 0) or
// {"error": ...} (exit 2). SUBSCRIBE_TIMEOUT_MS bounds the whole run (exit 3).
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [url, runId, ...tokens] = process.argv.slice(2);
const query = 'subscription($id: ID!) { runEvents(runId: $id) { sequence type } }';
const print = (value) => process.stdout.write(JSON.stringify(value) + '\n');
const timer = setTimeout(() => { print({ error: 'timeout' }); process.exit(3); }, Number(process.env.SUBSCRIBE_TIMEOUT_MS || 30000));

let connections = 0;
let attempts = 0;
const client = createClient({
  url,
  webSocketImpl: WebSocket,
  lazy: true,
  retryAttempts: tokens.length,
  retryWait: async () => {},
  connectionParams: () => ({ Authorization: `Bearer ${tokens[Math.min(attempts++, tokens.length - 1)]}` }),
  on: {
    connected: () => { connections += 1; print({ connected: connections }); },
    closed: (event) => { if (event?.code) print({ closed: event.code, reason: event.reason }); },
  },
});
const finish = (code) => { clearTimeout(timer); process.exitCode = code; client.dispose(); };
client.subscribe(
  { query, variables: { id: runId } },
  {
    next: (result) => print(result.errors ? { errors: result.errors } : result.data.runEvents),
    error: (err) => { print(Array.isArray(err) ? { errors: err } : { error: String(err?.reason || err?.message || err), code: err?.code }); finish(2); },
    complete: () => { print({ complete: true }); finish(0); },
  },
);
